"""Sources that are missing at backup time: their previous entries are carried, never deleted.

A source root that does not exist (an unplugged disk, a moved folder), that cannot be read, or
a mount point that is now an empty directory on its parent's filesystem (the disk is not
mounted: the folder it is mounted on is what is left) says nothing about its files. Recording
them as deleted would make the next increment send everything again and a restore of that point
in time lack them; so such a source keeps its previous entries unchanged, with a loud warning,
until it is back — or until the user removes it from ``[backup] sources``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from localbackup.index import Index
from localbackup.scan import display_path, normalize_sources

__all__ = ["MissingSource", "NothingToBackUp", "find_missing_sources"]


@dataclass(frozen=True, slots=True)
class MissingSource:
    """A source root that cannot be backed up now: its absolute path and why."""

    path: bytes
    reason: str

    def __str__(self) -> str:
        return f"{display_path(self.path)} ({self.reason})"


class NothingToBackUp(Exception):
    """Every source is missing: no increment is written."""

    def __init__(self, missing: Sequence[MissingSource]) -> None:
        self.missing = tuple(missing)
        listed = "; ".join(map(str, self.missing))
        super().__init__(
            f"every source is missing: {listed}. Nothing was backed up and no increment was "
            "written; mount or restore the sources (or fix [backup] sources) and run it again"
        )


def _unmounted(root: bytes, st: os.stat_result, previous: Index | None) -> bool:
    """Whether ``root``, an existing source, is an unmounted mount point: an empty directory
    on its parent's filesystem now, where another filesystem holding entries was before."""
    if previous is None or not stat.S_ISDIR(st.st_mode):
        return False
    before = previous.record_of(root[1:])
    if before is None or before[7] == st.st_dev:
        return False  # not backed up before, or the same filesystem as then: a real change
    try:
        on_parent = st.st_dev == os.lstat(os.path.dirname(root) or b"/").st_dev
        with os.scandir(root) as it:
            empty = not any(True for _ in it)
    except OSError:
        return False
    return on_parent and empty and previous.lists_below(root[1:])


def find_missing_sources(
    sources: Sequence[Path], previous: Index | None
) -> tuple[MissingSource, ...]:
    """The sources (as the scan normalises them) that cannot be backed up now; ``previous``
    is the newest index known (the base, or the last increment of the previous cycle)."""
    missing = []
    for root in normalize_sources(tuple(sources)):
        try:
            st = os.lstat(root)
        except FileNotFoundError:
            missing.append(MissingSource(root, "does not exist"))
            continue
        except OSError as exc:
            missing.append(MissingSource(root, f"cannot be read: {exc.strerror}"))
            continue
        if _unmounted(root, st, previous):
            reason = "is an empty folder where a filesystem was mounted (not mounted now?)"
            missing.append(MissingSource(root, reason))
    return tuple(missing)

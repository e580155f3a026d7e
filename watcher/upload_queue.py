"""Which sealed cycles ``upload`` sends: the one answer ``upload`` and ``status`` share.

A sealed cycle in the spool is waiting when its archive is not in the store's catalogue and was
never pruned from it. One whose marker the service filed under ``failed/`` (a permanent failure:
refused credentials, a missing bucket, a damaged cycle) waits for the user: it is sent again
only with ``upload --retry-failed`` or ``upload CYCLE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from uploader.catalogue import Catalogue
from uploader.pending import pending_cycle_dirs
from watcher.markerfiles import failed_markers, reason_of

__all__ = ["FailedCycle", "UploadQueue", "upload_queue"]


@dataclass(frozen=True, slots=True)
class FailedCycle:
    """A cycle whose upload the service gave up on: its directory and the reason filed."""

    cycle_dir: Path
    reason: str

    @property
    def cycle_id(self) -> str:
        """The cycle's id (its directory's name)."""
        return self.cycle_dir.name


@dataclass(frozen=True, slots=True)
class UploadQueue:
    """The sealed cycles not archived in the store, oldest first."""

    waiting: tuple[Path, ...]  # sent by a plain ``upload`` (and by the service)
    failed: tuple[FailedCycle, ...]  # sent again once the user asks (--retry-failed, CYCLE)


def upload_queue(
    spool_dir: Path, marker_dir: Path, catalogue: Catalogue, store: str
) -> UploadQueue:
    """What ``upload`` would send to ``store`` now."""
    markers = failed_markers(marker_dir)
    waiting, failed = [], []
    for d in pending_cycle_dirs(spool_dir, catalogue, store):
        marker = markers.get(d.name)
        if marker is None:
            waiting.append(d)
        else:
            failed.append(FailedCycle(d, reason_of(marker)))
    return UploadQueue(tuple(waiting), tuple(failed))

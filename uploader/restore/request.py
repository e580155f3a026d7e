"""What to restore and how: :class:`RestoreRequest`, built once by the command line.

The value every restore use case takes (:mod:`.from_spool`, :mod:`.from_store`, :mod:`.cold`)
instead of the parsed command line: which point in time, where it goes, which paths, and how an
archive in cold storage is retrieved (:class:`RetrievalOptions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from localbackup.extract import ExtractOptions
from localbackup.pointintime import LATEST
from uploader.restore.download import DEFAULT_PARALLEL, DEFAULT_RANGE
from uploader.stores import Tier

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_PARALLEL",
    "DEFAULT_RANGE",
    "POLL_FIRST",
    "POLL_MAX",
    "RestoreRequest",
    "RetrievalOptions",
]

DEFAULT_DAYS = 3  # S3: how long a restored copy stays readable
POLL_FIRST = 60.0  # --wait: seconds before the second check, growing by half each time ...
POLL_MAX = 1800.0  # ... up to this


@dataclass(frozen=True, slots=True)
class RetrievalOptions:
    """How an archive in cold storage (S3 GLACIER / DEEP_ARCHIVE, a Glacier vault) is
    retrieved and downloaded. Ignored for archives that can be read directly."""

    tier: Tier | None = None  # None: the storage class's default
    days: int = DEFAULT_DAYS  # S3: days the restored copy stays
    wait: bool = False  # poll until the retrieval is ready, then restore (else: say when, stop)
    resume: bool = False  # continuing a recorded retrieval (says so when none is recorded)
    poll_interval: float = POLL_FIRST  # --wait: first interval between checks, in seconds
    poll_max: float = POLL_MAX  # --wait: longest interval between checks, in seconds
    parallel: int = DEFAULT_PARALLEL  # concurrent range downloads
    range_size: int = DEFAULT_RANGE  # download range size in bytes (Glacier: 1 MiB x 2^n)


@dataclass(frozen=True, slots=True)
class RestoreRequest:
    """One restore: a point in time of a cycle, into a target directory.

    ``to`` is absolute. ``assume_yes`` answers yes in advance to what a restore would ask (a
    billed retrieval, replacing a non-empty target with ``force``): without it, and with no one
    to ask, those steps are refused.
    """

    to: Path
    cycle: str = LATEST  # a cycle id, or "latest"
    at: int | datetime | None = None  # increment number or time; None: the last increment
    patterns: tuple[str, ...] = ()  # --path: restore only what these select (localbackup.pathmatch)
    # The source roots the patterns are relative to: the configured sources, replaced by the
    # roots of the point in time's index once it is known (uploader.restore.paths).
    roots: tuple[bytes, ...] = ()
    allow_devices: bool = False  # create device nodes and FIFOs found in the archive
    force: bool = False  # replace the contents of a non-empty target
    assume_yes: bool = False
    from_spool: bool = False  # from the local spool instead of the store
    max_rate: int | None = None  # [restore] max_rate: bytes per second read from the store
    identity: Path | None = None  # age identity file (default: [encryption] identity_file)
    retrieval: RetrievalOptions = RetrievalOptions()

    @property
    def extract_options(self) -> ExtractOptions:
        """The restore engine's options for this request."""
        return ExtractOptions(
            patterns=self.patterns, roots=self.roots, allow_devices=self.allow_devices
        )

"""The marker directory's files, without watching it: filing handled markers away under
``done/``, ``failed/`` or ``quarantine/`` (with the reason next to them), and reading them back.

Kept apart from :mod:`watcher.markers` (the watchdog observer) so that ``status``, ``upload``
and ``cycles`` do not import the file watcher.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from localbackup import formats
from localbackup.atomic import atomic_write_bytes
from localbackup.formats import HANDLED_MARKER_DIRS
from localbackup.logevents import get_logger
from localbackup.paths import ensure_private_dir

__all__ = [
    "DONE",
    "FAILED",
    "QUARANTINE",
    "failed_markers",
    "file_away",
    "file_done",
    "is_candidate",
    "reason_of",
    "retry_failed",
]

log = get_logger(__name__)

DONE, FAILED, QUARANTINE = HANDLED_MARKER_DIRS


def is_candidate(path: Path, marker_dir: Path) -> bool:
    """Files directly in the marker directory, except hidden ones (temp files being written)."""
    return path.parent == marker_dir and not path.name.startswith(".")


def file_away(path: Path, marker_dir: Path, where: str, reason: str | None = None) -> Path:
    """Move a handled marker to done/, failed/ or quarantine/ (with the reason next to it)."""
    dest_dir = ensure_private_dir(marker_dir / where)
    dest = dest_dir / path.name
    if reason is not None:
        atomic_write_bytes(dest_dir / f"{path.name}.reason", (reason.rstrip() + "\n").encode())
    shutil.move(str(path), dest)
    return dest


def reason_of(marker: Path) -> str:
    """Why a marker under ``failed/`` or ``quarantine/`` was filed there ("" if not said)."""
    try:
        return marker.with_name(f"{marker.name}.reason").read_text().strip()
    except OSError:
        return ""


def failed_markers(marker_dir: Path) -> dict[str, Path]:
    """The markers under ``failed/``, by cycle id."""
    folder = marker_dir / FAILED
    if not folder.is_dir():
        return {}
    found = {}
    for p in folder.iterdir():
        m = formats.MARKER_NAME.match(p.name)
        if m is not None and p.is_file():
            found[m["cycle"]] = p
    return found


def retry_failed(marker_dir: Path, host: str, cycle_id: str) -> Path | None:
    """Put the marker of a cycle whose upload failed back into the marker directory (the
    service picks it up from there too); its reason goes. None if it was not under failed/."""
    name = formats.marker_file_name(host, cycle_id)
    failed = marker_dir / FAILED / name
    if not failed.is_file():
        return None
    back = marker_dir / name
    os.replace(failed, back)
    failed.with_name(f"{name}.reason").unlink(missing_ok=True)
    log.info("upload.marker_retried", marker=name)
    return back


def file_done(marker_dir: Path, host: str, cycle_id: str) -> Path | None:
    """File the marker of an uploaded cycle under ``done/``, wherever it is (pending or
    failed, whose reason goes); None if there is no such marker."""
    name = formats.marker_file_name(host, cycle_id)
    for where in (marker_dir, marker_dir / FAILED):
        if (where / name).is_file():
            (where / f"{name}.reason").unlink(missing_ok=True)
            return file_away(where / name, marker_dir, DONE)
    return None

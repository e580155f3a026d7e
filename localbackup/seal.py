"""Sealing: turn a finished cycle into ``cycle.json`` and then, only then, a marker."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

from localbackup import formats
from localbackup.atomic import atomic_write_bytes
from localbackup.logevents import get_logger
from localbackup.paths import ensure_private_dir
from localbackup.spool import CycleDir, Spool

log = get_logger(__name__)

# Where a written marker may be: pending, or filed away by the watcher once handled.
MARKER_SUBDIRS = ("", *formats.HANDLED_MARKER_DIRS)


class SealError(RuntimeError):
    """A cycle cannot be sealed (nothing in it, or its files do not match their manifests)."""


def seal_cycle(
    cycle: CycleDir, host: str, mode: formats.BackupMode, marker_dir: Path, now: datetime
) -> formats.SealedCycle:
    """Write ``cycle.json`` for a cycle with at least one complete increment, then its marker.

    Each increment's files were fsynced when written; sizes are checked against the manifests
    here so that a marker never points at a cycle whose bytes are not all on disk.
    """
    manifests = cycle.manifests()
    if not manifests:
        raise SealError(f"cycle {cycle.cycle_id} has no complete increment to seal")
    for m in manifests:
        for f in (m.tar, m.index):
            path = cycle.path / f.name
            size = path.stat().st_size if path.exists() else -1
            if size != f.size:
                raise SealError(
                    f"cycle {cycle.cycle_id}: {f.name} is {size} bytes, its manifest says {f.size}"
                )
    sealed = formats.SealedCycle(
        host=host,
        cycle_id=cycle.cycle_id,
        mode=mode,
        created_at=cycle.created_at(),
        sealed_at=now,
        increments=tuple(manifests),
    )
    atomic_write_bytes(cycle.path / formats.CYCLE_JSON, sealed.render())
    write_marker(cycle, marker_dir)
    log.info(
        "backup.sealed", cycle=cycle.cycle_id, increments=len(manifests), bytes=sealed.data_size
    )
    return sealed


def write_marker(cycle: CycleDir, marker_dir: Path) -> formats.Marker:
    """Write the marker of a sealed cycle atomically (temp, fsync, rename)."""
    raw = (cycle.path / formats.CYCLE_JSON).read_bytes()
    sealed = formats.SealedCycle.from_json(json.loads(raw))
    marker = formats.Marker(
        host=sealed.host,
        cycle_id=sealed.cycle_id,
        cycle_dir=cycle.path.resolve(),
        sealed_at=sealed.sealed_at,
        cycle_json_sha256=hashlib.sha256(raw).hexdigest(),
    )
    ensure_private_dir(marker_dir)
    atomic_write_bytes(marker_dir / marker.file_name, marker.render())
    log.info(
        "backup.marker_written", cycle=cycle.cycle_id, marker=str(marker_dir / marker.file_name)
    )
    return marker


def marker_exists(marker_dir: Path, host: str, cycle_id: str) -> bool:
    """Whether the marker of a cycle was written (pending or already handled)."""
    name = formats.marker_file_name(host, cycle_id)
    return any((marker_dir / sub / name).exists() for sub in MARKER_SUBDIRS)


def ensure_markers(spool: Spool, marker_dir: Path) -> list[str]:
    """Write the marker of every sealed cycle that has none (a crash between seal and marker)."""
    written: list[str] = []
    for c in spool.sealed_cycles():
        sealed = formats.load_sealed_cycle(c.path)
        if not marker_exists(marker_dir, sealed.host, sealed.cycle_id):
            write_marker(c, marker_dir)
            written.append(c.cycle_id)
    return written

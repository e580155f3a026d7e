"""Which sealed cycles in the spool still wait for ``upload``: a question ``status``, the
metrics file and the service ask too, answered without loading the upload machinery (the
crypto, the stores and their SDKs)."""

from __future__ import annotations

from pathlib import Path

from localbackup.formats import CYCLE_JSON
from localbackup.spool import CYCLES
from uploader.catalogue import Catalogue, metadata_object_of, pruned_cycle_ids

__all__ = ["metadata_pending_dirs", "pending_cycle_dirs", "sealed_cycle_dirs"]


def sealed_cycle_dirs(spool_dir: Path) -> list[Path]:
    """Every sealed cycle in the spool, oldest first."""
    root = spool_dir / CYCLES
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob(f"*/{CYCLE_JSON}"))


def pending_cycle_dirs(spool_dir: Path, catalogue: Catalogue, store: str) -> list[Path]:
    """Sealed cycles that have no archive in ``store`` yet and were never pruned from it."""
    done = {a.cycle_id for a in catalogue.archives(store=store)}
    done |= pruned_cycle_ids(catalogue, store)
    return [d for d in sealed_cycle_dirs(spool_dir) if d.name not in done]


def metadata_pending_dirs(spool_dir: Path, catalogue: Catalogue, store: str) -> list[Path]:
    """Sealed cycles whose archive is in ``store`` but not yet its metadata object (a run
    killed in between, or an upload of an earlier version): ``upload`` sends it."""
    out = []
    for d in sealed_cycle_dirs(spool_dir):
        found = catalogue.find_archive(store, d.name)
        if found is not None and metadata_object_of(catalogue, store, found.key) is None:
            out.append(d)
    return out

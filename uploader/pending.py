"""Which sealed cycles in the spool still wait for ``upload``: a question ``status``, the
metrics file and the service ask too, answered without loading the upload machinery (the
crypto, the stores and their SDKs)."""

from __future__ import annotations

from pathlib import Path

from localbackup.formats import CYCLE_JSON
from localbackup.spool import CYCLES
from uploader.catalogue import Catalogue, pruned_cycle_ids

__all__ = ["pending_cycle_dirs", "sealed_cycle_dirs"]


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

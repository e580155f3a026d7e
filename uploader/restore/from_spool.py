"""Restore from the local spool (``restore --from-spool``): no store, no decryption.

A sealed cycle, or the open cycle with its complete increments; the restore engine reads the
increment files directly and checks each against its manifest's size and SHA-256.
"""

from __future__ import annotations

from pathlib import Path

from localbackup.extract import ExtractStats
from localbackup.formats import load_sealed_cycle
from localbackup.index import read_index
from localbackup.pointintime import LATEST, choose_cycle, choose_increment
from localbackup.spool import Spool
from localbackup.spoolrestore import restore_from_cycle_dir
from uploader.restore.paths import check_paths
from uploader.restore.request import RestoreRequest
from uploader.restore.ui import RestoreUI, chain_size, describe_plan, with_progress

__all__ = ["restore_from_spool"]


def restore_from_spool(request: RestoreRequest, spool_dir: Path, ui: RestoreUI) -> ExtractStats:
    """Restore ``request``'s point in time from the cycles in ``spool_dir``, saying the plan
    first. Raises :class:`~localbackup.pointintime.PointInTimeError` for an unknown cycle or
    increment, :class:`~localbackup.pathmatch.NoPathMatch` (before anything is written) for a
    ``--path`` that selects nothing."""
    cycles = {c.cycle_id: c for c in Spool(spool_dir).cycles()}
    if request.cycle == LATEST:
        # right after a rotation the new open cycle has no complete increment yet: "latest" is
        # the newest cycle that has one (an explicitly named cycle still fails below)
        restorable = {k: c for k, c in cycles.items() if c.sealed or c.manifests()}
        cycles = restorable or cycles
    cycle_dir = cycles[choose_cycle(list(cycles), request.cycle)]
    sealed = cycle_dir.sealed
    increments = list(
        load_sealed_cycle(cycle_dir.path).increments if sealed else cycle_dir.manifests()
    )
    inc = choose_increment(increments, request.at)
    if request.patterns:
        with open(cycle_dir.path / inc.index.name, "rb") as f:
            request = check_paths(request, read_index(f))
    state = "sealed" if sealed else "open"
    where = f"{cycle_dir.cycle_id} ({state}, in the spool)"
    ui.say(describe_plan(where, increments, inc, None), now=True)
    try:
        return restore_from_cycle_dir(
            cycle_dir.path,
            increments,
            inc.number,
            request.to,
            force=request.force,
            options=with_progress(request.extract_options, ui, [chain_size(increments, inc)]),
        )
    finally:
        ui.restoring_done()

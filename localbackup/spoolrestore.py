"""Restore a point in time from a cycle directory of the local spool (sealed or open).

The cycle's increments are read straight from the spool, each checked against its manifest
(:mod:`localbackup.integrity`), applied by the restore engine (:mod:`localbackup.extract`) into
a staged work directory that takes the target's place only on success
(:mod:`localbackup.staging`). Restores from a store go through :mod:`uploader.restore` and
end in the same engine.
"""

from __future__ import annotations

from pathlib import Path

from localbackup import formats
from localbackup.extract import ExtractOptions, Extractor, ExtractStats
from localbackup.indexstream import verified_index
from localbackup.integrity import VerifyingReader
from localbackup.pointintime import increment_chain
from localbackup.staging import staged_target

__all__ = ["restore_from_cycle_dir"]


def restore_from_cycle_dir(
    cycle_dir: Path,
    increments: list[formats.IncrementManifest],
    number: int,
    to: Path,
    *,
    force: bool = False,
    options: ExtractOptions | None = None,
) -> ExtractStats:
    """Restore increment ``number`` of a spool cycle (sealed or open) into ``to``.

    Every file read is checked against its manifest's size and SHA-256.
    """
    by_number = {m.number: m for m in increments}
    with staged_target(to, force=force) as work:
        extractor = Extractor(work, options)
        for n in increment_chain(increments, number):
            info = by_number[n].tar
            with open(cycle_dir / info.name, "rb") as f:
                reader = VerifyingReader(f, info.size, info.sha256, info.name)
                extractor.apply(reader, info.name)  # type: ignore[arg-type]
                reader.verify()
        info = by_number[number].index
        with (
            open(cycle_dir / info.name, "rb") as f,
            verified_index(VerifyingReader(f, info.size, info.sha256, info.name)) as index,
        ):
            return extractor.finish(index)

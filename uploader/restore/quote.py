"""A restore quote: what a restore needs, costs and waits, before anything is requested.

``restore ... --quote`` prints it and stops; the confirmation before a retrieval shows the same
numbers. Everything comes from the catalogue (the archive, its ``cycle.json`` and indexes) and
the price table of :mod:`.retrieval`: no request is made and nothing is downloaded.

- the archive (one archive = one cycle) and its size;
- cold storage: for each tier, the expected wait and the estimated retrieval cost of the whole
  archive (a retrieval is of the whole object);
- what the restore reads: a cold archive is downloaded whole; a readable one only up to the
  index of the chosen increment;
- with ``--path``: the paths it matches at that point in time, and that the download is the
  same (the paths are inside the one archive).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from localbackup.configkit import format_size
from localbackup.formats import IncrementManifest, SealedCycle
from localbackup.index import EntryType, Index
from localbackup.pathmatch import PathSelection, roots_of
from localbackup.pointintime import choose_increment
from uploader.bundle import bundle_offset_after, bundle_size
from uploader.catalogue import Catalogue, stored_cycle, stored_indexes
from uploader.crypto import ciphertext_size
from uploader.restore import retrieval as rt
from uploader.restore.stream import ArchiveRef
from uploader.stores import Tier

__all__ = [
    "PathQuote",
    "RestoreQuote",
    "TierQuote",
    "format_quote",
    "quote_from_catalogue",
    "quote_restore",
]


@dataclass(frozen=True, slots=True)
class TierQuote:
    """One retrieval tier: its typical wait and estimated cost for the archive."""

    tier: Tier
    wait_text: str
    ready_around: datetime
    cost_usd: float


@dataclass(frozen=True, slots=True)
class PathQuote:
    """What ``--path`` selects at the chosen point in time."""

    patterns: tuple[str, ...]
    entries: int
    files: int
    bytes: int


@dataclass(frozen=True, slots=True)
class RestoreQuote:
    """What a restore of one point in time needs (see the module docstring)."""

    archive: ArchiveRef
    storage_class: str | None  # a cold class, or None: read at once
    tiers: tuple[TierQuote, ...]
    default_tier: Tier | None
    increment: IncrementManifest | None  # None: the catalogue has no cycle.json of it
    download: int  # bytes the restore reads from the store
    paths: PathQuote | None


def quote_restore(
    archive: ArchiveRef,
    storage_class: str | None,
    *,
    cycle: SealedCycle | None,
    at: int | datetime | None,
    patterns: Sequence[str],
    index: Index | None,
    now: datetime,
) -> RestoreQuote:
    """The quote (pure: ``index`` is the chosen increment's, ``now`` dates the waits)."""
    classes = rt.tiers_for(storage_class) if storage_class is not None else []
    tiers = tuple(_tier(storage_class or "", t, archive.size, now) for t in classes)
    inc = choose_increment(cycle.increments, at) if cycle is not None else None
    download = archive.size
    if storage_class is None and cycle is not None and inc is not None:
        download = _read_up_to(archive, cycle, inc)
    paths = None
    if patterns and index is not None:
        paths = _paths(tuple(patterns), index)
    return RestoreQuote(
        archive=archive,
        storage_class=storage_class,
        tiers=tiers,
        default_tier=None if storage_class is None else rt.default_tier(storage_class),
        increment=inc,
        download=download,
        paths=paths,
    )


def quote_from_catalogue(
    catalogue: Catalogue,
    *,
    host: str,
    archive: ArchiveRef,
    storage_class: str | None,
    at: int | datetime | None,
    patterns: Sequence[str],
    now: datetime,
) -> RestoreQuote:
    """The quote, with the cycle's ``cycle.json`` and chosen index from the catalogue (blocking;
    without them the quote says less: the whole archive, no path counts)."""
    cycle = stored_cycle(catalogue, host, archive.cycle_id)
    index = None
    if cycle is not None and patterns:
        number = choose_increment(cycle.increments, at).number
        index = next(
            (s.load() for s in stored_indexes(catalogue, archive.cycle_id) if s.number == number),
            None,
        )
    return quote_restore(
        archive, storage_class, cycle=cycle, at=at, patterns=patterns, index=index, now=now
    )


def _tier(storage_class: str, tier: Tier, size: int, now: datetime) -> TierQuote:
    est = rt.estimate(storage_class, tier, size)
    return TierQuote(tier, est.wait_text, now + est.wait, est.cost_usd)


def _read_up_to(archive: ArchiveRef, cycle: SealedCycle, inc: IncrementManifest) -> int:
    """Bytes of the archive a streaming restore reads: up to the end of the chosen
    increment's index (age adds a 16-byte tag per 64 KiB chunk and a header)."""
    plain_end = bundle_offset_after(cycle, inc.index.name)
    if not archive.key.endswith(".age"):
        return min(plain_end, archive.size)
    header = archive.size - ciphertext_size(bundle_size(cycle), 0)
    return min(ciphertext_size(plain_end, max(header, 0)), archive.size)


def _paths(patterns: tuple[str, ...], index: Index) -> PathQuote:
    select = PathSelection(patterns, roots_of(index.records))  # as restore --path selects
    entries = files = size = 0
    for e in index.entries():
        if select(e.path, e.type is EntryType.DIR):
            entries += 1
            if e.type is EntryType.FILE:
                files += 1
                size += e.size
    return PathQuote(patterns, entries, files, size)


def format_quote(q: RestoreQuote, chosen_tier: Tier | None = None) -> str:
    """The quote as the restore command prints it (``chosen_tier`` is marked)."""
    a = q.archive
    lines = [f"archive needed: {a.key} (cycle {a.cycle_id}, {format_size(a.size)})"]
    if q.increment is not None:
        inc = q.increment
        lines.append(f"  point in time: increment {inc.number} ({inc.kind})")
    if q.storage_class is None:
        lines.append("  readable at once: no retrieval, nothing to wait for")
        lines.append(f"  the restore reads {format_size(q.download)} of it")
    else:
        where = "a Glacier vault" if q.storage_class == rt.VAULT else f"S3 {q.storage_class}"
        lines.append(f"  in {where}: a retrieval of the whole archive comes first")
        pick = chosen_tier or q.default_tier
        for t in q.tiers:
            mark = " <- this restore" if t.tier == pick else ""
            lines.append(
                f"  tier {t.tier}: typically ready {t.wait_text} (around "
                f"{rt.format_when(t.ready_around)}), estimated ${t.cost_usd:.4f}{mark}"
            )
        lines.append(
            "  (estimates from list prices, without per-request fees and data transfer; "
            f"then {format_size(q.download)} are downloaded)"
        )
    if q.paths is not None:
        p = q.paths
        pats = " ".join(repr(x) for x in p.patterns)
        lines.append(
            f"  --path {pats}: {p.entries} entries ({p.files} files, {format_size(p.bytes)}) "
            f"at that point in time; the restore still reads {format_size(q.download)} (the "
            "paths are inside the one archive)"
        )
    return "\n".join(lines)

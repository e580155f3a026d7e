"""The pure part of a migration: which vault archives move, in which daily batches, and which
sources may be deleted. No I/O and no clock: ``now`` is passed in.

- :func:`select_archives` reads a vault listing: this host's archives of ours (by their
  description) keep their object key and metadata and gain ``source-archive-id``; the original
  tool's archives (``GlacierBackup-<ts>.tar[.enc]``) go, as they are, to
  ``<host>/legacy/<name>`` with ``--include-legacy``; a cycle's metadata object is not moved
  (the destination's maintenance pass makes it again, in its hot storage class, from the
  catalogue's copy of the cycle: :mod:`uploader.maintenance.metadata_upkeep`); everything
  else is listed with the reason it stays.
- :func:`plan_requests` fills a rolling 24-hour window up to ``--max-per-day`` bytes, in order.
- :func:`plan_source_deletions` lets a copied archive's source go only once it is past the
  vault's minimum storage duration (90 days): deleting earlier is billed as if it had stayed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from uploader.archive import ARCHIVE_FORMAT, parse_metadata_key
from uploader.catalogue import MigrationKind, MigrationRecord, MigrationState, PlannedArchive
from uploader.restore import legacy_archive_name
from uploader.stores.glacier import parse_description

DAY = timedelta(days=1)
SOURCE_ARCHIVE_ID = "source-archive-id"  # the destination object's metadata name
LEGACY_FORMAT = "glacierclient-archive"  # ``format`` of a moved original-tool archive
LEGACY_DESCRIPTION = "legacy-description"  # its vault description, kept in the metadata


@dataclass(frozen=True, slots=True)
class VaultArchive:
    """One archive of the source vault, as its inventory lists it."""

    archive_id: str
    size: int
    created: datetime
    description: str
    plaintext_sha256: str = ""  # what the old catalogue recorded for it, if anything


@dataclass(frozen=True, slots=True)
class Skipped:
    """An archive of the vault that is not migrated, and why."""

    archive_id: str
    size: int
    what: str  # its key, the old tool's archive name, or its description
    reason: str


@dataclass(frozen=True, slots=True)
class Selection:
    """What a listing gives: the archives to migrate and the rest, with reasons."""

    archives: tuple[PlannedArchive, ...]
    skipped: tuple[Skipped, ...]
    unmatched: tuple[str, ...] = ()  # CYCLE arguments no archive answered to


@dataclass(frozen=True, slots=True)
class SelectOptions:
    """Which archives a run asks for."""

    host: str
    cycles: tuple[str, ...] = ()  # cycle ids (or legacy archive names); empty: all
    include_legacy: bool = False
    # Destination keys already given to vault archives (by an earlier run): key -> ArchiveId.
    taken: Mapping[str, str] = field(default_factory=dict)
    # Keys the destination already holds an archive of ours for (a native upload).
    in_destination: frozenset[str] = frozenset()
    preferred: frozenset[str] = frozenset()  # ArchiveIds the old catalogue records as ours


def select_archives(listing: Iterable[VaultArchive], options: SelectOptions) -> Selection:
    """Choose the archives to migrate (see the module docstring), oldest first."""
    ours: dict[str, list[tuple[VaultArchive, PlannedArchive]]] = {}
    legacy: list[tuple[VaultArchive, str]] = []
    skipped: list[Skipped] = []
    wanted = set(options.cycles)
    answered: set[str] = set()
    for a in sorted(listing, key=lambda a: (a.created, a.archive_id)):
        desc = parse_description(a.description)
        if desc is None:
            name = legacy_archive_name(a.description)
            if name is None:
                skipped.append(_skip(a, a.description[:80], "not an archive of this tool"))
            elif wanted and name not in wanted:
                continue
            elif not options.include_legacy:
                answered.add(name)
                skipped.append(_skip(a, name, "the original tool's: add --include-legacy"))
            else:
                answered.add(name)
                legacy.append((a, name))
            continue
        if parse_metadata_key(desc.key) is not None:
            continue  # made again at the destination (see the module docstring)
        host = desc.host or desc.key.split("/", 1)[0]
        if host != options.host:
            skipped.append(_skip(a, desc.key, f"another host's ({host})"))
            continue
        if wanted and desc.cycle_id not in wanted:
            continue
        answered.add(desc.cycle_id or "")
        planned = PlannedArchive(
            archive_id=a.archive_id,
            key=desc.key,
            kind=MigrationKind.OURS,
            host=host,
            cycle_id=desc.cycle_id or desc.key.rsplit("/", 1)[-1].split(".", 1)[0],
            size=a.size,
            created=a.created,
            metadata={**desc.metadata(), SOURCE_ARCHIVE_ID: a.archive_id},
            plaintext_sha256=a.plaintext_sha256 or desc.plaintext_sha256 or "",
        )
        ours.setdefault(desc.key, []).append((a, planned))
    chosen = _one_per_key(ours, options, skipped)
    chosen += _legacy_keys(legacy, options)
    chosen.sort(key=lambda p: (p.created, p.key))
    unmatched = tuple(c for c in options.cycles if c not in answered)
    return Selection(tuple(chosen), tuple(skipped), unmatched)


def _skip(a: VaultArchive, what: str, reason: str) -> Skipped:
    return Skipped(a.archive_id, a.size, what, reason)


def _one_per_key(
    ours: Mapping[str, list[tuple[VaultArchive, PlannedArchive]]],
    options: SelectOptions,
    skipped: list[Skipped],
) -> list[PlannedArchive]:
    """One archive per key: the one an earlier run chose, else the one the old catalogue
    records, else the newest; a key the destination already holds is not migrated."""
    out = []
    for key, found in ours.items():
        earlier = options.taken.get(key)
        ranked = [
            ((a.archive_id == earlier, a.archive_id in options.preferred, a.created), i)
            for i, (a, _) in enumerate(found)
        ]
        best = found[max(ranked)[1]]
        for a, _ in found:
            if a is not best[0]:
                skipped.append(_skip(a, key, f"a second archive of {key}: left in the vault"))
        if key in options.in_destination and earlier is None:
            skipped.append(_skip(best[0], key, "already archived in the destination"))
            continue
        out.append(best[1])
    return out


def _legacy_keys(
    legacy: Sequence[tuple[VaultArchive, str]], options: SelectOptions
) -> list[PlannedArchive]:
    """``<host>/legacy/<name>``; a name seen twice gets ``-2``, ``-3``... before ``.tar``, and
    a key an earlier run gave an archive stays that archive's."""
    taken_by = {a: k for k, a in options.taken.items()}
    used = set(options.taken)
    out = []
    for a, name in legacy:
        key = taken_by.get(a.archive_id)
        n = 1
        while key is None:
            stem, dot, ext = name.partition(".")
            candidate = f"{options.host}/legacy/{stem if n == 1 else f'{stem}-{n}'}{dot}{ext}"
            if candidate not in used:
                key = candidate
            n += 1
        used.add(key)
        metadata = {
            "format": LEGACY_FORMAT,
            "host": options.host,
            LEGACY_DESCRIPTION: a.description,
            SOURCE_ARCHIVE_ID: a.archive_id,
        }
        out.append(
            PlannedArchive(
                a.archive_id,
                key,
                MigrationKind.LEGACY,
                options.host,
                None,
                a.size,
                a.created,
                metadata,
            )
        )
    return out


def is_ours(metadata: Mapping[str, str]) -> bool:
    """Whether destination metadata marks an archive of this tool (not a legacy one)."""
    return metadata.get("format") == ARCHIVE_FORMAT


# -- daily batches -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """Which archives to request now, and when the next one may be."""

    now: tuple[int, ...]  # migration ids, in order
    next_at: datetime | None  # None: nothing left to request
    oversized: tuple[int, ...] = ()  # requested alone: bigger than the daily limit


def plan_requests(
    todo: Sequence[tuple[int, int]],
    recent: Sequence[tuple[datetime, int]],
    now: datetime,
    max_per_day: int | None,
) -> RequestPlan:
    """Fill the rolling 24 hours ending ``now`` up to ``max_per_day`` bytes with ``todo``
    (``(id, size)``, taken in order; the first that does not fit stops the batch). ``recent``
    are earlier requests ``(requested_at, size)``. An archive bigger than the limit is
    requested alone, when nothing else was requested in the last 24 hours."""
    window = sorted((t, s) for t, s in recent if t > now - DAY)
    if max_per_day is None:
        return RequestPlan(tuple(i for i, _ in todo), None)
    used = sum(s for _, s in window)
    taken: list[int] = []
    oversized: list[int] = []
    rest = list(todo)
    while rest:
        ident, size = rest[0]
        if used + size <= max_per_day:
            taken.append(ident)
        elif size > max_per_day and used == 0:
            taken.append(ident)
            oversized.append(ident)
        else:
            break
        used += size
        window.append((now, size))
        rest.pop(0)
    next_at = _next_room(window, rest[0][1], max_per_day) if rest else None
    return RequestPlan(tuple(taken), next_at, tuple(oversized))


def _next_room(window: Sequence[tuple[datetime, int]], size: int, limit: int) -> datetime:
    """When enough of ``window`` has left the last 24 hours for ``size`` more bytes (or, for
    an archive bigger than the limit, when the window is empty)."""
    used = sum(s for _, s in window)
    for t, s in sorted(window):
        used -= s
        if used + size <= limit or (size > limit and used == 0):
            return t + DAY
    return max(t for t, _ in window) + DAY


# -- deleting the sources ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeletionPlan:
    """Copied archives whose source may be deleted now, and those kept, with the day they
    become free to delete (None: the vault's lock policy denies it for good)."""

    delete: tuple[MigrationRecord, ...]
    keep: tuple[tuple[MigrationRecord, datetime | None], ...]


def deletable_after(min_days: int, vault_lock_days: float | None) -> float:
    """The age in days from which a vault archive may be deleted: past its minimum storage
    duration, and past what the vault's lock policy denies (``inf``: never)."""
    return float(min_days) if vault_lock_days is None else max(min_days, vault_lock_days)


def plan_source_deletions(
    records: Iterable[MigrationRecord], now: datetime, after_days: float
) -> DeletionPlan:
    """Only verified copies (state ``copied``) are candidates; each is deleted once it is
    ``after_days`` old in the vault (:func:`deletable_after`), else kept until then."""
    delete: list[MigrationRecord] = []
    keep: list[tuple[MigrationRecord, datetime | None]] = []
    for r in records:
        if r.state is not MigrationState.COPIED:
            continue
        free = None if math.isinf(after_days) else r.created + timedelta(days=after_days)
        if free is not None and now >= free:
            delete.append(r)
        else:
            keep.append((r, free))
    return DeletionPlan(tuple(delete), tuple(keep))

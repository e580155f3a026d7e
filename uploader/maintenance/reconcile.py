"""Compare what the catalogue says with what the store holds: a pure list of actions.

The listing is either immediate (S3, local: ``as_of`` is now) or a Glacier inventory (``as_of`` is
its ``InventoryDate``, hours to days old). Inventory lag: nothing uploaded (or deleted) after
``as_of - grace`` is judged by the listing — it is "not yet judged", never MISSING.

Actions:

- ``confirmed``: in both, sizes (and checksums, when the listing has them) agree;
- ``adopt``: in the store, ours (our description/metadata, this host), not in the catalogue —
  the catalogue is rebuilt after a loss;
- ``foreign``: in the store, not ours (another tool, a hand upload, another host): recorded, never
  touched;
- ``missing``: in the catalogue, uploaded before ``as_of - grace``, absent from the listing. Loud;
  in a versioned bucket where a delete marker hides it, the detail says so and how to bring the
  archive back (its data is still there: S3 Object Lock kept it);
- ``mismatch``: in both, but size or checksum differ;
- ``deletion_confirmed``: we deleted it and it is gone; ``deletion_pending``: deleted but still
  listed by a listing older than the deletion; ``deletion_failed``: still listed long after;
- ``not_judged``: uploaded after the listing's date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from uploader.catalogue import KnownArchive, PendingDeletion


@dataclass(frozen=True, slots=True)
class ListedArchive:
    """An archive as the store lists it; ``key`` is None when it is not ours at all."""

    store_id: str  # S3/local key, Glacier ArchiveId
    size: int
    key: str | None = None
    host: str | None = None
    cycle_id: str | None = None
    plaintext_sha256: str | None = None
    created: datetime | None = None
    description: str = ""  # Glacier description / a summary of the metadata, for the records
    locked_until: datetime | None = None  # S3 Object Lock retention (recorded on adoption)


@dataclass(frozen=True, slots=True)
class Listing:
    """What the store holds, and as of when."""

    archives: tuple[ListedArchive, ...]
    as_of: datetime  # now (immediate listing) or the inventory date
    grace: float = 0.0  # seconds: what changed within this before ``as_of`` is not judged
    # Keys absent from the listing because a delete marker hides them in a versioned bucket,
    # with what hides them and how to bring them back (uploader.maintenance.locks).
    hidden: Mapping[str, str] = field(default_factory=dict)


ReconcileKind = Literal[
    "confirmed",
    "adopt",
    "foreign",
    "missing",
    "mismatch",
    "deletion_confirmed",
    "deletion_pending",
    "deletion_failed",
    "not_judged",
]


@dataclass(frozen=True, slots=True)
class ReconcileAction:
    """What to do about one archive (``kind``: see the module docstring)."""

    kind: ReconcileKind  # see the module docstring
    key: str | None
    detail: str
    known: KnownArchive | None = None
    listed: ListedArchive | None = None


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Every action of one reconciliation, and the listing date it judged by."""

    actions: tuple[ReconcileAction, ...]
    as_of: datetime

    def of(self, kind: ReconcileKind) -> list[ReconcileAction]:
        """The actions of one kind."""
        return [a for a in self.actions if a.kind == kind]

    def counts(self) -> dict[ReconcileKind, int]:
        """How many actions of each kind."""
        out: dict[ReconcileKind, int] = {}
        for a in self.actions:
            out[a.kind] = out.get(a.kind, 0) + 1
        return out


def _split(
    listed: Iterable[ListedArchive], host: str, ids: Mapping[str, str] | None = None
) -> tuple[dict[str, ListedArchive], list[ReconcileAction]]:
    """Our archives by key, and the foreign ones (not ours, another host's, duplicates).

    ``ids``: the store id the catalogue records for a key (a Glacier ArchiveId). Of several
    archives with one key, that one is ours, whatever the order; the others are duplicates."""
    ids = ids or {}
    ours: dict[str, ListedArchive] = {}
    foreign: list[ReconcileAction] = []

    def first(a: ListedArchive) -> tuple[str, bool, str]:
        return (a.key or "", ids.get(a.key or "") != a.store_id, a.store_id)

    for item in sorted(listed, key=first):
        if item.key is None:
            foreign.append(ReconcileAction("foreign", None, "not ours", listed=item))
        elif (item.host or item.key.split("/", 1)[0]) != host:
            # Another host's, by its metadata or, lacking that, by its key `<host>/<cycle>...`.
            why = f"another host's archive ({item.host or item.key.split('/', 1)[0]})"
            foreign.append(ReconcileAction("foreign", item.key, why, listed=item))
        elif item.key in ours:
            why = "a second archive with the same key"
            foreign.append(ReconcileAction("foreign", item.key, why, listed=item))
        else:
            ours[item.key] = item
    return ours, foreign


def _judge(k: KnownArchive, item: ListedArchive | None, listing: Listing) -> ReconcileAction:
    """One catalogue archive against the listing."""
    when = listing.as_of.isoformat()
    if item is None:
        if k.uploaded_at > listing.as_of - timedelta(seconds=listing.grace):
            return ReconcileAction("not_judged", k.key, f"uploaded after the listing of {when}", k)
        detail = f"absent from the listing of {when}"
        if k.key in listing.hidden:
            detail += f": {listing.hidden[k.key]}"
        return ReconcileAction("missing", k.key, detail, k)
    problems = []
    if item.size != k.size:
        problems.append(f"size {item.size} in the store, {k.size} in the catalogue")
    sums = (item.plaintext_sha256, k.plaintext_sha256)
    if all(sums) and sums[0] != sums[1]:
        problems.append("plaintext SHA-256 differs")
    if problems:
        return ReconcileAction("mismatch", k.key, "; ".join(problems), k, item)
    return ReconcileAction("confirmed", k.key, "present", k, item)


def _deletion(d: PendingDeletion, item: ListedArchive | None, listing: Listing) -> ReconcileAction:
    if item is None:
        return ReconcileAction("deletion_confirmed", d.key, "gone from the store")
    if d.deleted_at > listing.as_of - timedelta(seconds=listing.grace):
        detail = f"deleted after the listing of {listing.as_of.isoformat()}"
        return ReconcileAction("deletion_pending", d.key, detail, listed=item)
    detail = f"deleted {d.deleted_at.isoformat()} but still listed"
    return ReconcileAction("deletion_failed", d.key, detail, listed=item)


def _same_archive(
    key: str,
    store_id: str | None,
    ours: Mapping[str, ListedArchive],
    why: str,
    actions: list[ReconcileAction],
) -> ListedArchive | None:
    """The listed archive under ``key`` if it is the one the catalogue recorded (``store_id``);
    another archive under the key is recorded as foreign (``why``), and None is returned."""
    item = ours.get(key)
    if item is not None and store_id and item.store_id != store_id:
        actions.append(ReconcileAction("foreign", key, why, listed=item))
        return None
    return item


def reconcile(
    known: Iterable[KnownArchive],
    listing: Listing,
    host: str,
    deletions: Iterable[PendingDeletion] = (),
) -> Reconciliation:
    """What to do about every archive on either side (see the module docstring)."""
    known = sorted(known, key=lambda a: a.key)
    deletions = sorted(deletions, key=lambda d: d.key)
    # The catalogue's store id of a key wins over a duplicate's (a deletion's id, unless the
    # key was uploaded again since).
    ids = {d.key: d.store_id for d in deletions if d.store_id}
    ids.update({k.key: k.store_id for k in known if k.store_id})
    ours, actions = _split(listing.archives, host, ids)
    seen: set[str] = set()
    for k in known:
        seen.add(k.key)
        # Our ArchiveId is not listed, another archive with the key is: it does not confirm
        # ours (that would count a copy we never recorded as our newest backup).
        why = "a second archive with the same key (not the catalogue's)"
        item = _same_archive(k.key, k.store_id, ours, why, actions)
        actions.append(_judge(k, item, listing))
    for d in deletions:
        if d.key not in seen:  # a key re-uploaded since is judged as a catalogue archive above
            seen.add(d.key)
            # Another archive with the key of the one we deleted: not ours to judge or adopt.
            why = "a second archive with the key of a deleted one"
            item = _same_archive(d.key, d.store_id, ours, why, actions)
            actions.append(_deletion(d, item, listing))
    for key, item in sorted(ours.items()):
        if key not in seen:
            actions.append(ReconcileAction("adopt", key, "ours, not in the catalogue", listed=item))
    return Reconciliation(tuple(actions), listing.as_of)

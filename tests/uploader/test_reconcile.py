"""reconcile: the catalogue against a listing or an inventory, as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from uploader.archive import ObjectKind
from uploader.catalogue import ExpectedObject, MetadataRecord
from uploader.maintenance.reconcile import (
    KnownArchive,
    ListedArchive,
    Listing,
    PendingDeletion,
    reconcile,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
D = timedelta(days=1)
SHA = "a" * 64
HOST = "h1"


def known(key: str, ago: timedelta, size: int = 10, sha: str = SHA) -> KnownArchive:
    return KnownArchive(key, size, NOW - ago, sha)


def listed(
    key: str | None, size: int = 10, host: str | None = HOST, sha: str = SHA
) -> ListedArchive:
    return ListedArchive(store_id=f"id-{key}", size=size, key=key, host=host, plaintext_sha256=sha)


def test_golden_table() -> None:
    listing = Listing(
        (
            listed("h1/a.tar.age"),
            listed("h1/b.tar.age", size=11),
            listed("h1/c.tar.age", sha="b" * 64),
            listed("h1/lost.tar.age"),
            listed(None, host=None),
            listed("h2/x.tar.age", host="h2"),
            listed("h1/del-late.tar.age"),
            listed("h1/del-old.tar.age"),
        ),
        as_of=NOW - 2 * D,  # an inventory two days old
        grace=D.total_seconds(),
    )
    catalogue = [
        known("h1/a.tar.age", 10 * D),
        known("h1/b.tar.age", 10 * D),
        known("h1/c.tar.age", 10 * D),
        known("h1/gone.tar.age", 10 * D),
        known("h1/recent.tar.age", 2 * D),  # after as_of - grace: not judged
    ]
    deletions = [
        PendingDeletion("h1/del-late.tar.age", NOW - D),
        PendingDeletion("h1/del-old.tar.age", NOW - 20 * D),
        PendingDeletion("h1/del-done.tar.age", NOW - 20 * D),
    ]
    result = reconcile(catalogue, listing, HOST, deletions)
    assert sorted((a.kind, a.key or "") for a in result.actions) == sorted(
        [
            ("confirmed", "h1/a.tar.age"),
            ("mismatch", "h1/b.tar.age"),
            ("mismatch", "h1/c.tar.age"),
            ("missing", "h1/gone.tar.age"),
            ("not_judged", "h1/recent.tar.age"),
            ("adopt", "h1/lost.tar.age"),
            ("foreign", ""),
            ("foreign", "h2/x.tar.age"),
            ("deletion_pending", "h1/del-late.tar.age"),
            ("deletion_failed", "h1/del-old.tar.age"),
            ("deletion_confirmed", "h1/del-done.tar.age"),
        ]
    )
    (b,) = [a for a in result.of("mismatch") if a.key == "h1/b.tar.age"]
    assert "size 11" in b.detail


def test_inventory_lag_nothing_uploaded_after_the_inventory_is_judged() -> None:
    listing = Listing((), as_of=NOW - 3 * D, grace=D.total_seconds())
    result = reconcile(
        [known("h1/new.tar.age", 3 * D), known("h1/old.tar.age", 5 * D)], listing, HOST
    )
    assert {(a.kind, a.key) for a in result.actions} == {
        ("not_judged", "h1/new.tar.age"),
        ("missing", "h1/old.tar.age"),
    }


def test_empty_catalogue_adopts_everything_ours() -> None:
    listing = Listing((listed("h1/a.tar.age"), listed("h1/b.tar.age")), as_of=NOW)
    result = reconcile([], listing, HOST)
    assert [a.key for a in result.of("adopt")] == ["h1/a.tar.age", "h1/b.tar.age"]


def test_duplicate_key_is_foreign_not_adopted_twice() -> None:
    a1 = ListedArchive("id1", 10, "h1/a.tar.age", HOST)
    a2 = ListedArchive("id2", 10, "h1/a.tar.age", HOST)
    result = reconcile([], Listing((a2, a1), as_of=NOW), HOST)
    assert [x.listed.store_id for x in result.of("adopt") if x.listed] == ["id1"]
    assert [x.listed.store_id for x in result.of("foreign") if x.listed] == ["id2"]


def test_a_reuploaded_key_is_judged_as_a_catalogue_archive() -> None:
    listing = Listing((listed("h1/a.tar.age"),), as_of=NOW)
    result = reconcile(
        [known("h1/a.tar.age", D)], listing, HOST, [PendingDeletion("h1/a.tar.age", NOW - D)]
    )
    assert [(a.kind, a.key) for a in result.actions] == [("confirmed", "h1/a.tar.age")]


def test_the_catalogues_archive_id_wins_over_a_duplicate_with_the_same_key() -> None:
    """Review regression: with two archives under one key, the one the catalogue recorded (its
    ArchiveId) is ours, whatever their sort order; the other is the foreign duplicate."""
    dup = ListedArchive("aaa-dup", 99, "h1/a.tar.age", HOST, plaintext_sha256="c" * 64)
    mine = ListedArchive("zzz-mine", 10, "h1/a.tar.age", HOST, plaintext_sha256=SHA)
    k = KnownArchive("h1/a.tar.age", 10, NOW - 10 * D, SHA, store_id="zzz-mine")
    result = reconcile([k], Listing((dup, mine), as_of=NOW), HOST)
    assert [(a.kind, a.listed.store_id if a.listed else None) for a in result.actions] == [
        ("foreign", "aaa-dup"),
        ("confirmed", "zzz-mine"),
    ]


def test_a_deletion_is_judged_by_its_archive_id_not_by_a_duplicate_key() -> None:
    """Review regression: we deleted our ArchiveId; a second archive with the same key is still
    listed. Our deletion is confirmed, and the duplicate stays foreign (never adopted)."""
    dup = ListedArchive("aaa-dup", 10, "h1/a.tar.age", HOST)
    gone = PendingDeletion("h1/a.tar.age", NOW - 10 * D, store_id="zzz-mine")
    result = reconcile([], Listing((dup,), as_of=NOW), HOST, [gone])
    assert sorted((a.kind, a.key) for a in result.actions) == [
        ("deletion_confirmed", "h1/a.tar.age"),
        ("foreign", "h1/a.tar.age"),
    ]


def test_a_duplicate_key_does_not_confirm_a_catalogue_archive_that_is_gone() -> None:
    """Review regression: our ArchiveId is absent from the inventory, another archive with the
    same key is listed. Ours is MISSING (not confirmed by the other one), the other foreign."""
    dup = ListedArchive("aaa-dup", 10, "h1/a.tar.age", HOST, plaintext_sha256=SHA)
    k = KnownArchive("h1/a.tar.age", 10, NOW - 10 * D, SHA, store_id="zzz-mine")
    result = reconcile([k], Listing((dup,), as_of=NOW), HOST)
    assert sorted((a.kind, a.listed.store_id if a.listed else None) for a in result.actions) == [
        ("foreign", "aaa-dup"),
        ("missing", None),
    ]


def meta(cycle: str, ago: timedelta, size: int = 5) -> MetadataRecord:
    key = f"{HOST}/{cycle}.meta.age"
    return MetadataRecord(
        store="s",
        host=HOST,
        cycle_id=cycle,
        archive_key=f"{HOST}/{cycle}.tar.age",
        expected=ExpectedObject(key, size),
        uploaded_at=NOW - ago,
    )


def listed_meta(key: str, size: int = 5, host: str = HOST) -> ListedArchive:
    return ListedArchive(
        store_id=key, size=size, key=key, host=host, kind=ObjectKind.METADATA, plaintext_sha256=None
    )


def test_metadata_objects_are_judged_beside_their_archives() -> None:
    c = [f"2026010{n}T000000Z" for n in range(1, 9)]
    listing = Listing(
        (
            *(listed(f"h1/{x}.tar.age") for x in c[:4]),
            listed_meta(f"h1/{c[0]}.meta.age"),  # known, present
            listed_meta(f"h1/{c[1]}.meta.age", size=6),  # known, another size
            listed_meta(f"h1/{c[3]}.meta.age"),  # unknown, its archive ours
            listed_meta(f"h1/{c[4]}.meta.age"),  # its archive was pruned by us
            listed_meta(f"h1/{c[5]}.meta.age"),  # its archive is nowhere
            listed_meta(f"h2/{c[0]}.meta.age", host="h2"),  # another host's
        ),
        as_of=NOW,
    )
    catalogue = [known(f"h1/{x}.tar.age", 10 * D) for x in c[:4]]
    metadata = [
        meta(c[0], 10 * D),
        meta(c[1], 10 * D),
        meta(c[2], 10 * D),  # known, absent: MISSING (sent again)
        meta(c[6], -D),  # uploaded after the listing: not judged
    ]
    deletions = [PendingDeletion(f"h1/{c[4]}.tar.age", NOW - 5 * D)]
    result = reconcile(catalogue, listing, HOST, deletions, metadata)
    judged = {(a.kind, a.key) for a in result.actions if a.key and ".meta." in a.key}
    assert judged == {
        ("metadata_confirmed", f"h1/{c[0]}.meta.age"),
        ("metadata_mismatch", f"h1/{c[1]}.meta.age"),
        ("metadata_missing", f"h1/{c[2]}.meta.age"),
        ("metadata_adopt", f"h1/{c[3]}.meta.age"),
        ("metadata_pruned", f"h1/{c[4]}.meta.age"),
        ("metadata_orphan", f"h1/{c[5]}.meta.age"),
        ("not_judged", f"h1/{c[6]}.meta.age"),
        ("foreign", f"h2/{c[0]}.meta.age"),
    }
    # a metadata object is never an archive: not adopted as one, not a second archive
    assert {a.key for a in result.of("adopt")} == set()
    assert {a.key for a in result.of("confirmed")} == {f"h1/{x}.tar.age" for x in c[:4]}

"""The pure part of a migration: which vault archives move and under which key, daily batches
under --max-per-day, the 90-day rule for deleting sources, and the quote's arithmetic."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from uploader.catalogue import MigrationKind, MigrationRecord, MigrationState
from uploader.migrate.plan import (
    DAY,
    SelectOptions,
    VaultArchive,
    deletable_after,
    plan_requests,
    plan_source_deletions,
    select_archives,
)
from uploader.migrate.quote import QuoteItem, make_quote, quote_lines
from uploader.stores.base import GiB, MiB
from uploader.stores.glacier.description import ArchiveDescription

T = datetime(2026, 3, 1, tzinfo=UTC)


def ours(cycle: str, host: str = "h", *, archive_id: str = "", days: int = 0) -> VaultArchive:
    key = f"{host}/{cycle}.tar.age"
    desc = ArchiveDescription(key, host, cycle, 100, cycle_sha256="a" * 64, encryption="age")
    return VaultArchive(archive_id or f"id-{cycle}", 1000, T + timedelta(days=days), desc.render())


def legacy(name: str, archive_id: str, days: int = 0) -> VaultArchive:
    return VaultArchive(archive_id, 500, T + timedelta(days=days), f"/tmp/backups/{name}")


def test_our_archives_keep_key_and_metadata_and_gain_the_source_archive_id() -> None:
    (a,) = select_archives([ours("20260101T000000Z")], SelectOptions(host="h")).archives
    assert a.key == "h/20260101T000000Z.tar.age"
    assert a.kind is MigrationKind.OURS and a.cycle_id == "20260101T000000Z"
    assert a.metadata == {
        "format": "glacier-backup-archive",
        "format-version": "1",
        "host": "h",
        "cycle-id": "20260101T000000Z",
        "cycle-sha256": "a" * 64,
        "plaintext-size": "100",
        "encryption": "age",
        "source-archive-id": "id-20260101T000000Z",
    }


def test_other_hosts_legacy_and_foreign_archives_are_left_with_a_reason() -> None:
    listing = [
        ours("20260101T000000Z"),
        ours("20260102T000000Z", host="other"),
        legacy("GlacierBackup-20210513040000.tar.enc", "old-1"),
        VaultArchive("x", 10, T, "my holiday photos"),
    ]
    sel = select_archives(listing, SelectOptions(host="h"))
    assert [a.key for a in sel.archives] == ["h/20260101T000000Z.tar.age"]
    reasons = {s.what: s.reason for s in sel.skipped}
    assert reasons == {
        "other/20260102T000000Z.tar.age": "another host's (other)",
        "GlacierBackup-20210513040000.tar.enc": "the original tool's: add --include-legacy",
        "my holiday photos": "not an archive of this tool",
    }


def test_legacy_archives_move_as_they_are_under_host_legacy_with_unique_keys() -> None:
    listing = [
        legacy("GlacierBackup-20210513040000.tar.enc", "old-1"),
        legacy("GlacierBackup-20210513040000.tar.enc", "old-2", days=1),  # uploaded twice
        legacy("GlacierBackup-20210601040000.tar", "old-3", days=2),
    ]
    sel = select_archives(listing, SelectOptions(host="h", include_legacy=True))
    assert [(a.archive_id, a.key) for a in sel.archives] == [
        ("old-1", "h/legacy/GlacierBackup-20210513040000.tar.enc"),
        ("old-2", "h/legacy/GlacierBackup-20210513040000-2.tar.enc"),
        ("old-3", "h/legacy/GlacierBackup-20210601040000.tar"),
    ]
    first = sel.archives[0]
    assert first.kind is MigrationKind.LEGACY and first.cycle_id is None
    assert first.metadata == {
        "format": "glacierclient-archive",
        "host": "h",
        "legacy-description": "/tmp/backups/GlacierBackup-20210513040000.tar.enc",
        "source-archive-id": "old-1",
    }
    # A later run keeps the keys an earlier one gave, whatever the listing's order now.
    taken = {"h/legacy/GlacierBackup-20210513040000.tar.enc": "old-2"}
    again = select_archives(listing, SelectOptions(host="h", include_legacy=True, taken=taken))
    assert {a.archive_id: a.key for a in again.archives}["old-2"] == next(iter(taken))
    assert {a.archive_id: a.key for a in again.archives}["old-1"].endswith("-2.tar.enc")


def test_cycles_select_archives_and_an_unknown_one_is_reported() -> None:
    listing = [ours("20260101T000000Z"), ours("20260102T000000Z")]
    sel = select_archives(
        listing, SelectOptions(host="h", cycles=("20260102T000000Z", "20990101T000000Z"))
    )
    assert [a.cycle_id for a in sel.archives] == ["20260102T000000Z"]
    assert sel.unmatched == ("20990101T000000Z",)


def test_one_archive_per_key_and_none_for_a_key_the_destination_holds() -> None:
    listing = [
        ours("20260101T000000Z", archive_id="first", days=0),
        ours("20260101T000000Z", archive_id="again", days=1),  # the same cycle uploaded twice
        ours("20260102T000000Z"),
    ]
    sel = select_archives(
        listing,
        SelectOptions(
            host="h",
            preferred=frozenset({"first"}),  # the one the old catalogue records
            in_destination=frozenset({"h/20260102T000000Z.tar.age"}),
        ),
    )
    assert [a.archive_id for a in sel.archives] == ["first"]
    assert sorted(s.reason for s in sel.skipped) == [
        "a second archive of h/20260101T000000Z.tar.age: left in the vault",
        "already archived in the destination",
    ]


# -- --max-per-day -----------------------------------------------------------------------------


def test_requests_fill_the_rolling_day_in_order() -> None:
    todo = [(1, 40), (2, 40), (3, 40), (4, 10)]
    plan = plan_requests(todo, [], T, max_per_day=100)
    assert plan.now == (1, 2)  # 3 does not fit; 4 would, but the order is kept
    assert plan.next_at == T + DAY
    later = plan_requests(todo[2:], [(T, 40), (T, 40)], T + DAY, max_per_day=100)
    assert later.now == (3, 4)
    assert later.next_at is None


def test_earlier_requests_count_until_they_leave_the_window() -> None:
    recent = [(T - timedelta(hours=20), 60), (T - timedelta(hours=2), 30)]
    plan = plan_requests([(1, 20)], recent, T, max_per_day=100)
    assert plan.now == () and plan.next_at == T + timedelta(hours=4)  # the 60 leaves first
    assert plan_requests([(1, 20)], recent, T + timedelta(hours=4), 100).now == (1,)
    assert plan_requests([(1, 5)], recent, T, max_per_day=None).now == (1,)


def test_an_archive_bigger_than_the_daily_limit_goes_alone() -> None:
    plan = plan_requests([(1, 500), (2, 10)], [], T, max_per_day=100)
    assert plan.now == (1,) and plan.oversized == (1,)
    assert plan.next_at == T + DAY
    blocked = plan_requests([(1, 500)], [(T - timedelta(hours=1), 10)], T, 100)
    assert blocked.now == () and blocked.next_at == T + timedelta(hours=23)


# -- deleting the sources ----------------------------------------------------------------------


def record(key: str, state: MigrationState, created: datetime) -> MigrationRecord:
    return MigrationRecord(
        1,
        "glacier://v",
        "id",
        "s3://b/",
        key,
        MigrationKind.OURS,
        "h",
        "c",
        10,
        created,
        {},
        "",
        state,
    )


def test_only_verified_copies_past_90_days_lose_their_source() -> None:
    now = T + timedelta(days=100)
    old_copied = record("a", MigrationState.COPIED, T)
    young_copied = record("b", MigrationState.COPIED, T + timedelta(days=50))
    old_failed = record("c", MigrationState.FAILED, T)
    old_ready = record("d", MigrationState.READY, T)
    plan = plan_source_deletions([old_copied, young_copied, old_failed, old_ready], now, 90)
    assert plan.delete == (old_copied,)
    assert plan.keep == ((young_copied, T + timedelta(days=140)),)


def test_a_vault_lock_policy_pushes_deletion_back_or_forbids_it() -> None:
    now = T + timedelta(days=100)
    copied = record("a", MigrationState.COPIED, T)
    assert deletable_after(90, None) == 90
    assert deletable_after(90, 30) == 90  # the 90-day minimum still holds
    assert deletable_after(90, 365) == 365
    later = plan_source_deletions([copied], now, deletable_after(90, 365))
    assert later.delete == () and later.keep == ((copied, T + timedelta(days=365)),)
    never = plan_source_deletions([copied], now, deletable_after(90, math.inf))
    assert never.delete == () and never.keep == ((copied, None),)


# -- the quote ---------------------------------------------------------------------------------


def test_the_docs_worked_example() -> None:
    """docs/migration.md's example: 50 archives of 4 GiB (200 GiB) to DEEP_ARCHIVE, half of them
    60 days old, half 200 days, Bulk, at most 40 GiB a day, 16 MiB parts ("auto")."""
    now = T
    items = [QuoteItem(4 * GiB, now - timedelta(days=60 if i % 2 else 200)) for i in range(50)]
    q = make_quote(
        items,
        tier="Bulk",
        dest_class="DEEP_ARCHIVE",
        parts_for=lambda size: -(-size // (16 * MiB)),
        now=now,
        max_per_day=40 * GiB,
    )
    assert (q.archives, q.total_size, q.batches) == (50, 200 * GiB, 5)
    tiers = {t.tier: t for t in q.tiers}
    assert tiers["Bulk"].retrieval_usd == pytest.approx(0.50)  # 200 GiB x $0.0025
    assert tiers["Bulk"].requests_usd == pytest.approx(0.00125)  # 50 x $0.025 / 1000
    assert tiers["Standard"].retrieval_usd == pytest.approx(2.00)
    assert tiers["Expedited"].total_usd == pytest.approx(6.00 + 0.50)
    assert q.dest_requests == 50 * (256 + 2)
    assert q.dest_requests_usd == pytest.approx(12900 * 0.05 / 1000)
    overhead = 50 * (8 << 10) / GiB * 0.00099 + 50 * (32 << 10) / GiB * 0.023
    assert q.first_month_usd == pytest.approx(200 * 0.00099 + overhead)
    assert q.vault_month_usd == pytest.approx(200 * 0.0036)
    assert q.transfer_out_usd == pytest.approx(200 * GiB / 1e9 * 0.09)
    assert q.early == 25
    assert q.early_deletion_usd == pytest.approx(25 * 4 * 0.0036 * 30 / 30)  # 30 days left each
    assert q.free_from == now + timedelta(days=30)
    text = "\n".join(quote_lines(q, dest="s3://b/", max_per_day=40 * GiB, now=now))
    assert "50 archives, 200.0 GiB" in text
    assert "Bulk       5-12 hours       $0.5000 + $0.0013 = $0.5012  <- --tier" in text
    assert "5 daily batches" in text
    assert "25 archives are younger than 90 days" in text
    assert "$0.3600 in early-deletion fees" in text

"""Orphaned multipart uploads: the pure decision (a table), and a maintenance pass on a local
store where an old orphan and a fresh upload meet in one pass."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from uploader.catalogue import Catalogue
from uploader.maintenance import MaintenanceConfig, run_maintenance
from uploader.maintenance.orphans import DAY, KnownUpload, plan_orphan_aborts
from uploader.maintenance.retention import RetentionConfig
from uploader.stores.base import MultipartUploadInfo
from uploader.stores.local import LocalStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=2)
FRESH = NOW - timedelta(hours=1)


def _u(key: str, upload_id: str, initiated: datetime | None) -> MultipartUploadInfo:
    return MultipartUploadInfo(key, upload_id, initiated)


@pytest.mark.parametrize(
    ("upload", "known", "aborted", "why"),
    [
        (_u("h/c1.tar", "u1", OLD), [], True, "not in the catalogue"),
        (_u("h/c1.tar", "u1", FRESH), [], False, "within the grace period"),
        (_u("h/c1.tar", "u1", NOW - timedelta(seconds=DAY + 1)), [], True, "just past the grace"),
        (_u("h/c1.tar", "u1", NOW - timedelta(seconds=DAY)), [], False, "exactly the grace"),
        (_u("h/c1.tar", "u1", None), [], False, "no initiation time: cannot judge"),
        (_u("other/c1.tar", "u1", OLD), [], False, "another host's"),
        (_u("hx/c1.tar", "u1", OLD), [], False, "a host whose name starts like ours"),
        (_u("c1.tar", "u1", OLD), [], False, "not under a host"),
        (_u("h/c1.tar", "u1", OLD), [KnownUpload("h/c1.tar", "u1")], False, "kept to resume"),
        (
            _u("h/c1.tar", "u1", OLD),
            [KnownUpload("h/c1.tar", "u1", "completing")],
            False,
            "completing: never aborted",
        ),
        (
            _u("h/c1.tar", "u1", OLD),
            [KnownUpload("h/c1.tar", "u1", "failed")],
            True,
            "the catalogue has it as failed",
        ),
        (
            _u("h/c1.tar", "u1", OLD),
            [KnownUpload("h/c1.tar", "u1", "aborted")],
            True,
            "the catalogue has it as aborted",
        ),
        (
            _u("h/c1.tar", "stray", OLD),
            [KnownUpload("h/c1.tar", "u1")],
            True,
            "a second upload of a known key",
        ),
        (
            _u("h/c1.tar", "u1", OLD),
            [KnownUpload("h/c2.tar", "u1")],
            True,
            "the same id under another key",
        ),
    ],
)
def test_which_uploads_are_orphans(
    upload: MultipartUploadInfo, known: list[KnownUpload], aborted: bool, why: str
) -> None:
    plan = plan_orphan_aborts([upload], known, "h", NOW)
    assert [a.upload for a in plan] == ([upload] if aborted else []), why
    if aborted and why.startswith("the catalogue"):
        assert why in plan[0].reason


def test_the_grace_period_is_configurable_and_the_plan_sorted() -> None:
    uploads = [_u("h/b.tar", "2", FRESH), _u("h/a.tar", "1", OLD), _u("h/b.tar", "1", OLD)]
    assert [
        (a.upload.key, a.upload.upload_id) for a in plan_orphan_aborts(uploads, [], "h", NOW)
    ] == [
        ("h/a.tar", "1"),
        ("h/b.tar", "1"),
    ]
    assert len(plan_orphan_aborts(uploads, [], "h", NOW, grace=60)) == 3
    assert plan_orphan_aborts(uploads, [], "h", NOW, grace=7 * DAY) == []


async def test_a_local_pass_aborts_the_old_orphan_and_leaves_the_fresh_upload(
    tmp_path: Path,
) -> None:
    cfg = MaintenanceConfig(retention=RetentionConfig(), storage_class="STANDARD", host="h")
    async with LocalStore(tmp_path / "vault") as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            orphan = await store.create_multipart_upload("h/c1.tar", 1 << 20, {})
            time.sleep(0.01)
            fresh = await store.create_multipart_upload("h/c2.tar", 1 << 20, {})
            other = await store.create_multipart_upload("o/c1.tar", 1 << 20, {})
            when = {u.upload_id: u.initiated for u in await store.list_multipart_uploads()}
            t_orphan, t_fresh = when[orphan], when[fresh]
            assert t_orphan is not None and t_fresh is not None and t_fresh > t_orphan
            later = t_orphan + timedelta(days=1) + (t_fresh - t_orphan) / 2
            with capture_logs() as logs:
                report = await run_maintenance(store, cat, cfg, later)
            assert report.orphans_aborted == [f"h/c1.tar {orphan}"]
            assert [e["upload_id"] for e in logs if e["event"] == "maintenance.orphan_aborted"] == [
                orphan
            ]
            left = {u.upload_id for u in await store.list_multipart_uploads()}
            assert left == {fresh, other}

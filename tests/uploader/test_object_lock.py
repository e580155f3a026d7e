"""S3 Object Lock against both S3 servers of the suite (moto, SeaweedFS): a bucket created with
Object Lock enabled.

moto 5 keeps no retention from CreateMultipartUpload's object-lock headers (it does on
PutObject): there the store's check after completion sets it (``s3.retention_set_after_creation``
in the log). SeaweedFS 4.48 honours the headers, refuses to delete a locked version, and keeps
delete markers, as S3 does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from localbackup.configkit import ConfigError, Section
from uploader.catalogue import Catalogue, open_flags, prune_inputs
from uploader.config import EncryptionConfig, UploadConfig, store_config
from uploader.maintenance.executor import MaintenanceConfig, run_maintenance
from uploader.maintenance.locks import hidden_by_markers
from uploader.maintenance.retention import RetentionConfig
from uploader.object_lock import LockMode, LockPolicy, object_lock_for
from uploader.stores import ObjectVersion
from uploader.stores.s3 import ObjectLockUnavailable, S3Store
from uploader.upload import upload_cycle

from .conftest import MOTO_CAPABILITIES, build_cycle, s3_client

HOST = "testhost"
PLAIN = EncryptionConfig(mode="none")
DAY = 86400.0


def locked_bucket(endpoint: str) -> str:
    name = f"lock-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def plain_bucket(endpoint: str) -> str:
    name = f"plain-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def _store(endpoint: str, bucket: str, lock: LockPolicy | None) -> S3Store:
    # one-part archives: the smallest part size of either server does not matter
    return S3Store(
        bucket,
        "pfx/",
        "STANDARD",
        region="us-east-1",
        endpoint_url=endpoint,
        capabilities=MOTO_CAPABILITIES,
        max_attempts=2,
        object_lock=lock,
    )


def _maintenance(**retention: object) -> MaintenanceConfig:
    return MaintenanceConfig(
        retention=RetentionConfig(**retention),  # type: ignore[arg-type]
        storage_class="STANDARD",
        host=HOST,
    )


def _meta(archive_key: str) -> str:
    """The key of an archive's metadata object."""
    return archive_key.removesuffix(".tar") + ".meta.tar"


def _one(cat: Catalogue, store: S3Store) -> int:
    """A budget that holds the largest archive alone (with its metadata object)."""
    return max(a.size for a in prune_inputs(cat, store.name))


async def _upload(store: S3Store, cat: Catalogue, spool: Path, day: int, size: int = 3000) -> str:
    d = build_cycle(spool, [size], cycle_id=f"202601{day:02d}T000000Z", seed=day)
    return (await upload_cycle(d, store, cat, PLAIN, UploadConfig())).key


@pytest.mark.parametrize("mode", list(LockMode))
async def test_each_archive_is_created_locked(
    tmp_path: Path, aws_env: None, s3_endpoint: str, mode: LockMode, request: pytest.FixtureRequest
) -> None:
    bucket = locked_bucket(s3_endpoint)
    before = datetime.now(UTC)
    async with _store(s3_endpoint, bucket, LockPolicy(mode, 3 * DAY)) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat, capture_logs() as logs:
            key = await _upload(store, cat, tmp_path / "spool", 1)
            (recorded,) = prune_inputs(cat, store.name)
    # the upload's own headers lock it; only moto, which drops them, needs the second request
    set_after = [e for e in logs if e["event"] == "s3.retention_set_after_creation"]
    assert bool(set_after) == (request.node.callspec.params["s3_endpoint"] == "moto")
    head = s3_client(s3_endpoint).head_object(Bucket=bucket, Key="pfx/" + key)
    assert head["ObjectLockMode"] == mode.value.upper()
    until = head["ObjectLockRetainUntilDate"]
    assert before + timedelta(days=3) <= until <= datetime.now(UTC) + timedelta(days=3, seconds=1)
    assert recorded.locked_until == until  # the catalogue knows it: prune plans around it
    # its metadata object is locked the same way, as long (made a moment later)
    meta = s3_client(s3_endpoint).head_object(Bucket=bucket, Key="pfx/" + _meta(key))
    assert meta["ObjectLockMode"] == mode.value.upper()
    assert (
        until
        <= meta["ObjectLockRetainUntilDate"]
        <= datetime.now(UTC) + timedelta(days=3, seconds=1)
    )


def test_auto_locks_for_the_storage_class_minimum() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    auto = LockPolicy(LockMode.COMPLIANCE)
    assert object_lock_for(auto, "DEEP_ARCHIVE", now).retain_until == now + timedelta(days=180)
    assert object_lock_for(auto, "GLACIER", now).retain_until == now + timedelta(days=90)
    # an archive and its metadata object get the same retention from the same call
    lock = object_lock_for(auto, "GLACIER", now)
    assert lock.request_params() == {
        "ObjectLockMode": "COMPLIANCE",
        "ObjectLockRetainUntilDate": now + timedelta(days=90),
    }


async def test_prune_keeps_a_locked_archive_and_sends_no_delete(
    tmp_path: Path, aws_env: None, s3_endpoint: str
) -> None:
    bucket = locked_bucket(s3_endpoint)
    s3 = s3_client(s3_endpoint)
    async with _store(s3_endpoint, bucket, LockPolicy(LockMode.GOVERNANCE, 30 * DAY)) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            old = await _upload(store, cat, tmp_path / "spool", 1)
            new = await _upload(store, cat, tmp_path / "spool", 2)
            report = await run_maintenance(
                store, cat, _maintenance(max_store_size=1, keep_last=1), datetime.now(UTC)
            )
    assert report.plan is not None and report.deleted == [] and report.problems == []
    decision = next(d for d in report.plan.decisions if d.key == old)
    assert (decision.action, decision.rule) == ("keep", "locked")
    assert decision.reason.startswith("locked until ")
    assert report.plan.over_budget and "object locks" in report.plan.blocked_by
    versions = s3.list_object_versions(Bucket=bucket)
    kept = [old, new, _meta(old), _meta(new)]  # the metadata objects are kept too
    assert sorted(v["Key"] for v in versions["Versions"]) == sorted("pfx/" + k for k in kept)
    assert "DeleteMarkers" not in versions
    # the lock is real: S3 itself refuses to delete the version
    version = versions["Versions"][0]
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])


async def test_an_unlocked_archive_in_a_versioned_bucket_is_really_deleted(
    tmp_path: Path, aws_env: None, s3_endpoint: str
) -> None:
    bucket = locked_bucket(s3_endpoint)  # versioned, but these archives carry no retention
    async with _store(s3_endpoint, bucket, None) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            old = await _upload(store, cat, tmp_path / "spool", 1)
            await _upload(store, cat, tmp_path / "spool", 2)
            report = await run_maintenance(
                store,
                cat,
                _maintenance(max_store_size=_one(cat, store), keep_last=1),
                datetime.now(UTC),
            )
            assert report.deleted == [old] and report.metadata_deleted == [_meta(old)]
            again = await run_maintenance(store, cat, _maintenance(), datetime.now(UTC))
            assert again.reconciliation is not None
            confirmed = again.reconciliation.of("deletion_confirmed")
            assert sorted(a.key for a in confirmed if a.key) == sorted([old, _meta(old)])
    for gone in (old, _meta(old)):
        listing = s3_client(s3_endpoint).list_object_versions(Bucket=bucket, Prefix="pfx/" + gone)
        assert "Versions" not in listing and "DeleteMarkers" not in listing  # its bytes are gone


async def test_a_retention_extended_since_is_asked_before_deleting(
    tmp_path: Path, aws_env: None, s3_endpoint: str
) -> None:
    bucket = locked_bucket(s3_endpoint)
    s3 = s3_client(s3_endpoint)
    async with _store(s3_endpoint, bucket, None) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            old = await _upload(store, cat, tmp_path / "spool", 1)
            await _upload(store, cat, tmp_path / "spool", 2)
            until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
            s3.put_object_retention(  # an administrator locks it afterwards
                Bucket=bucket,
                Key="pfx/" + old,
                Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until},
            )
            report = await run_maintenance(
                store,
                cat,
                _maintenance(max_store_size=_one(cat, store), keep_last=1),
                datetime.now(UTC),
            )
            assert report.deleted == []
            shown = f"{until:%Y-%m-%d %H:%M} UTC"
            assert report.problems == [f"kept {old}: locked until {shown} (S3 Object Lock)"]
            inputs = {a.key: a for a in prune_inputs(cat, store.name)}
            assert inputs[old].locked_until == until  # the next plan knows
            replan = await run_maintenance(
                store,
                cat,
                _maintenance(max_store_size=_one(cat, store), keep_last=1, over_budget="upload"),
                datetime.now(UTC),
            )
    assert replan.plan is not None
    assert next(d.rule for d in replan.plan.decisions if d.key == old) == "locked"
    assert s3.head_object(Bucket=bucket, Key="pfx/" + old)["ContentLength"] > 0


async def test_a_delete_marker_is_reported_missing_with_the_way_back(
    tmp_path: Path, aws_env: None, s3_endpoint: str
) -> None:
    bucket = locked_bucket(s3_endpoint)
    s3 = s3_client(s3_endpoint)
    async with _store(s3_endpoint, bucket, LockPolicy(LockMode.COMPLIANCE, DAY)) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            key = await _upload(store, cat, tmp_path / "spool", 1)
            # whoever holds the machine's credentials deletes the archive: only a marker
            marker = s3.delete_object(Bucket=bucket, Key="pfx/" + key)["VersionId"]
            now = datetime.now(UTC) + timedelta(days=2)  # past the inventory grace
            report = await run_maintenance(store, cat, _maintenance(), now)
            assert report.reconciliation is not None
            (missing,) = report.reconciliation.of("missing")
            assert missing.key == key
            assert "hidden by a delete marker placed" in missing.detail
            assert f"(version {marker})" in missing.detail
            assert "delete that delete marker" in missing.detail
            (flag,) = open_flags(cat, store.name)
            assert flag.kind == "missing" and "delete marker" in flag.detail
            # the way back: remove the delete marker; the next pass confirms the archive
            s3.delete_object(Bucket=bucket, Key="pfx/" + key, VersionId=marker)
            back = await run_maintenance(store, cat, _maintenance(), now)
            assert back.reconciliation is not None
            assert back.reconciliation.counts() == {"confirmed": 1, "metadata_confirmed": 1}
            assert open_flags(cat, store.name) == []


async def test_a_bucket_without_object_lock_is_refused_before_anything_is_sent(
    tmp_path: Path, aws_env: None, s3_endpoint: str
) -> None:
    bucket = plain_bucket(s3_endpoint)
    async with _store(s3_endpoint, bucket, LockPolicy(LockMode.GOVERNANCE, DAY)) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            with pytest.raises(ObjectLockUnavailable, match=f"bucket {bucket} has no Object Lock"):
                await _upload(store, cat, tmp_path / "spool", 1)
            assert await store.list_multipart_uploads() == []
            assert (await store.bucket_lock()).enabled is False


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        (
            {"type": "glacier", "vault": "v", "object_lock": "governance"},
            "store.object_lock",
            "Vault Lock",
        ),
        (
            {"type": "s3", "bucket": "bkt", "object_lock": "forever"},
            "store.object_lock",
            "must be one of",
        ),
        ({"type": "s3", "bucket": "bkt", "lock_for": "30d"}, "store.lock_for", "needs object_lock"),
        (
            {
                "type": "s3",
                "bucket": "bkt",
                "storage_class": "STANDARD",
                "object_lock": "compliance",
            },
            "store.lock_for",
            "STANDARD has none",
        ),
        ({"type": "local", "object_lock": "governance"}, "store.object_lock", "store type 's3'"),
    ],
)
def test_bad_object_lock_config_names_the_key(
    table: dict[str, object], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        store_config(Section(table, "store", Path("/c.toml")))
    assert err.value.key == key and message in err.value.message


def test_object_lock_config_is_read() -> None:
    cfg = store_config(
        Section(
            {"type": "s3", "bucket": "bkt", "object_lock": "compliance", "lock_for": "2w"},
            "store",
            None,
        )
    )
    assert cfg.object_lock == LockPolicy(LockMode.COMPLIANCE, 14 * DAY)  # type: ignore[union-attr]
    auto = store_config(
        Section({"type": "s3", "bucket": "bkt", "object_lock": "governance"}, "store", None)
    )
    assert auto.object_lock == LockPolicy(LockMode.GOVERNANCE, None)  # type: ignore[union-attr]


def test_only_a_delete_marker_over_kept_data_hides_an_archive() -> None:
    t = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    versions = [
        # hidden: a marker on top of the data
        ObjectVersion("a", "m1", True, True, 0, t),
        ObjectVersion("a", "v1", False, False, 100, t - timedelta(days=9)),
        # the data is current: nothing hidden, whatever markers lie below
        ObjectVersion("b", "v2", True, False, 50, t),
        ObjectVersion("b", "m2", False, True, 0, t - timedelta(days=1)),
        # only markers: nothing left to bring back
        ObjectVersion("c", "m3", True, True, 0, t),
    ]
    hidden = hidden_by_markers(versions)
    assert list(hidden) == ["a"]
    assert (
        "(version m1)" in hidden["a"] and "100 bytes are still stored as version v1" in hidden["a"]
    )

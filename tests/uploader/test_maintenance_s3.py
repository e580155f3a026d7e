"""run_maintenance against a real moto S3 server: adoption, foreign objects, pruning, dry run."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
from structlog.testing import capture_logs

from uploader import catalogue as cm
from uploader.catalogue import Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.maintenance.executor import MaintenanceConfig, run_maintenance
from uploader.maintenance.retention import RetentionConfig
from uploader.stores.s3 import S3Store
from uploader.upload import upload_cycle

from .conftest import build_cycle, make_bucket, s3_store, with_metadata

HOST = "testhost"
PLAIN = EncryptionConfig(mode="none")


def _config(**retention: object) -> MaintenanceConfig:
    return MaintenanceConfig(
        retention=RetentionConfig(**retention),  # type: ignore[arg-type]
        storage_class="STANDARD",
        host=HOST,
    )


async def _upload(store: S3Store, cat: Catalogue, spool: Path, n: int) -> list[str]:
    keys = []
    for i in range(n):
        d = build_cycle(spool, [2000 + i], cycle_id=f"2026010{i + 1}T000000Z", seed=i + 1)
        rec = await upload_cycle(d, store, cat, PLAIN, UploadConfig())
        keys.append(rec.key)
    return keys


def _client(endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _keys(endpoint: str, bucket: str) -> list[str]:
    r = _client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in r.get("Contents", []))


async def test_lost_catalogue_is_rebuilt_by_adoption(
    tmp_path: Path, aws_env: None, moto_server: str
) -> None:
    bucket = make_bucket(moto_server)
    async with s3_store(moto_server, bucket) as store:
        with Catalogue(tmp_path / "a.sqlite3") as cat:
            keys = await _upload(store, cat, tmp_path / "spool", 2)
            originals = {a.key: a for a in cat.archives()}
        with Catalogue(tmp_path / "lost.sqlite3") as fresh:  # the catalogue was lost
            report = await run_maintenance(store, fresh, _config(), datetime.now(UTC))
            assert report.reconciliation is not None
            assert sorted(a.key or "" for a in report.reconciliation.of("adopt")) == keys
            rebuilt = {a.key: a for a in fresh.archives()}
            assert rebuilt.keys() == originals.keys()
            for key, a in rebuilt.items():
                assert a.size == originals[key].size
                # the metadata may not carry the bundle's SHA-256 (it is computed while streaming)
                assert a.plaintext_sha256 in ("", originals[key].plaintext_sha256)
                assert a.cycle_id == originals[key].cycle_id and a.confirmed_at is not None
            # their metadata objects too (a recovery reads them: see tests/test_recovery.py)
            adopted = report.reconciliation.of("metadata_adopt")
            assert sorted(a.key or "" for a in adopted) == with_metadata(*keys)[::2]
            again = await run_maintenance(store, fresh, _config(), datetime.now(UTC))
            assert again.reconciliation is not None
            assert again.reconciliation.counts() == {"confirmed": 2, "metadata_confirmed": 2}


async def test_foreign_objects_are_left_alone(
    tmp_path: Path, aws_env: None, moto_server: str
) -> None:
    bucket = make_bucket(moto_server)
    s3 = _client(moto_server)
    s3.put_object(Bucket=bucket, Key="pfx/notes.txt", Body=b"x" * 5000)
    s3.put_object(
        Bucket=bucket,
        Key="pfx/otherhost/20250101T000000Z.tar",
        Body=b"y" * 5000,
        Metadata={"format": "glacier-backup-archive", "host": "otherhost", "cycle-id": "c"},
    )
    async with s3_store(moto_server, bucket) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            keys = await _upload(store, cat, tmp_path / "spool", 2)
            later = datetime.now(UTC) + timedelta(days=400)
            # foreign objects count towards the store's size, but are never candidates; an
            # archive counts with its metadata object
            budget = max(a.size for a in cm.prune_inputs(cat, store.name)) + 2 * 5000
            cfg = _config(max_store_size=budget, keep_last=1)
            report = await run_maintenance(store, cat, cfg, later)
            assert report.reconciliation is not None
            foreign = sorted(
                a.listed.store_id for a in report.reconciliation.of("foreign") if a.listed
            )
            assert foreign == ["notes.txt", "otherhost/20250101T000000Z.tar"]
            assert report.deleted == [keys[0]]  # ours only; the newest is kept
            assert report.metadata_deleted == with_metadata(keys[0])[:1]  # with it
            assert {f.store_id for f in cm.foreign_archives(cat, store.name)} == set(foreign)
    assert _keys(moto_server, bucket) == [
        "pfx/notes.txt",
        "pfx/otherhost/20250101T000000Z.tar",
        *(f"pfx/{k}" for k in with_metadata(keys[1])),
    ]


async def test_pruning_under_a_budget_deletes_oldest_and_confirms_later(
    tmp_path: Path, aws_env: None, moto_server: str
) -> None:
    bucket = make_bucket(moto_server)
    async with s3_store(moto_server, bucket) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            keys = await _upload(store, cat, tmp_path / "spool", 4)
            sizes = {a.key: a.size for a in cm.prune_inputs(cat, store.name)}  # with metadata
            budget = sizes[keys[2]] + sizes[keys[3]]
            now = datetime.now(UTC) + timedelta(minutes=1)
            report = await run_maintenance(store, cat, _config(max_store_size=budget), now)
            assert report.plan is not None and not report.plan.over_budget
            assert report.deleted == keys[:2]
            assert [a.key for a in cat.archives()] == keys[2:]
            pending = {d.key for d in cm.pending_deletions(cat, store.name)}
            assert pending == set(with_metadata(*keys[:2]))  # each with its metadata object
            assert _keys(moto_server, bucket) == [f"pfx/{k}" for k in with_metadata(*keys[2:])]
            # The next pass's listing confirms the deletions; nothing more is deleted.
            again = await run_maintenance(store, cat, _config(max_store_size=budget), now)
            assert again.reconciliation is not None
            assert len(again.reconciliation.of("deletion_confirmed")) == 4
            assert again.deleted == [] and cm.pending_deletions(cat, store.name) == []
            assert cm.pruned_cycle_ids(cat, store.name) == {
                "20260101T000000Z",
                "20260102T000000Z",
            }


async def test_dry_run_deletes_nothing(tmp_path: Path, aws_env: None, moto_server: str) -> None:
    bucket = make_bucket(moto_server)
    async with s3_store(moto_server, bucket) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            keys = await _upload(store, cat, tmp_path / "spool", 3)
            cfg = MaintenanceConfig(
                retention=RetentionConfig(
                    max_store_size=max(a.size for a in cm.prune_inputs(cat, store.name)),
                    keep_last=1,
                ),
                storage_class="STANDARD",
                host=HOST,
                dry_run=True,
            )
            report = await run_maintenance(store, cat, cfg, datetime.now(UTC))
            assert report.plan is not None
            assert [d.key for d in report.plan.deletions] == keys[:2]
            assert report.deleted == []
            assert len(cat.archives()) == 3
            rows = cat.query("SELECT key, action, dry_run FROM prune_decisions ORDER BY id")
            assert (keys[0], "delete", 1) in rows
    assert _keys(moto_server, bucket) == [f"pfx/{k}" for k in with_metadata(*keys)]


async def test_missing_object_is_flagged_loudly(
    tmp_path: Path, aws_env: None, moto_server: str
) -> None:
    bucket = make_bucket(moto_server)
    async with s3_store(moto_server, bucket) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            keys = await _upload(store, cat, tmp_path / "spool", 2)
            _client(moto_server).delete_object(Bucket=bucket, Key=f"pfx/{keys[0]}")
            now = datetime.now(UTC) + timedelta(minutes=1)
            report = await run_maintenance(store, cat, _config(), now)
            assert report.reconciliation is not None
            assert [a.key for a in report.reconciliation.of("missing")] == [keys[0]]
            assert [(f.key, f.kind) for f in cm.open_flags(cat, store.name)] == [
                (keys[0], "missing")
            ]


def _uploads_in_progress(endpoint: str, bucket: str) -> set[tuple[str, str]]:
    r = _client(endpoint).list_multipart_uploads(Bucket=bucket)
    return {(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])}


async def test_orphaned_multipart_uploads_are_aborted_after_the_grace_period(
    tmp_path: Path, aws_env: None, moto_server: str
) -> None:
    bucket = make_bucket(moto_server)
    meta = {"format": "glacier-backup-archive", "host": HOST}
    async with s3_store(moto_server, bucket) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            # A failed cycle whose abort failed too: the catalogue forgot it, S3 bills its parts.
            orphan = await store.create_multipart_upload(f"{HOST}/c1.tar", 5 * 1024**2, meta)
            # Known to the catalogue: kept for the next attempt to resume.
            known = await store.create_multipart_upload(f"{HOST}/c2.tar", 5 * 1024**2, meta)
            cat.start_upload(
                store=store.name,
                key=f"{HOST}/c2.tar",
                cycle_id="c2",
                host=HOST,
                upload_id=known,
                part_size=5 * 1024**2,
                total_size=1,
                plaintext_size=1,
                plaintext_sha256="x",
                encryption=None,
            )
            other = await store.create_multipart_upload("otherhost/c1.tar", 5 * 1024**2, {})
            everything = {
                (f"pfx/{HOST}/c1.tar", orphan),
                (f"pfx/{HOST}/c2.tar", known),
                ("pfx/otherhost/c1.tar", other),
            }
            # moto reports one fixed Initiated time (2010-11-10) for every upload: the passes
            # below move ``now`` relative to it. (A fresh and an old upload in one pass: the
            # local store's test in test_orphans.py, and the table test there.)
            when = [u.initiated for u in await store.list_multipart_uploads()]
            assert len(when) == 3 and all(when)
            t0 = max(w for w in when if w is not None)

            # Within the grace period of a day (a concurrent upload process that has not
            # recorded its upload yet): nothing is touched.
            report = await run_maintenance(store, cat, _config(), t0 + timedelta(hours=12))
            assert report.orphans_aborted == [] and not report.problems
            assert _uploads_in_progress(moto_server, bucket) == everything
            # A dry run says what it would abort, and aborts nothing.
            later = t0 + timedelta(days=2)
            dry = replace(_config(), dry_run=True)
            with capture_logs() as logs:
                report = await run_maintenance(store, cat, dry, later)
            assert report.orphans_aborted == []
            assert [e["upload_id"] for e in logs if e["event"] == "maintenance.orphan_found"] == [
                orphan
            ]
            assert _uploads_in_progress(moto_server, bucket) == everything

            # Two days later: the orphan goes; the known one and another host's stay.
            with capture_logs() as logs:
                report = await run_maintenance(store, cat, _config(), later)
            assert report.orphans_aborted == [f"{HOST}/c1.tar {orphan}"]
            aborted = [e for e in logs if e["event"] == "maintenance.orphan_aborted"]
            assert [(e["key"], e["upload_id"]) for e in aborted] == [(f"{HOST}/c1.tar", orphan)]
            assert "not in the catalogue" in aborted[0]["reason"]
            assert _uploads_in_progress(moto_server, bucket) == everything - {
                (f"pfx/{HOST}/c1.tar", orphan)
            }
            assert [u.upload_id for u in cat.uploads()] == [known]


async def test_a_mismatched_newest_archive_does_not_count_as_the_newest_confirmed(
    tmp_path: Path, aws_env: None, moto_server: str
) -> None:
    """Review regression: an archive flagged MISMATCH is not the archive we uploaded. It used to
    count as confirmed, so as the newest one keep_last protects, and the older good archives
    were pruned for the budget: only a corrupt copy of the newest cycle was left."""
    bucket = make_bucket(moto_server)
    async with s3_store(moto_server, bucket) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            keys = await _upload(store, cat, tmp_path / "spool", 3)
            sizes = {a.key: a.size for a in cat.archives()}
            _client(moto_server).put_object(Bucket=bucket, Key=f"pfx/{keys[2]}", Body=b"bad")
            now = datetime.now(UTC) + timedelta(minutes=1)
            cfg = _config(max_store_size=sizes[keys[2]], keep_last=1)
            report = await run_maintenance(store, cat, cfg, now)
            assert report.reconciliation is not None
            assert [a.key for a in report.reconciliation.of("mismatch")] == [keys[2]]
            assert report.deleted == [] or report.deleted == [keys[0]]
            assert report.plan is not None
            rules = {d.key: d.rule for d in report.plan.decisions}
            assert rules[keys[1]] == "keep_last"  # the newest good archive
            assert rules[keys[2]] == "unconfirmed"  # kept to be investigated, never deleted
            assert f"pfx/{keys[1]}" in _keys(moto_server, bucket)

"""Issue 12, "survive what real clouds and real machines do": the defects it lists, reproduced
through the real ``glacier-backup`` process (or the store test servers). Each test states the
behaviour the issue asks for and failed before its fix; one still pinned as a strict xfail names
its defect.

Defect 1 (a 503 on UploadPart aborts the upload) is in tests/uploader/test_s3_faults.py, defect 2
(concurrent runs) in tests/watcher/test_concurrent_runs.py; defect 8 (SeaweedFS has no restore
API) is also shown by the SeaweedFS runs of the S3 restore tests (``s3_endpoint_for_restores``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.localbackup.test_extract import make_history, restored, snapshot
from tests.support.faultproxy import FaultProxy, S3Error
from tests.support.killpoints import (
    PausedChild,
    glacier_backup,
    run_until_killed,
    uploaded_config,
    write_config,
)
from tests.support.mounts import tmpfs
from tests.uploader.conftest import build_cycle
from uploader import catalogue as cm
from uploader.catalogue import CATALOGUE_FILE, Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.maintenance.executor import MaintenanceConfig, run_maintenance
from uploader.maintenance.retention import RetentionConfig
from uploader.stores.local import LocalStore
from uploader.upload import upload_cycle


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)


def _config(tmp_path: Path, store: dict[str, Any], **sections: dict[str, Any]) -> Path:
    """A configuration of host ``testhost`` (every backup a sealed full, no encryption)."""
    return write_config(
        tmp_path / "config.toml",
        {
            "state_dir": tmp_path / "state",
            "backup": {
                "sources": [str(tmp_path / "src")],
                "spool_dir": tmp_path / "spool",
                "host": "testhost",
                "increments_per_cycle": 0,  # every backup is a sealed full
            },
            "encryption": {"mode": "none"},
            "store": store,
            **sections,
        },
    )


def test_a_second_upload_of_a_cycle_being_uploaded_stands_aside(tmp_path: Path) -> None:
    build_cycle(tmp_path / "spool", [6 << 20, 100], cycle_id="20260101T000000Z")
    config = _config(
        tmp_path,
        {"type": "local", "path": str(tmp_path / "vault")},
        upload={"part_size": "1MiB", "concurrency": 1},
    )
    # The first upload is alive but slow: frozen after its second part, then let go on.
    first = PausedChild(glacier_backup(config, "upload"), "upload.part_recorded", tmp_path, nth=2)
    with first:
        first.wait_paused()
        second = run(glacier_backup(config, "upload"))
        first_rc = first.resume()
    assert (second.returncode, first_rc) == (0, 0), second.stdout + second.stderr + first.output()
    assert "being uploaded by pid" in second.stdout + second.stderr
    assert [p.name for p in (tmp_path / "vault" / "testhost").iterdir()] == ["20260101T000000Z.tar"]
    assert not list((tmp_path / "vault" / ".uploads").iterdir())


def test_upload_of_a_cycle_whose_archive_is_missing_sends_it_again(tmp_path: Path) -> None:
    cycle = "20260101T000000Z"
    build_cycle(tmp_path / "spool", [3000], cycle_id=cycle)
    vault = tmp_path / "vault"
    config = _config(tmp_path, {"type": "local", "path": str(vault)})
    assert run(glacier_backup(config, "upload")).returncode == 0
    key = f"testhost/{cycle}.tar"
    (vault / key).unlink()  # lost from the store; the next inventory flags it
    with Catalogue.in_state_dir(tmp_path / "state") as cat:
        store = LocalStore(vault).name
        cm.flag_archive(cat, store, key, "missing", detail="absent", now=datetime.now(UTC))
    r = run(glacier_backup(config, "upload", cycle))  # what docs/retention.md tells users
    assert r.returncode == 0, r.stderr
    assert (vault / key).exists(), r.stdout + r.stderr
    assert f"{cycle}: the archive in local:{vault} is flagged MISSING: uploading again" in r.stdout
    # Once the spool no longer has the cycle, the command says so, and what can be done.
    (vault / key).unlink()
    with Catalogue.in_state_dir(tmp_path / "state") as cat:
        cm.flag_archive(cat, f"local:{vault}", key, "missing", detail="absent", now=later())
    shutil.rmtree(tmp_path / "spool" / "cycles" / cycle)
    r = run(glacier_backup(config, "upload", cycle))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "flagged MISSING" in r.stderr and "no longer in" in r.stderr
    assert "glacier-backup inventory" in r.stderr and "backup --full" in r.stderr


def later() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)  # after the archive's upload time


async def test_status_does_not_count_pruned_cycles_as_waiting(tmp_path: Path) -> None:
    vault, spool = tmp_path / "vault", tmp_path / "spool"
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    clock = {"now": t0}
    plain = EncryptionConfig(mode="none")
    with Catalogue(tmp_path / "state" / CATALOGUE_FILE, clock=lambda: clock["now"]) as cat:
        async with LocalStore(vault) as store:
            for i in range(3):  # a month apart, then pruned down to the newest
                clock["now"] = t0 + timedelta(days=31 * i)
                cycle = build_cycle(spool, [5000, 100], cycle_id=f"2025010{i + 1}T000000Z", seed=i)
                await upload_cycle(cycle, store, cat, plain, UploadConfig())
            retention = RetentionConfig(max_store_size=12_000, min_age=0, keep_last=1)
            cfg = MaintenanceConfig(retention=retention, storage_class="LOCAL", host="testhost")
            report = await run_maintenance(store, cat, cfg, t0 + timedelta(days=100))
    assert report.deleted
    config = _config(tmp_path, {"type": "local", "path": str(vault)})
    assert "nothing to upload" in run(glacier_backup(config, "upload")).stdout
    status = run(glacier_backup(config, "status", "--json"))
    assert json.loads(status.stdout)["sealed_waiting"] == []


def test_a_persistent_job_output_failure_names_the_store_error_and_resume(
    tmp_path: Path, glacier_emulator: Any, aws_env: None
) -> None:
    from tests.uploader.test_restore_cold import HOUR, _vault_store, config_dict

    h = make_history(tmp_path)
    config = write_config(
        tmp_path / "config.toml", config_dict(tmp_path, h.src, _vault_store(glacier_emulator))
    )
    assert run(glacier_backup(config, "seal")).returncode == 0
    assert run(glacier_backup(config, "upload")).returncode == 0
    out = tmp_path / "out"
    requested = run(glacier_backup(config, "restore", "--to", str(out), "--yes"))
    assert requested.returncode == 0, requested.stderr
    glacier_emulator.control.advance(6 * HOUR)
    glacier_emulator.control.cut_response(100, operation="GetJobOutput", count=1000)
    r = run(glacier_backup(config, "restore", "--to", str(out), "--resume"))
    text = r.stdout + r.stderr
    assert r.returncode == 1, text
    assert "TaskGroup" not in text and "sub-exception" not in text, text
    assert "restore --resume" in text, text
    assert "downloading h/" in text and "stopped: " in text, text  # names what failed
    # ... and it does continue once the store is well again.
    glacier_emulator.control.clear_faults()
    r = run(glacier_backup(config, "restore", "--to", str(out), "--resume"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]


def test_a_full_spool_names_the_path_and_leaves_no_partial_file(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big").write_bytes(os.urandom(4 << 20))  # incompressible
    with tmpfs(tmp_path / "spool", size="1m") as spool:
        config = _config(tmp_path, {"type": "local", "path": str(tmp_path / "vault")})
        r = run(glacier_backup(config, "backup"))
        assert r.returncode == 1, r.stdout + r.stderr
        assert str(spool) in r.stderr, r.stderr
        assert "no space left on the filesystem of" in r.stderr, r.stderr
        assert re.search(
            r"needed more than the [\d.]+ \w+ written before it filled \([\d.]+ \w+ free of",
            r.stderr,
        ), r.stderr
        assert "backup.spool_dir" in r.stderr, r.stderr
        assert not list(spool.rglob("*.partial")), sorted(spool.rglob("*"))


@pytest.mark.parametrize("mount_point", [False, True], ids=["beside", "mount-point"])
def test_a_full_restore_target_names_the_path_and_leaves_nothing(
    tmp_path: Path, mount_point: bool
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big").write_bytes(os.urandom(3 << 20))
    config = _config(tmp_path, {"type": "local", "path": str(tmp_path / "vault")})
    assert run(glacier_backup(config, "backup")).returncode == 0
    with tmpfs(tmp_path / "small", size="1m") as small:
        to = small if mount_point else small / "restored"
        r = run(glacier_backup(config, "restore", "--from-spool", "--to", str(to)))
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"no space left on the filesystem of {to}: restoring into {to}" in r.stderr
        assert "restore to another place with --to" in r.stderr
        assert list(small.iterdir()) == []  # nothing half-written


def test_a_finished_restore_killed_at_its_end_is_recognised_by_resume(
    tmp_path: Path, moto_server: str, aws_env: None
) -> None:
    h = make_history(tmp_path)
    config = _s3_config(tmp_path, moto_server, h)
    out = tmp_path / "out"
    restore = glacier_backup(config, "restore", "--to", str(out), "--yes")
    run_until_killed(restore, "restore.after_done", tmp_path)
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]  # it had finished
    again = run(glacier_backup(config, "restore", "--to", str(out), "--resume"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"the restore into {out} finished on " in again.stdout
    assert "nothing to resume" in again.stdout
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]


def _s3_config(tmp_path: Path, endpoint: str, h: Any) -> Path:
    bucket = f"issue12-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    store = {
        "type": "s3",
        "bucket": bucket,
        "storage_class": "DEEP_ARCHIVE",
        "endpoint_url": endpoint,
        "region": "us-east-1",
    }
    return uploaded_config(tmp_path, h.src, store)


def test_a_server_without_the_restore_api_is_read_directly_saying_so_once(
    tmp_path: Path, seaweedfs_server: str, aws_env: None
) -> None:
    h = make_history(tmp_path)
    config = _s3_config(tmp_path, seaweedfs_server, h)
    out = tmp_path / "out"
    r = run(glacier_backup(config, "restore", "--to", str(out), "--yes"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("takes no restore requests") == 1, r.stdout
    assert "MethodNotAllowed" in r.stdout and "reads directly" in r.stdout
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]


def test_a_refused_restore_of_an_unreadable_object_says_both(
    tmp_path: Path, s3_proxy: FaultProxy, aws_env: None
) -> None:
    h = make_history(tmp_path)
    config = _s3_config(tmp_path, s3_proxy.url, h)
    refused = S3Error(405, "MethodNotAllowed", "The specified method is not allowed.")
    s3_proxy.fail("RestoreObject", refused, times=None)
    out = tmp_path / "out"
    r = run(glacier_backup(config, "restore", "--to", str(out), "--yes"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "MethodNotAllowed" in r.stderr and "cannot be read directly either" in r.stderr
    assert s3_proxy.requests("GetObject") == 1  # the one small probe, then nothing
    assert not out.exists()


def test_a_frozen_s3_server_times_out_and_the_part_is_sent_again(
    tmp_path: Path, s3_proxy: FaultProxy, aws_env: None
) -> None:
    build_cycle(tmp_path / "spool", [3000], cycle_id="20260101T000000Z")
    bucket = f"defect7-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_proxy.url, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    store = {
        "type": "s3",
        "bucket": bucket,
        "storage_class": "STANDARD",
        "endpoint_url": s3_proxy.url,
        "region": "us-east-1",
        "read_timeout": "1s",
    }
    config = _config(tmp_path, store)
    frozen = s3_proxy.stall("UploadPart")  # the first part's answer never comes
    try:
        r = run(glacier_backup(config, "upload"))
    finally:
        frozen.release()
    assert r.returncode == 0, r.stdout + r.stderr
    assert frozen.fired == 1 and s3_proxy.requests("UploadPart") == 2, s3_proxy.stats()
    assert s3_proxy.requests("AbortMultipartUpload") == 0


def test_the_service_says_it_retries_and_status_shows_since_when_and_why(
    tmp_path: Path,
) -> None:
    from tests.watcher.service_harness import Service

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "data").write_bytes(os.urandom(2 << 20))  # two parts of 1 MiB
    with tmpfs(tmp_path / "nas", size="4m") as nas:  # a NAS that filled up
        filler = nas / "filler"
        filler.write_bytes(bytes((4 << 20) - (64 << 10)))  # 64 KiB left: the parts do not fit
        config = _config(
            tmp_path,
            {"type": "local", "path": str(nas / "vault")},
            upload={"part_size": "1MiB", "retries": 1},
        )
        assert run(glacier_backup(config, "backup")).returncode == 0
        service = Service(glacier_backup(config, "watch"))
        try:
            part = service.wait_for(lambda e: e["event"] == "upload.part_retry")
            assert "No space left on device" in part["error"] and part["retry_at"], part
            later = service.wait_for(lambda e: e["event"] == "watch.retry_scheduled")
            assert "No space left on device" in later["error"] and later["retry_at"], later
            status = run(glacier_backup(config, "status", "--json"))
            (retrying,) = json.loads(status.stdout)["retrying"]
            assert "No space left on device" in retrying["reason"]
            assert retrying["next_at"].startswith(later["retry_at"][:19])
            text = run(glacier_backup(config, "status")).stdout
            since = datetime.fromisoformat(retrying["since"]).astimezone()
            assert f"retrying {retrying['cycle_id']} since {since:%Y-%m-%d %H:%M %Z}: " in text, (
                text
            )
        finally:
            assert service.stop() == 0
        filler.unlink()  # room again: the next upload goes through and the streak is over
        assert run(glacier_backup(config, "upload")).returncode == 0
        status = run(glacier_backup(config, "status", "--json"))
        assert json.loads(status.stdout)["retrying"] == []

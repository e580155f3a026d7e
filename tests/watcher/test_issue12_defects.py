"""Issue 12, "survive what real clouds and real machines do": the defects it lists, reproduced
through the real ``glacier-backup`` process (or the store test servers) and pinned as strict
xfails. Each states the behaviour the issue asks for; when a fix lands, its test passes, the
strict xfail turns that into a failure, and the marker is removed with the fix.

Defect 1 (a 503 on UploadPart aborts the upload) is in tests/uploader/test_s3_faults.py, defect 8
(SeaweedFS has no restore API) in the SeaweedFS runs of the S3 restore tests
(tests/conftest.py: SEAWEEDFS_NO_RESTORE). Defect 7 (a frozen S3 server: no log line, no timeout)
is shown by the fault proxy's ``stall`` but has no test yet: its timeout settings are to be named.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.localbackup.test_extract import make_history, restored, snapshot
from tests.support.killpoints import PausedChild, glacier_backup, run_until_killed, write_config
from tests.support.mounts import tmpfs
from tests.uploader.conftest import build_cycle
from uploader import catalogue as cm
from uploader.catalogue import CATALOGUE_FILE, Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.maintenance.executor import MaintenanceConfig, run_maintenance
from uploader.maintenance.retention import RetentionConfig
from uploader.stores.local import LocalStore
from uploader.upload import upload_cycle


def defect(n: int, what: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"issue 12 defect {n}: {what}")


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)


def _config(tmp_path: Path, store: dict[str, Any], **sections: dict[str, Any]) -> Path:
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


@defect(2, "two uploads of one cycle abort each other")
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


@defect(3, "upload CYCLE says 'already archived' for an archive flagged MISSING")
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


@defect(5, "a persistent job-output failure ends with TaskGroup text")
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


@defect(6, "a full spool: ENOSPC without a path, and the .partial increment stays")
def test_a_full_spool_names_the_path_and_leaves_no_partial_file(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big").write_bytes(os.urandom(4 << 20))  # incompressible
    with tmpfs(tmp_path / "spool", size="1m") as spool:
        config = _config(tmp_path, {"type": "local", "path": str(tmp_path / "vault")})
        r = run(glacier_backup(config, "backup"))
        assert r.returncode == 1, r.stdout + r.stderr
        assert str(spool) in r.stderr, r.stderr
        assert not list(spool.rglob("*.partial")), sorted(spool.rglob("*"))


@defect(9, "restore --resume after a kill past restore.done: 'target is not empty'")
def test_a_finished_restore_killed_at_its_end_is_recognised_by_resume(
    tmp_path: Path, moto_server: str, aws_env: None
) -> None:
    bucket = f"defect9-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    h = make_history(tmp_path)
    store = {
        "type": "s3",
        "bucket": bucket,
        "storage_class": "DEEP_ARCHIVE",
        "endpoint_url": moto_server,
        "region": "us-east-1",
    }
    config = write_config(
        tmp_path / "config.toml",
        {
            "state_dir": tmp_path / "state",
            "backup": {"sources": [str(h.src)], "spool_dir": tmp_path / "spool", "host": "h"},
            "encryption": {"mode": "none"},
            "store": store,
        },
    )
    assert run(glacier_backup(config, "seal")).returncode == 0
    assert run(glacier_backup(config, "upload")).returncode == 0
    out = tmp_path / "out"
    restore = glacier_backup(config, "restore", "--to", str(out), "--yes")
    run_until_killed(restore, "restore.after_done", tmp_path)
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]  # it had finished
    again = run(glacier_backup(config, "restore", "--to", str(out), "--resume"))
    assert again.returncode == 0, again.stdout + again.stderr

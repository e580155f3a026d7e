"""Concurrent runs on one cycle (issue 12 defect 2): one process uploads a cycle at a time.

Every test holds a real ``glacier-backup`` process frozen in the middle of an upload (a pause
point) while another command runs beside it: a second ``upload`` stands aside ("being uploaded by
pid N", exit 0), the service leaves the cycle to a CLI upload and the other way round, and a
maintenance pass (``prune``, ``inventory``) neither adopts, aborts nor deletes what the live
upload is making. A SIGKILLed uploader leaves no lock behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from localbackup.formats import is_marker_name
from tests.support.killpoints import PausedChild, glacier_backup, run_until_killed, write_config
from tests.support.waiting import wait_for
from tests.uploader.conftest import build_cycle, make_bucket
from tests.watcher.service_harness import Project
from uploader.catalogue import Catalogue
from uploader.cycle_lock import CycleBusy, cycle_lock, lock_path
from uploader.maintenance.executor import MaintenanceConfig, run_maintenance
from uploader.maintenance.retention import RetentionConfig
from uploader.stores.local import LocalStore
from watcher.markers import DONE

CYCLE = "20260101T000000Z"


def _config(tmp_path: Path, store: dict[str, Any], part_size: str = "1MiB") -> Path:
    return write_config(
        tmp_path / "config.toml",
        {
            "state_dir": tmp_path / "state",
            "backup": {
                "sources": [str(tmp_path / "src")],
                "spool_dir": tmp_path / "spool",
                "host": "testhost",
            },
            "encryption": {"mode": "none"},
            "store": store,
            "upload": {"part_size": part_size, "concurrency": 1},
            "retention": {"min_age": "1s", "keep_last": 1, "max_store_size": "1KiB"},
        },
    )


def _run(config: Path, *args: str) -> tuple[int, str]:
    r = subprocess.run(
        glacier_backup(config, *args), capture_output=True, text=True, check=False, timeout=300
    )
    return r.returncode, r.stdout + r.stderr


def test_the_cycle_lock_names_its_holder_and_is_gone_after_release(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with cycle_lock(state, CYCLE):
        assert lock_path(state, CYCLE).read_text() == f"{os.getpid()}\n"
        assert (lock_path(state, CYCLE).parent.stat().st_mode & 0o777) == 0o700
        busy = pytest.raises(CycleBusy, match=f"being uploaded by pid {os.getpid()}")
        with busy, cycle_lock(state, CYCLE):  # another open file: flock excludes it too
            pass
    assert not lock_path(state, CYCLE).exists()
    with cycle_lock(state, CYCLE):  # free again
        pass


def test_two_uploads_of_one_cycle_to_s3_make_one_object_and_leave_no_upload(
    tmp_path: Path, moto_server: str, aws_env: None
) -> None:
    import boto3

    build_cycle(tmp_path / "spool", [6 << 20, 100], cycle_id=CYCLE)  # two parts of 5 MiB
    bucket = make_bucket(moto_server)
    store = {"type": "s3", "bucket": bucket, "storage_class": "STANDARD",
             "endpoint_url": moto_server, "region": "us-east-1"}  # fmt: skip
    config = _config(tmp_path, store, part_size="5MiB")
    with PausedChild(glacier_backup(config, "upload"), "upload.part_recorded", tmp_path) as first:
        first.wait_paused()
        rc, out = _run(config, "upload")
        assert rc == 0, out
        assert f"{CYCLE}: cycle {CYCLE} is being uploaded by pid {first.proc.pid}" in out
        assert first.resume() == 0, first.output()
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == [f"testhost/{CYCLE}.tar"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_cli_upload_leaves_the_cycle_to_the_service_uploading_it(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0, upload='part_size = "1MiB"\nconcurrency = 1')
    (p.src / "big").write_bytes(os.urandom(3 << 20))
    p.backup()  # a sealed full and its marker
    with PausedChild(p.cmd("watch"), "upload.part_recorded", tmp_path) as service:
        service.wait_paused()
        r = p.run("upload")
        assert r.returncode == 0, r.stderr
        assert f"is being uploaded by pid {service.proc.pid}" in r.stdout
        service.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: list((p.markers / "done").glob("*.json")), 120, "the marker filed done")
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(60) == 0, service.output()
    assert len(list(p.vault.rglob("*.tar.age"))) == 1
    assert p.status()["uploads_in_progress"] == []


def test_the_service_leaves_the_cycle_to_a_cli_upload_then_files_its_marker(
    tmp_path: Path,
) -> None:
    p = Project(tmp_path, increments=0, upload='part_size = "1MiB"\nconcurrency = 1')
    (p.src / "big").write_bytes(os.urandom(3 << 20))
    p.backup()
    with PausedChild(p.cmd("upload"), "upload.part_recorded", tmp_path) as cli:
        cli.wait_paused()
        service = p.start_service()
        try:
            left = service.wait_for(lambda e: e["event"] == "watch.upload_left_to_other")
            assert f"being uploaded by pid {cli.proc.pid}" in left["reason"]
            assert cli.resume() == 0, cli.output()
        finally:
            assert service.stop() == 0
    # The CLI upload filed the cycle's marker as done; the service stood aside, sent nothing.
    assert not [m for m in p.markers.iterdir() if is_marker_name(m.name)]
    assert [m.name for m in (p.markers / DONE).iterdir() if is_marker_name(m.name)]
    assert not service.matching(lambda e: e["event"] == "upload.started")
    assert len(list(p.vault.rglob("*.tar.age"))) == 1


def test_prune_and_inventory_leave_a_cycle_being_completed_alone(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    config = _config(tmp_path, {"type": "local", "path": str(vault)})
    build_cycle(tmp_path / "spool", [3000], cycle_id=CYCLE)
    assert _run(config, "upload")[0] == 0  # the newest cycle: keep_last protects it
    late = "20250101T000000Z"  # an older cycle uploaded late (a MISSING one sent again...)
    build_cycle(tmp_path / "spool", [3 << 20, 100], cycle_id=late, seed=2)
    key = f"testhost/{late}.tar"
    # Its object is in the store, the catalogue still says "completing": a listing now shows
    # an archive of ours the catalogue does not have, older than min_age, over the budget and
    # kept by no rule. Adopted and pruned now, it would be recorded as uploaded once the
    # upload goes on, while the store no longer has it.
    with PausedChild(glacier_backup(config, "upload"), "upload.after_complete", tmp_path) as up:
        up.wait_paused()
        old = datetime.now(UTC).timestamp() - 7 * 86400
        os.utime(vault / key, (old, old))
        for command in ("inventory", "prune"):
            rc, out = _run(config, command)
            assert rc in (0, 3), out
            assert "maintenance.left_to_upload" in out, out
        assert (vault / key).exists()
        assert up.resume() == 0, up.output()
    assert (vault / key).exists()
    rc, out = _run(config, "inventory")
    assert rc == 0, out
    with Catalogue.in_state_dir(tmp_path / "state") as cat:
        archives = {a.key: a for a in cat.archives()}
    assert sorted(archives) == [key, f"testhost/{CYCLE}.tar"]
    assert archives[key].confirmed_at is not None


async def test_the_orphan_sweep_leaves_a_live_upload_alone(tmp_path: Path) -> None:
    build_cycle(tmp_path / "spool", [2 << 20, 100], cycle_id=CYCLE)
    vault = tmp_path / "vault"
    config = _config(tmp_path, {"type": "local", "path": str(vault)})
    # Frozen between creating the upload and recording it: the store has an upload the
    # catalogue does not know, which is what an orphan looks like.
    with PausedChild(glacier_backup(config, "upload"), "upload.created", tmp_path) as up:
        up.wait_paused()
        retention = RetentionConfig(max_store_size=1 << 40, min_age=0, keep_last=1)
        cfg = MaintenanceConfig(
            retention=retention, storage_class="LOCAL", host="testhost", orphan_grace=0
        )
        with Catalogue.in_state_dir(tmp_path / "state") as cat:
            async with LocalStore(vault) as store:
                report = await run_maintenance(store, cat, cfg, datetime.now(UTC))
                assert report.orphans_aborted == []
                assert len(await store.list_multipart_uploads()) == 1
        assert up.resume() == 0, up.output()
    assert (vault / f"testhost/{CYCLE}.tar").exists()


def test_a_killed_upload_leaves_no_lock_behind(tmp_path: Path) -> None:
    build_cycle(tmp_path / "spool", [2 << 20, 100], cycle_id=CYCLE)
    config = _config(tmp_path, {"type": "local", "path": str(tmp_path / "vault")})
    run_until_killed(glacier_backup(config, "upload"), "upload.part_recorded", tmp_path)
    rc, out = _run(config, "upload")
    assert rc == 0 and "being uploaded" not in out, out
    assert (tmp_path / "vault" / f"testhost/{CYCLE}.tar").exists()
    assert not list((tmp_path / "state" / "locks").iterdir())

"""``init`` and ``status`` say whether the bucket can lock what ``[store] object_lock`` asks."""

from __future__ import annotations

import json
from pathlib import Path

from tests.uploader.test_object_lock import locked_bucket, plain_bucket
from tests.watcher.service_harness import Project


def _project(tmp_path: Path, endpoint: str, bucket: str) -> Project:
    store = (
        f'type = "s3"\nbucket = "{bucket}"\nprefix = "p/"\nstorage_class = "GLACIER"\n'
        f'region = "us-east-1"\nendpoint_url = "{endpoint}"\nobject_lock = "governance"\n'
    )
    return Project(tmp_path, increments=0, store=store, upload='part_size = "5MiB"')


def test_status_and_init_warn_when_the_bucket_has_no_object_lock(
    tmp_path: Path, aws_env: None, moto_server: str
) -> None:
    bucket = plain_bucket(moto_server)
    p = _project(tmp_path, moto_server, bucket)
    r = p.run("status")
    assert r.returncode == 3, r.stderr
    assert "object lock: governance, 90 days per archive (auto" in r.stdout
    assert f"WARNING: bucket {bucket} does not have Object Lock enabled" in r.stdout
    r = p.run("status", "--json")
    assert r.returncode == 3
    lock = json.loads(r.stdout)["object_lock"]
    assert lock["bucket_enabled"] is False and lock["lock_for_days"] == 90
    r = p.run("init")  # the configuration exists: it is checked, not overwritten
    assert r.returncode == 1
    assert "already exists" in r.stdout and "does not have Object Lock enabled" in r.stdout


def test_status_counts_the_locked_archives(tmp_path: Path, aws_env: None, moto_server: str) -> None:
    p = _project(tmp_path, moto_server, locked_bucket(moto_server))
    (p.src / "a.txt").write_text("alpha\n")
    p.backup()
    assert p.run("upload").returncode == 0
    r = p.run("status")
    assert r.returncode == 0, r.stderr
    assert "the bucket has Object Lock enabled" in r.stdout
    assert "archives locked now: 1" in r.stdout

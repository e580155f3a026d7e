"""The ``watch`` service against real S3 server processes (moto and SeaweedFS): upload, SIGKILL
and SIGTERM in the middle of an upload, restart, one correct object."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

import boto3
import pytest

from localbackup import formats
from tests.watcher.service_harness import Project
from uploader.bundle import BundleReader, bundle_size

PART = 5 << 20


@pytest.fixture
def bucket(s3_endpoint: str, aws_env: None) -> str:
    name = f"gb-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def s3(s3_endpoint: str):
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


def project(tmp_path: Path, s3_endpoint: str, bucket: str, concurrency: int = 1) -> Project:
    store = (
        f'type = "s3"\nbucket = "{bucket}"\nprefix = "backups/"\n'
        f'storage_class = "GLACIER_IR"\nendpoint_url = "{s3_endpoint}"\nregion = "us-east-1"'
    )
    return Project(
        tmp_path,
        increments=0,
        store=store,
        upload=f'part_size = "5MiB"\nconcurrency = {concurrency}',
    )


def bundle_of(cycle_dir: Path) -> bytes:
    cycle = formats.load_sealed_cycle(cycle_dir)
    with BundleReader(cycle_dir, cycle) as reader:
        return reader.read(0, bundle_size(cycle))


def decrypt_object(p: Project, s3_endpoint: str, bucket: str, key: str) -> bytes:
    body = s3(s3_endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()
    return subprocess.run(
        ["age", "-d", "-i", str(p.identity)], input=body, capture_output=True, check=True
    ).stdout


def only_object(s3_endpoint: str, bucket: str) -> dict:
    client = s3(s3_endpoint)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    (obj,) = client.list_objects_v2(Bucket=bucket)["Contents"]
    return obj


def test_service_uploads_to_s3_with_storage_class(
    tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    p = project(tmp_path, s3_endpoint, bucket, concurrency=3)
    (p.src / "big").write_bytes(os.urandom(12 << 20))
    (p.src / "small").write_text("hello")
    svc = p.start_service()
    try:
        p.backup()
        (cycle_dir,) = (p.spool / "cycles").iterdir()
        expected = bundle_of(cycle_dir)
        svc.wait_for(lambda e: e["event"] == "watch.uploaded")
    finally:
        assert svc.stop() == 0
    obj = only_object(s3_endpoint, bucket)
    assert obj["Key"].startswith("backups/") and obj["Key"].endswith(".tar.age")
    head = s3(s3_endpoint).head_object(Bucket=bucket, Key=obj["Key"])
    assert head["StorageClass"] == "GLACIER_IR"
    assert decrypt_object(p, s3_endpoint, bucket, obj["Key"]) == expected
    assert "backups/" + p.status()["last_success"]["key"] == obj["Key"]  # the prefix is the store's


@pytest.mark.parametrize(
    ("s3_endpoint", "how"),
    [("moto", signal.SIGKILL), ("moto", signal.SIGTERM), ("seaweedfs", signal.SIGKILL)],
    ids=["moto-sigkill", "moto-sigterm", "seaweedfs-sigkill"],
    indirect=["s3_endpoint"],
)
def test_interrupted_upload_resumes_after_restart(
    tmp_path: Path, s3_endpoint: str, bucket: str, how: signal.Signals
) -> None:
    p = project(tmp_path, s3_endpoint, bucket)
    (p.src / "big").write_bytes(os.urandom(60 << 20))  # 12+ parts of 5 MiB, one at a time
    p.backup()
    (cycle_dir,) = (p.spool / "cycles").iterdir()
    expected = bundle_of(cycle_dir)

    svc = p.start_service()
    svc.wait_for(lambda e: e["event"] == "upload.part_done", count=2)
    if how == signal.SIGKILL:
        svc.kill()
    else:
        assert svc.stop() == 0  # a graceful stop exits 0 and leaves a resumable upload
    st = p.status()
    assert st["last_success"] is None
    (inflight,) = st["uploads_in_progress"]
    acknowledged = inflight["parts_done"]
    assert acknowledged >= 2

    svc = p.start_service()
    try:
        done = svc.wait_for(lambda e: e["event"] == "upload.completed", timeout=120)
        # completed in the store, then recorded: stop only once the service has filed it
        svc.wait_for(lambda e: e["event"] == "watch.uploaded", timeout=120)
        started = svc.wait_for(lambda e: e["event"] == "upload.started")
        assert svc.matching(lambda e: e["event"] == "watch.resuming_interrupted")
        sent_again = svc.matching(lambda e: e["event"] == "upload.part_done")
        assert len(sent_again) == done["parts"] - started["resumed_parts"]
        assert started["resumed_parts"] >= acknowledged
    finally:
        assert svc.stop() == 0
    obj = only_object(s3_endpoint, bucket)
    assert decrypt_object(p, s3_endpoint, bucket, obj["Key"]) == expected
    assert p.status()["uploads_in_progress"] == []

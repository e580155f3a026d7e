"""Upload and restore survive what real S3 does on a bad day: each fault class of the fault proxy
(tests/support/faultproxy.py) on each request class, one at a time, in front of moto; and a
GLACIER / DEEP_ARCHIVE restore that stays in progress (the proxy holds it) is waited for with
``--wait`` and picked up with ``--resume``.

A 503 or 500 on UploadPart once aborted the whole upload as permanent (issue 12 defect 1:
botocore could not rewind the part's body to retry it): a part is retried, never aborted."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.localbackup.test_extract import make_history, restored, snapshot
from tests.support.faultproxy import INTERNAL_ERROR, SLOW_DOWN, FaultProxy, FaultRule
from tests.support.waiting import wait_for
from tests.uploader.test_restore_cold import _uploaded, run_cli
from uploader.bundle import BundleReader
from uploader.catalogue import ArchiveRecord, Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.stores.s3 import S3Store
from uploader.upload import upload_cycle

from .conftest import MOTO_CAPABILITIES, build_cycle, make_bucket, read_object

PART = 64 * 1024


def _rule(operation: str, fault: str) -> FaultRule:
    """The second request of ``operation`` gets ``fault`` (the first goes through)."""
    kinds = {
        "SlowDown": ("error", SLOW_DOWN),
        "InternalError": ("error", INTERNAL_ERROR),
        "reset": ("reset", SLOW_DOWN),
        "drop": ("drop", SLOW_DOWN),
    }
    kind, error = kinds[fault]
    skip = 1 if operation == "UploadPart" else 0
    return FaultRule(operation, kind, error=error, skip=skip)


# 500 InternalError takes the same path as 503 SlowDown except where it is known to differ.
UPLOAD_FAULTS = [
    (op, fault)
    for op in ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "HeadObject")
    for fault in ("SlowDown", "reset", "drop", *(("InternalError",) if op == "UploadPart" else ()))
]


@pytest.mark.parametrize(("operation", "fault"), UPLOAD_FAULTS)
async def test_an_s3_upload_survives_one_fault(
    tmp_path: Path,
    moto_server: str,
    s3_proxy: FaultProxy,
    aws_env: None,
    age_key: tuple[Path, str],
    operation: str,
    fault: str,
) -> None:
    key_file, recipient = age_key
    cycle_dir = build_cycle(tmp_path / "spool", [PART * 5 + 17, 999])
    bucket = make_bucket(moto_server)
    rule = s3_proxy.add(_rule(operation, fault))
    store = S3Store(  # the product's retry settings; only the part size limit is moto's
        bucket, "pfx/", "STANDARD", endpoint_url=s3_proxy.url, capabilities=MOTO_CAPABILITIES
    )
    with Catalogue.in_state_dir(tmp_path / "state") as catalogue:
        async with store:
            record = await _upload(cycle_dir, store, catalogue, recipient)
            assert rule.fired == 1, s3_proxy.stats()
            assert s3_proxy.requests("AbortMultipartUpload") == 0  # retried, never given up
            assert [o.key for o in await store.list_objects()] == [record.key]
            blob = b"".join([c async for c in store.read(record.key)])
    with BundleReader(cycle_dir) as bundle:
        assert read_object(blob, key_file) == bundle.read(0, bundle.size)


async def _upload(
    cycle_dir: Path, store: S3Store, catalogue: Catalogue, recipient: str
) -> ArchiveRecord:
    return await upload_cycle(
        cycle_dir,
        store,
        catalogue,
        EncryptionConfig(recipients=(recipient,)),
        UploadConfig(part_size=PART, concurrency=2),
    )


RESTORE_FAULTS = [
    (op, fault)
    for op in ("RestoreObject", "HeadObject", "GetObject")
    for fault in ("SlowDown", "reset", "drop")
]


@pytest.mark.parametrize(("operation", "fault"), RESTORE_FAULTS)
def test_an_s3_restore_survives_one_fault(
    tmp_path: Path,
    moto_server: str,
    s3_proxy: FaultProxy,
    aws_env: None,
    operation: str,
    fault: str,
) -> None:
    h = make_history(tmp_path)
    store: dict[str, object] = {
        "type": "s3",
        "bucket": make_bucket(moto_server),
        "storage_class": "DEEP_ARCHIVE",
        "endpoint_url": s3_proxy.url,
        "region": "us-east-1",
    }
    config = _uploaded(tmp_path, h, store)
    s3_proxy.reset_stats()
    rule = s3_proxy.add(_rule(operation, fault))
    out = tmp_path / "out"
    assert run_cli(config, "restore", "--to", str(out), "--yes") == 0
    assert rule.fired == 1, s3_proxy.stats()
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_an_s3_restore_still_in_progress_is_waited_for_then_resumed(
    tmp_path: Path,
    moto_server: str,
    s3_proxy: FaultProxy,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
    storage_class: str,
) -> None:
    h = make_history(tmp_path)
    store: dict[str, object] = {
        "type": "s3",
        "bucket": make_bucket(moto_server),
        "storage_class": storage_class,
        "endpoint_url": s3_proxy.url,
        "region": "us-east-1",
    }
    config = _uploaded(tmp_path, h, store)
    s3_proxy.hold_restores()  # the restore takes hours, as on AWS
    out = tmp_path / "out"
    capsys.readouterr()
    assert run_cli(config, "restore", "--to", str(out), "--yes") == 0
    assert s3_proxy.requests("RestoreObject") == 1 and not out.exists()
    assert run_cli(config, "restore", "--to", str(out), "--resume") == 0
    assert "not ready yet" in capsys.readouterr().out
    assert s3_proxy.requests("RestoreObject") == 1 and not out.exists()  # not asked twice
    s3_proxy.release_restores()  # ... and then it is done
    assert run_cli(config, "restore", "--to", str(out), "--resume") == 0
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_an_s3_restore_with_wait_polls_until_the_copy_is_ready(
    tmp_path: Path, moto_server: str, s3_proxy: FaultProxy, aws_env: None, storage_class: str
) -> None:
    h = make_history(tmp_path)
    store: dict[str, object] = {
        "type": "s3",
        "bucket": make_bucket(moto_server),
        "storage_class": storage_class,
        "endpoint_url": s3_proxy.url,
        "region": "us-east-1",
    }
    config = _uploaded(tmp_path, h, store)
    s3_proxy.hold_restores()
    polls = s3_proxy.requests("HeadObject")

    def ready_after_three_polls() -> None:
        wait_for(lambda: s3_proxy.requests("HeadObject") >= polls + 3, 60, "three polls")
        s3_proxy.release_restores()

    releaser = threading.Thread(target=ready_after_three_polls)
    releaser.start()
    out = tmp_path / "out"
    args = ("--yes", "--wait", "--poll-interval", "0.05", "--poll-max", "0.1")
    try:
        assert run_cli(config, "restore", "--to", str(out), *args) == 0
    finally:
        releaser.join(60)
    assert s3_proxy.requests("RestoreObject") == 1
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]

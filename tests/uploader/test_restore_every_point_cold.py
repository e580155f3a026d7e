"""Round trips on the cold stores: back up a changing tree four times, upload the cycle, and
restore EVERY point in time through the CLI from a Glacier vault (emulator, retrieval jobs on a
virtual clock) and from S3 DEEP_ARCHIVE (moto and SeaweedFS, restore_object), each equal to its
snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulators.glacier import Emulator
from tests.localbackup.test_extract import make_history, restored, snapshot
from tests.uploader.conftest import make_bucket
from tests.uploader.test_restore_cold import HOUR, _uploaded, _vault_store, run_cli


@pytest.mark.parametrize("mode", ["incremental", "differential"])
def test_every_point_in_time_from_a_glacier_vault(
    tmp_path: Path, glacier_emulator: Emulator, aws_env: None, mode: str
) -> None:
    h = make_history(tmp_path, mode)
    config = _uploaded(tmp_path, h, _vault_store(glacier_emulator))
    for n, expected in enumerate(h.snapshots):
        out = tmp_path / f"out{n}"
        args = ("restore", "--at", str(n), "--to", str(out), "--yes", "--tier", "Expedited")
        assert run_cli(config, *args) == 0  # the job is requested; not ready yet
        assert not out.exists()
        glacier_emulator.control.advance(HOUR)
        assert run_cli(config, *args, "--resume") == 0
        assert snapshot(restored(out, h.src)) == expected, f"increment {n}"


def test_every_point_in_time_from_s3_deep_archive(
    tmp_path: Path, s3_endpoint_for_restores: str, aws_env: None
) -> None:
    endpoint = s3_endpoint_for_restores  # moto, and SeaweedFS (no restore API: defect 8)
    h = make_history(tmp_path)
    store: dict[str, object] = {
        "type": "s3",
        "bucket": make_bucket(endpoint),
        "storage_class": "DEEP_ARCHIVE",
        "endpoint_url": endpoint,
        "region": "us-east-1",
    }
    config = _uploaded(tmp_path, h, store)
    for n, expected in enumerate(h.snapshots):
        out = tmp_path / f"out{n}"
        assert run_cli(config, "restore", "--at", str(n), "--to", str(out), "--yes") == 0
        assert snapshot(restored(out, h.src)) == expected, f"increment {n}"

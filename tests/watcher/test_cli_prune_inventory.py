"""``prune [--dry-run]`` and ``inventory`` against a moto S3 bucket: decisions, reasons, fees."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import pytest

from tests.uploader.conftest import build_cycle, make_bucket
from uploader.catalogue import Catalogue
from watcher.commands import inventory, prune, upload
from watcher.config import AppConfig, config_from_dict


def _parse(module: ModuleType, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


def _config(tmp_path: Path, endpoint: str, retention: dict[str, object]) -> AppConfig:
    return config_from_dict(
        {
            "state_dir": str(tmp_path / "state"),
            "backup": {"sources": [], "spool_dir": str(tmp_path / "spool"), "host": "testhost"},
            "encryption": {"mode": "none"},
            "store": {
                "type": "s3",
                "bucket": make_bucket(endpoint),
                "storage_class": "GLACIER_IR",
                "endpoint_url": endpoint,
                "region": "us-east-1",
            },
            "retention": retention,
        },
        tmp_path / "config.toml",
    )


@pytest.fixture
def uploaded(tmp_path: Path, aws_env: None, moto_server: str) -> AppConfig:
    # min_age below GLACIER_IR's 90-day minimum: deleting now incurs an (estimated) fee
    config = _config(
        tmp_path, moto_server, {"max_store_size": "40KiB", "min_age": "1h", "keep_last": 1}
    )
    # 10 KiB archives, each with a 10 KiB metadata object (they count together); the next
    # upload is expected to be as big as an archive
    for day in (1, 2, 3):
        build_cycle(tmp_path / "spool", [2000], cycle_id=f"2026010{day}T000000Z", seed=day)
    assert upload.run(_parse(upload, "upload"), config) == 0
    with Catalogue.in_state_dir(config.state_dir) as cat, cat.transaction() as db:
        # uploaded two days ago (in order): past min_age, far from GLACIER_IR's 90 days
        db.execute(
            "UPDATE archives SET uploaded_at ="
            " strftime('%Y-%m-%dT%H:%M:%f', uploaded_at, '-2 days') || '+00:00'"
        )
    return config


def test_dry_run_prints_every_decision_with_reason_and_fee(
    uploaded: AppConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert prune.run(_parse(prune, "prune", "--dry-run"), uploaded) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith(("would delete", "keep "))]
    assert len(lines) == 3
    assert lines[0].startswith("would delete") and "20260101" in lines[0]
    assert lines[1].startswith("would delete") and "20260102" in lines[1]
    assert lines[2].startswith("keep") and "[keep_last]" in lines[2]
    assert "[budget]" in lines[0] and "over budget" in lines[0]
    assert "est. early-deletion fee <$0.01 incurred" in lines[0]
    assert "est. early-deletion fee <$0.01 avoided" in lines[2]
    assert "ESTIMATES" in out
    with Catalogue.in_state_dir(uploaded.state_dir) as cat:
        assert len(cat.archives()) == 3  # nothing deleted


def test_prune_deletes_and_inventory_reports(
    uploaded: AppConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert prune.run(_parse(prune, "prune"), uploaded) == 0
    out = capsys.readouterr().out
    assert "deleted 2 archives;" in out
    with Catalogue.in_state_dir(uploaded.state_dir) as cat:
        assert [a.cycle_id for a in cat.archives()] == ["20260103T000000Z"]
    assert inventory.run(_parse(inventory, "inventory"), uploaded) == 0
    out = capsys.readouterr().out
    # two archives and their metadata objects
    assert "confirmed: 1" in out and "deletion confirmed: 4" in out


def test_inventory_after_a_lost_catalogue_prints_adopted(
    uploaded: AppConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    (uploaded.state_dir / "catalogue.sqlite3").unlink()
    capsys.readouterr()
    assert inventory.run(_parse(inventory, "inventory"), uploaded) == 0
    out = capsys.readouterr().out
    assert "adopted (ours, rebuilt into the catalogue): 3" in out
    assert "testhost/20260101T000000Z.tar" in out

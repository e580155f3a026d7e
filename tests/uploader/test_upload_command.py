"""``glacier-backup upload [CYCLE]`` against a local store."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from uploader.catalogue import Catalogue
from watcher.commands import upload as command
from watcher.config import config_from_dict

from .conftest import build_cycle


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["upload", *argv])


def _config(tmp_path: Path, recipient: str, store: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    return config_from_dict(
        {
            "state_dir": str(tmp_path / "state"),
            "backup": {"sources": [], "spool_dir": str(tmp_path / "spool"), "host": "testhost"},
            "encryption": {"recipients": [recipient]},
            "store": store or {"type": "local", "path": str(tmp_path / "vault")},
            "upload": {"part_size": "1MiB"},
        },
        tmp_path / "config.toml",
    )


def test_upload_sends_every_pending_cycle_once(tmp_path: Path, age_key: tuple[Path, str]) -> None:
    build_cycle(tmp_path / "spool", [3000], cycle_id="20260101T000000Z")
    build_cycle(tmp_path / "spool", [2000], cycle_id="20260102T000000Z")
    config = _config(tmp_path, age_key[1])
    args = _parse()
    assert args.run is command.run
    assert command.run(args, config) == 0
    names = sorted(p.name for p in (tmp_path / "vault" / "testhost").iterdir())
    assert names == [  # each archive with its metadata object
        "20260101T000000Z.meta.age",
        "20260101T000000Z.tar.age",
        "20260102T000000Z.meta.age",
        "20260102T000000Z.tar.age",
    ]
    with Catalogue.in_state_dir(tmp_path / "state") as cat:
        assert len(cat.archives()) == 2
    assert command.run(args, config) == 0  # nothing left to do


def test_an_unknown_cycle_is_a_usage_error(tmp_path: Path, age_key: tuple[Path, str]) -> None:
    assert command.run(_parse("20990101T000000Z"), _config(tmp_path, age_key[1])) == 2


def test_upload_into_a_glacier_vault(
    tmp_path: Path, age_key: tuple[Path, str], glacier_endpoint: str, aws_env: None
) -> None:
    """The command against the Glacier emulator: multipart with tree hashes, then recorded."""
    import boto3

    vault = f"v-{tmp_path.name[-20:]}".replace("_", "-")
    boto3.client("glacier", endpoint_url=glacier_endpoint, region_name="us-east-1").create_vault(
        vaultName=vault
    )
    build_cycle(tmp_path / "spool", [3 << 20, 100])
    store = {
        "type": "glacier",
        "vault": vault,
        "endpoint_url": glacier_endpoint,
        "region": "us-east-1",
    }
    config = _config(tmp_path, age_key[1], store)
    assert command.run(_parse(), config) == 0
    with Catalogue.in_state_dir(tmp_path / "state") as cat:
        (archive,) = cat.archives()
    assert archive.store.startswith("glacier://") and archive.cycle_id == "20260101T000000Z"


def test_the_catalogue_is_private(tmp_path: Path, age_key: tuple[Path, str]) -> None:
    build_cycle(tmp_path / "spool", [10])
    assert command.run(_parse("20260101T000000Z"), _config(tmp_path, age_key[1])) == 0
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "state" / "catalogue.sqlite3").stat().st_mode & 0o777 == 0o600


def test_a_pruned_cycle_needs_force(
    tmp_path: Path, age_key: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from uploader.stores.local import LocalStore

    build_cycle(tmp_path / "spool", [3000], cycle_id="20260101T000000Z")
    config = _config(tmp_path, age_key[1])
    store = LocalStore(tmp_path / "vault").name
    with Catalogue.in_state_dir(tmp_path / "state") as cat, cat.transaction() as db:
        db.execute(
            "INSERT INTO pending_deletions (store, key, archive_id, cycle_id, size, deleted_at)"
            " VALUES (?, 'testhost/20260101T000000Z.tar.age', NULL, '20260101T000000Z', 10,"
            " '2026-03-04T05:06:00+00:00')",
            (store,),
        )
    assert command.run(_parse(), config) == 0  # not pending
    assert not (tmp_path / "vault" / "testhost").exists()
    assert command.run(_parse("20260101T000000Z"), config) == 1
    err = capsys.readouterr().err
    assert "was pruned from" in err and "2026-03-04 05:06" in err and "--force" in err
    assert command.run(_parse("--force", "20260101T000000Z"), config) == 0
    assert (tmp_path / "vault" / "testhost" / "20260101T000000Z.tar.age").exists()

"""``glacier-backup restore``: from the spool and from the local store, as a user runs it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from localbackup.seal import seal_cycle
from tests.localbackup.test_extract import T0, History, make_history, restored, snapshot
from uploader.catalogue import Catalogue
from uploader.crypto import write_identity_file
from uploader.stores import open_store
from watcher.commands import restore as command
from watcher.commands import upload
from watcher.config import AppConfig, config_from_dict


def _run(config: AppConfig, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    command.add_parser(sub)
    upload.add_parser(sub)
    args = parser.parse_args(list(argv))
    return int(args.run(args, config))


def _config(tmp_path: Path, h: History, store: dict[str, object] | None = None) -> AppConfig:
    key = tmp_path / "key.txt"
    if not key.exists():
        write_identity_file(key)
    recipient = next(
        line.split(": ", 1)[1] for line in key.read_text().splitlines() if "public key" in line
    )
    return config_from_dict(
        {
            "state_dir": str(tmp_path / "state"),
            "backup": {"sources": [str(h.src)], "spool_dir": str(tmp_path / "spool"), "host": "h"},
            "encryption": {"recipients": [recipient], "identity_file": str(key)},
            "store": store or {"type": "local", "path": str(tmp_path / "vault")},
        },
        tmp_path / "config.toml",
    )


def test_restore_from_the_spool_open_cycle_every_increment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = make_history(tmp_path)
    config = _config(tmp_path, h)
    for n, expected in enumerate(h.snapshots):
        out = tmp_path / f"out{n}"
        assert _run(config, "restore", "--from-spool", "--at", str(n), "--to", str(out)) == 0
        assert snapshot(restored(out, h.src)) == expected
    printed = capsys.readouterr().out
    assert f"restoring cycle {h.cycle.cycle_id} (open, in the spool)" in printed
    assert "applying increments 0, 1, 2, 3" in printed


def test_restore_at_a_time_picks_the_newest_increment_finished_before(tmp_path: Path) -> None:
    h = make_history(tmp_path)
    config = _config(tmp_path, h)
    finished = h.cycle.manifests()[1].finished_at.isoformat()
    out = tmp_path / "out"
    assert (
        _run(config, "restore", "latest", "--from-spool", "--at", finished, "--to", str(out)) == 0
    )
    assert snapshot(restored(out, h.src)) == h.snapshots[1]


def test_upload_then_restore_from_the_local_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = make_history(tmp_path)
    seal_cycle(h.cycle, "h", "incremental", tmp_path / "markers", T0)
    config = _config(tmp_path, h)
    assert _run(config, "upload") == 0
    out = tmp_path / "restored"
    assert _run(config, "restore", "--to", str(out)) == 0
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]
    out2 = tmp_path / "restored2"
    assert _run(config, "restore", h.cycle.cycle_id, "--at", "1", "--to", str(out2)) == 0
    assert snapshot(restored(out2, h.src)) == h.snapshots[1]
    printed = capsys.readouterr().out
    assert f"archive h/{h.cycle.cycle_id}.tar.age" in printed
    assert "restored into" in printed


def test_a_tampered_archive_exits_1_and_leaves_no_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = make_history(tmp_path)
    seal_cycle(h.cycle, "h", "incremental", tmp_path / "markers", T0)
    config = _config(tmp_path, h)
    assert _run(config, "upload") == 0
    obj = tmp_path / "vault" / "h" / f"{h.cycle.cycle_id}.tar.age"
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x80
    obj.write_bytes(bytes(data))
    out = tmp_path / "out"
    assert _run(config, "restore", "--to", str(out)) == 1
    assert "restore failed" in capsys.readouterr().err
    assert not out.exists()
    assert not (tmp_path / ".out.restoring").exists()


def test_a_non_empty_target_needs_force_and_yes(tmp_path: Path) -> None:
    h = make_history(tmp_path)
    config = _config(tmp_path, h)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine").write_text("keep")
    assert _run(config, "restore", "--from-spool", "--to", str(out)) == 1
    assert _run(config, "restore", "--from-spool", "--force", "--to", str(out)) == 2
    assert (out / "mine").read_text() == "keep"
    assert _run(config, "restore", "--from-spool", "--force", "--yes", "--to", str(out)) == 0
    assert not (out / "mine").exists()
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]


def test_a_path_filter_with_an_unrestorable_hardlink_exits_with_warnings(tmp_path: Path) -> None:
    h = make_history(tmp_path)
    config = _config(tmp_path, h)
    out = tmp_path / "out"
    code = _run(config, "restore", "--from-spool", "--path", f"{h.src}/docs", "--to", str(out))
    assert code == 3  # docs/pair2 is a hardlink to a file outside the filter
    assert (restored(out, h.src) / "docs" / "moved" / "sub" / "d.txt").exists()
    assert not (restored(out, h.src) / "a.txt").exists()


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (("--from-spool", "--at", "9"), 2, "no increment 9"),
        (("--from-spool", "--at", "soon"), 2, "neither an increment number"),
        (("20990101T000000Z", "--from-spool"), 2, "no cycle"),
        ((), 2, "no archive of host 'h'"),
    ],
)
def test_usage_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    h = make_history(tmp_path)
    config = _config(tmp_path, h)
    (tmp_path / "vault").mkdir()  # an empty store
    assert _run(config, "restore", *argv, "--to", str(tmp_path / "out")) == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_local_store_whose_folder_is_gone_is_not_an_empty_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NAS or USB disk that is not mounted: the error says so, not "no archive"."""
    config = _config(tmp_path, make_history(tmp_path))
    assert _run(config, "restore", "--to", str(tmp_path / "out")) == 1
    err = capsys.readouterr().err
    assert f"the store folder {tmp_path / 'vault'} does not exist: is its disk mounted?" in err
    assert "mount the disk that holds the store folder, or fix store.path" in err


def test_a_glacier_vault_archive_without_an_archive_id_asks_for_an_inventory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aws_env: None
) -> None:
    h = make_history(tmp_path)
    config = _config(tmp_path, h, {"type": "glacier", "vault": "v", "region": "us-east-1"})
    with Catalogue.in_state_dir(config.state_dir) as catalogue, catalogue.transaction() as db:
        db.execute(
            "INSERT INTO archives (store, key, cycle_id, host, size, plaintext_sha256,"
            " uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                open_store(config.store).name,
                "h/20260101T000000Z.tar.age",
                "20260101T000000Z",
                "h",
                1000,
                "0" * 64,
                "2026-01-02T00:00:00+00:00",
            ),
        )
    assert _run(config, "restore", "--to", str(tmp_path / "out"), "--yes") == 1
    assert "run 'glacier-backup inventory'" in capsys.readouterr().err


def test_latest_from_the_spool_skips_a_new_cycle_with_no_complete_increment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Right after a cycle rotation the new open cycle has no increment yet: ``latest`` is then
    the newest cycle that has one, not a usage error."""
    from datetime import timedelta

    from localbackup.spool import Spool

    h = make_history(tmp_path)
    config = _config(tmp_path, h)
    seal_cycle(h.cycle, "h", "incremental", tmp_path / "markers", T0)
    Spool(tmp_path / "spool").create_cycle(T0 + timedelta(days=30))
    out = tmp_path / "out"
    assert _run(config, "restore", "--from-spool", "--to", str(out)) == 0
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]
    assert f"restoring cycle {h.cycle.cycle_id} (sealed, in the spool)" in capsys.readouterr().out

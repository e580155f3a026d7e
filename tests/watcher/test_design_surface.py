"""DESIGN.md's promised surface, checked from the outside exactly as written there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from uploader.crypto import generate_identity
from watcher.config import load_config

ROOT = Path(__file__).resolve().parents[2]

# DESIGN.md, "The surface users see": the example block, copied verbatim.
DESIGN_EXAMPLE = """\
[backup]
sources = ["~/Documents", "/etc/hosts"]      # directories and single files
exclude = ["*.tmp", ".git/", "node_modules/"]
spool_dir = "~/.local/share/glacier-backup/spool"
increments_per_cycle = 7                      # incrementals after each full
full_every = "7d"                             # optional: also start a new cycle when the full is this old
mode = "incremental"                          # or "differential"
compression_level = 3

[watch]
marker_dir = "~/.local/share/glacier-backup/spool/markers"
keep_local_cycles = 1

[encryption]
recipients = ["age1..."]                      # or passphrase_file = "...", or mode = "none"
identity_file = "~/.config/glacier-backup/identity.txt"   # needed only to restore

[store]
type = "local"                                # "local" | "s3" | "glacier"
path = "~/.local/share/glacier-backup/vault"  # local
# bucket, prefix, storage_class, region, profile, endpoint_url   (s3)
# vault, region, profile, endpoint_url, account_id               (glacier)

[upload]
part_size = "auto"
concurrency = 4

[retention]
max_store_size = "500GiB"
min_age = "auto"                              # by storage class: 90d / 180d
keep_last = 2
"""  # noqa: E501 - verbatim from DESIGN.md
RECIPIENTS_LINE = 'recipients = ["age1..."]'


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_design_example_block_loads_with_its_meaning(tmp_path: Path) -> None:
    recipient = generate_identity().recipient().to_string()
    assert RECIPIENTS_LINE in DESIGN_EXAMPLE
    cfg = load_config(
        _write(tmp_path, DESIGN_EXAMPLE.replace(RECIPIENTS_LINE, f'recipients = ["{recipient}"]'))
    )
    home = Path("~").expanduser()
    b = cfg.backup
    assert b.sources == (home / "Documents", Path("/etc/hosts"))
    assert b.exclude == ("*.tmp", ".git/", "node_modules/")
    assert b.spool_dir == home / ".local/share/glacier-backup/spool"
    assert b.increments_per_cycle == 7
    assert b.full_every == 7 * 86400
    assert b.mode == "incremental"
    assert b.compression_level == 3
    assert cfg.watch.marker_dir == home / ".local/share/glacier-backup/spool/markers"
    assert cfg.watch.keep_local_cycles == 1
    assert cfg.encryption.mode == "age"
    assert cfg.encryption.recipients == (recipient,)
    assert cfg.encryption.identity_file == home / ".config/glacier-backup/identity.txt"
    assert cfg.store.type == "local"
    assert cfg.store.path == home / ".local/share/glacier-backup/vault"  # type: ignore[union-attr]
    assert cfg.upload.part_size is None  # "auto"
    assert cfg.upload.concurrency == 4
    assert cfg.retention.max_store_size == 500 * 1024**3
    assert cfg.retention.min_age is None  # "auto": by storage class
    assert cfg.retention.keep_last == 2


@pytest.mark.parametrize(
    ("line", "mode", "passphrase"),
    [
        ('passphrase_file = "pass.txt"', "age", "pass.txt"),
        ('mode = "none"', "none", None),
    ],
)
def test_design_example_encryption_alternatives(
    tmp_path: Path, line: str, mode: str, passphrase: str | None
) -> None:
    cfg = load_config(_write(tmp_path, DESIGN_EXAMPLE.replace(RECIPIENTS_LINE, line)))
    assert cfg.encryption.mode == mode
    assert cfg.encryption.recipients == ()
    expected = None if passphrase is None else tmp_path / passphrase
    assert cfg.encryption.passphrase_file == expected


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "watcher", "--log-format", "json", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize("what", ["spool", "state"])
def test_a_directory_that_is_a_file_is_named_as_such(tmp_path: Path, what: str) -> None:
    """Not "[Errno 17] File exists", and no traceback: the message says what is wrong."""
    (tmp_path / "src").mkdir()
    (tmp_path / what).write_text("not a directory")
    cfg = _write(
        tmp_path,
        f'state_dir = "{tmp_path / "state"}"\n[backup]\nsources = ["{tmp_path / "src"}"]\n'
        f'spool_dir = "{tmp_path / "spool"}"\n[encryption]\nmode = "none"\n'
        f'[store]\ntype = "local"\npath = "{tmp_path / "vault"}"\n',
    )
    command = "backup" if what == "spool" else "status"
    r = _cli("--config", str(cfg), command, home=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert f"{tmp_path / what}" in r.stderr
    assert "is not a directory" in r.stderr

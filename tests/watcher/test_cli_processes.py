"""``restore``, ``prune`` and ``inventory`` as a user runs them: the installed ``glacier-backup``
script, its global options, a TOML file read from disk, and the exit codes (0 done, 1 failed,
2 usage or configuration, 3 done with warnings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.localbackup.test_extract import make_history, restored, snapshot
from tests.support.killpoints import uploaded_config

SCRIPT = str(Path(sys.executable).with_name("glacier-backup"))


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *argv], capture_output=True, text=True, check=False, timeout=300)


def test_restore_prune_and_inventory_as_a_user_runs_them(tmp_path: Path) -> None:
    h = make_history(tmp_path)
    config = uploaded_config(tmp_path, h.src, {"type": "local", "path": str(tmp_path / "vault")})
    quiet = ["--config", str(config), "--log-level", "warning", "--log-format", "console"]

    r = run(*quiet, "inventory")
    assert (r.returncode, r.stderr) == (0, ""), r.stderr  # info events are below the level
    assert "confirmed: 1" in r.stdout
    r = run(*quiet, "prune", "--dry-run")
    assert r.returncode == 0 and "0 of 1 archives to delete" in r.stdout, r.stdout + r.stderr

    out = tmp_path / "out"
    r = run(*quiet, "restore", "--at", "soon", "--to", str(out))
    assert r.returncode == 2 and "--at 'soon' is neither" in r.stderr, r.stderr
    r = run(*quiet, "restore", "--at", "1", "--to", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert snapshot(restored(out, h.src)) == h.snapshots[1]
    r = run(*quiet, "restore", "--to", str(out))  # not empty, no --force
    assert r.returncode == 1 and "is not empty (use --force" in r.stderr, r.stderr

    r = run("--config", str(config), "--log-format", "json", "--log-level", "debug", "inventory")
    assert r.returncode == 0 and '"event": "maintenance.reconciled"' in r.stderr


@pytest.mark.parametrize("command", [["inventory"], ["prune"], ["restore", "--to", "out"]])
def test_a_configuration_error_is_exit_2_naming_the_file_and_key(
    tmp_path: Path, command: list[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[store]\ntype = "local"\npath = "v"\nbukcet = "typo"\n')
    r = run("--config", str(config), *command)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{config}: store.bukcet" in r.stderr

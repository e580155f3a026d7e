"""What the command line says (issue 13), through the real ``glacier-backup`` process: help and
version, config check, errors with their fix, printed once, a terminal without log noise,
``NO_COLOR``, closed pipes, identities, init, packaging."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.servers import free_port
from tests.watcher.service_harness import GLACIER_BACKUP, Project
from watcher.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
# An SGR sequence that sets a colour (30-38, 40-48, 90-97, 100-107), not bold or a cursor move.
ANSI_COLOUR = re.compile(rb"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|4[0-8]|9[0-7]|10[0-7])[;m]")


def on_terminal(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Run ``argv`` with stdin, stdout and stderr on a pseudo-terminal; its exit code and all
    it wrote there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    out = bytearray()
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            proc.kill()
            raise AssertionError(f"no output for 60 s: {bytes(out)!r}")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: every writer has gone
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    return proc.wait(timeout=60), bytes(out)


def test_version() -> None:
    r = subprocess.run([GLACIER_BACKUP, "--version"], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and re.fullmatch(r"glacier-backup \d+\.\d+\.\d+\n", r.stdout)


def test_every_command_has_a_description_and_an_example() -> None:
    commands = [[c] for c in COMMANDS] + [
        ["service", "install"],
        ["config", "check"],
        ["config", "import-legacy"],
    ]
    procs = [
        (c, subprocess.Popen([GLACIER_BACKUP, *c, "--help"], stdout=subprocess.PIPE, text=True))
        for c in commands
    ]
    for command, proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, command
        _usage, _, rest = out.partition("\n\n")
        description = rest.split("\n\n", 1)[0]
        assert len(description.split()) >= 8, (command, out)  # a sentence, not just a title
        examples = out.split("examples:\n", 1)[1].splitlines()
        assert examples and all(e.strip().startswith("glacier-backup ") for e in examples)
        assert any(" ".join(command) in e for e in examples), (command, examples)


def test_config_check_shows_the_resolved_config_and_hides_secrets(tmp_path: Path) -> None:
    p = Project(tmp_path, store='type = "s3"\nbucket = "my-bucket"\nendpoint_url = '
                '"https://user:hunter2@s3.example.com"')  # fmt: skip
    with p.config.open("a") as f:
        f.write('[retention]\nmin_age = "0d"\n[notify]\nurl = "https://hc.example/ping-uuid-7"\n')
    r = p.run("config", "check")
    assert r.returncode == 0, r.stderr
    assert "hunter2" not in r.stdout + r.stderr and "https://***@s3.example.com" in r.stdout
    assert "ping-uuid-7" not in r.stdout and 'url = "https://hc.example/***"' in r.stdout
    assert 'min_age = "0s"' in r.stdout  # zero is a valid minimum age
    assert 'storage_class = "DEEP_ARCHIVE"' in r.stdout  # defaults shown
    assert "compression_threads = 0" in r.stdout and "# full_every = (not set)" in r.stdout
    shown = json.loads(p.run("config", "check", "--json").stdout)
    assert shown["retention"]["min_age"] == "0s" and shown["store"]["bucket"] == "my-bucket"

    env = os.environ | {"GLACIER_BACKUP_PASSPHRASE": "correct horse"}
    p.config.write_text(p.config.read_text().replace("recipients = [", "# recipients = ["))
    r = p.run("config", "check", env=env)
    assert r.returncode == 0, r.stderr
    assert "correct horse" not in r.stdout and "value is not shown" in r.stdout

    p.config.write_text(p.config.read_text().replace('min_age = "0d"', "min_agee = 1"))
    r = p.run("config", "check")
    assert r.returncode == 2
    assert f"{p.config}: retention.min_agee: unknown key (did you mean 'min_age'?)" in r.stderr


def test_config_check_shows_object_lock_as_its_two_keys(tmp_path: Path) -> None:
    p = Project(tmp_path, store='type = "s3"\nbucket = "my-bucket"\nobject_lock = "compliance"\n'
                'lock_for = "2d"')  # fmt: skip
    r = p.run("config", "check")
    assert r.returncode == 0, r.stderr
    assert 'object_lock = "compliance"\nlock_for = "2d"' in r.stdout
    shown = json.loads(p.run("config", "check", "--json").stdout)["store"]
    assert (shown["object_lock"], shown["lock_for"]) == ("compliance", "2d")


def test_config_check_warns_about_a_missing_source(tmp_path: Path) -> None:
    p = Project(tmp_path)
    p.src.rmdir()
    r = p.run("config", "check")
    assert r.returncode == 3 and f"{p.src} does not exist" in r.stderr


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=7)
    for i in range(2000):  # `files` lists far more than a pipe's buffer holds
        (p.src / f"file-{i:05d}-with-a-long-name.txt").write_text("x")
    p.backup()
    for command in (["status"], ["files"], ["cycles", "--json"]):
        cmd = " ".join(p.cmd(*command))
        for reader in ("head -1", "true"):  # reads a line and goes, or never reads
            r = subprocess.run(
                ["bash", "-c", f"set -o pipefail; {cmd} | {reader}"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert r.returncode == 0, (command, reader, r.stderr)
            assert "Traceback" not in r.stderr and "Broken pipe" not in r.stderr, r.stderr


def test_a_closed_pipe_does_not_stop_a_command_that_works(tmp_path: Path) -> None:
    """``upload | true``: every waiting cycle is still uploaded and the command's own code kept."""
    p = Project(tmp_path, increments=1)
    for i in range(6):  # a full and an increment per cycle: three sealed cycles
        (p.src / f"f{i}.txt").write_text(str(i))
        p.backup()
    assert len(p.status()["sealed_waiting"]) == 3
    cmd = " ".join(p.cmd("upload"))
    r = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {cmd} | true"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert p.status()["sealed_waiting"] == []
    archives = [f for f in p.vault.rglob("*.age") if not f.name.endswith(".meta.age")]
    assert len(archives) == 3

    p.src.rename(tmp_path / "moved")  # config check warns (exit 3) after printing the config
    cmd = " ".join(p.cmd("config", "check"))
    r = subprocess.run(["bash", "-c", f"{cmd} | true; exit ${{PIPESTATUS[0]}}"], check=False)
    assert r.returncode == 3


def test_on_a_terminal_only_the_bar_and_the_summary(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=7)
    (p.src / "a.txt").write_text("a\n")
    env = os.environ | {"NO_COLOR": "1", "TERM": "xterm-256color"}
    argv = [GLACIER_BACKUP, "--config", str(p.config), "backup"]
    code, out = on_terminal(argv, env)
    assert code == 0, out
    assert b"increment 0 (full)" in out and b"duration:" in out  # the summary
    assert b"backup.planned" not in out and b'"event"' not in out  # no INFO events, no JSON
    assert not ANSI_COLOUR.search(out), out  # NO_COLOR: no colour
    coloured = os.environ | {"TERM": "xterm-256color"}
    coloured.pop("NO_COLOR", None)
    code, out = on_terminal([*argv[:-1], "--log-level", "info", "backup"], coloured)
    assert code == 0 and b"glacier-backup: info: backup.planned" in out  # asked for: shown
    assert ANSI_COLOUR.search(out), out  # without NO_COLOR the bar has its colours


def test_on_a_terminal_an_error_is_printed_once(tmp_path: Path) -> None:
    store = 'type = "s3"\nbucket = "b-unreachable"\nendpoint_url = "http://127.0.0.1:9"'
    p = Project(tmp_path, increments=0, store=store)
    (p.src / "a.txt").write_text("a\n")
    p.backup()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "HOME": str(tmp_path),
    }
    code, out = on_terminal([GLACIER_BACKUP, "--config", str(p.config), "upload"], env)
    assert code == 1
    assert out.count(b"no AWS credentials found") == 1, out
    assert out.count(b"fix: no AWS credentials were found") == 1


def test_an_unreachable_endpoint_says_it_is_retrying(tmp_path: Path, aws_env: None) -> None:
    store = (
        f'type = "s3"\nbucket = "b-unreachable"\nendpoint_url = "http://127.0.0.1:{free_port()}"'
        '\nregion = "us-east-1"'
    )
    p = Project(tmp_path, increments=0, store=store)
    (p.src / "a.txt").write_text("a\n")
    p.backup()
    proc = subprocess.Popen(p.cmd("upload"), stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "retrying (1/" in line:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    event = json.loads(seen[-1])
    assert event["event"] == "store.retrying" and event["attempt"] == 1
    assert re.search(r"127\.0\.0\.1:\d+: \w+: .*; retrying \(1/\d+\)$", event["message"])


def test_identities_are_named_when_they_are_missing_or_wrong(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0)
    (p.src / "a.txt").write_text("a\n")
    p.backup()
    assert p.run("upload").returncode == 0
    shutil.move(p.identity, tmp_path / "offline.txt")  # kept offline, as advised
    r = p.run("restore", "latest", "--to", str(tmp_path / "out1"))
    assert r.returncode == 1
    assert f"the identity file {p.identity} ([encryption] identity_file) does not exist" in r.stderr
    assert "pass --identity FILE" in r.stderr
    other = tmp_path / "other.txt"
    subprocess.run(["age-keygen", "-o", str(other)], check=True, capture_output=True)
    r = p.run("restore", "latest", "--to", str(tmp_path / "out2"), "--identity", str(other))
    assert r.returncode == 1
    assert f"the identity file {other} (--identity) cannot decrypt it" in r.stderr
    assert "archive " in r.stderr and ".tar.age" in r.stderr
    r = p.run(
        "restore",
        "latest",
        "--to",
        str(tmp_path / "out3"),
        "--identity",
        str(tmp_path / "offline.txt"),
    )
    assert r.returncode == 0, r.stderr


def test_init_warns_about_a_missing_source(tmp_path: Path) -> None:
    env = os.environ | {
        k: str(tmp_path / k.lower()) for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")
    }
    r = subprocess.run(
        [GLACIER_BACKUP, "init", "--source", str(tmp_path / "not-there")],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert r.returncode == 3
    assert f"the source {tmp_path / 'not-there'} does not exist" in r.stderr
    assert "edit" not in r.stdout and "set [backup] sources" not in r.stdout
    assert "next: run 'glacier-backup backup'" in r.stdout


def test_init_warns_when_the_default_source_does_not_exist(tmp_path: Path) -> None:
    env = os.environ | {
        k: str(tmp_path / k.lower()) for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")
    }
    env["HOME"] = str(tmp_path / "home")  # no ~/Documents there
    r = subprocess.run(
        [GLACIER_BACKUP, "init"], capture_output=True, text=True, env=env, check=False
    )
    assert r.returncode == 3, r.stderr
    assert "the default source ~/Documents does not exist: set [backup] sources in" in r.stderr
    assert "next: set [backup] sources in" in r.stdout


def test_pyproject_is_read_without_packaging_warnings() -> None:
    """What the build backend says when it reads pyproject.toml, warnings made errors."""
    code = (
        "from setuptools.dist import Distribution\n"
        "from setuptools.config.pyprojecttoml import apply_configuration\n"
        "apply_configuration(Distribution(), 'pyproject.toml')\n"
    )
    r = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert r.returncode == 0, r.stderr


def test_a_restore_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0)
    for i in range(6):
        (p.src / f"big{i}.bin").write_bytes(os.urandom(1 << 20))
    p.backup()
    argv = [GLACIER_BACKUP, "--config", str(p.config), "restore", "--from-spool", "--to",
            str(tmp_path / "out")]  # fmt: skip
    code, out = on_terminal(argv, os.environ | {"TERM": "xterm-256color"})
    assert code == 0, out
    assert b"restore" in out and b" files" in out and b"MiB" in out, out  # the bar was drawn
    assert b"restored into" in out and b"6 files (6.0 MiB)" in out


def test_a_missing_vault_names_the_vault_and_the_key(
    tmp_path: Path, glacier_emulator: Any, aws_env: None
) -> None:
    store = (
        f'type = "glacier"\nvault = "no-such-vault"\nregion = "us-east-1"\n'
        f'endpoint_url = "{glacier_emulator.endpoint_url}"'
    )
    p = Project(tmp_path, increments=0, store=store)
    (p.src / "a.txt").write_text("a\n")
    p.backup()
    r = p.run("upload")
    assert r.returncode == 1
    assert "the vault 'no-such-vault' does not exist in us-east-1" in r.stderr
    assert f"store.vault (and store.region) in {p.config}" in r.stderr


def test_the_backup_bar_counts_inside_a_large_file(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=7)
    (p.src / "big.bin").write_bytes(os.urandom(9 << 20))  # more than two 4 MiB tar buffers
    code, out = on_terminal([GLACIER_BACKUP, "--config", str(p.config), "backup"], os.environ)
    assert code == 0, out
    shown = [float(m) for m in re.findall(rb"([0-9.]+) MiB read", out)]
    assert any(0 < mib < 9 for mib in shown), out  # a frame drawn half-way through the file
    assert b"9.0 MiB read" in out  # the summary

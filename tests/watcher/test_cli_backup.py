"""``backup`` / ``seal`` as a user runs them: real subprocesses, real files, GNU tar."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localbackup import formats
from localbackup.index import read_index
from tests.watcher.service_harness import Project

ENV_KEYS = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")


def cycles(p: Project) -> list[Path]:
    return sorted(c for c in (p.spool / "cycles").iterdir() if not c.name.startswith("."))


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", st.st_mode)
            else:
                out[rel] = ("file", st.st_mode, st.st_mtime_ns, p.read_bytes())
    return out


def extract(cycle: Path, upto: int, dest: Path) -> None:
    dest.mkdir()
    for n in range(upto + 1):
        subprocess.run(
            ["tar", "--zstd", "-xf", str(cycle / formats.tar_name(n)), "-C", str(dest)], check=True
        )


def test_backup_cycle_changes_and_gnu_tar_extraction(tmp_path: Path) -> None:
    e = Project(tmp_path, increments=2, level=3)
    (e.src / "docs").mkdir()
    (e.src / "docs" / "a.txt").write_text("alpha\n")
    (e.src / "docs" / "b.txt").write_text("beta\n")
    (e.src / "gone.txt").write_text("soon deleted\n")
    (e.src / "empty").mkdir()
    os.symlink("docs/a.txt", e.src / "link")
    r = e.run("backup")
    assert r.returncode == 0, r.stderr
    assert "increment 0 (full)" in r.stdout
    events = [json.loads(line) for line in r.stderr.splitlines()]
    assert any(ev["event"] == "backup.summary" and ev["files_written"] >= 5 for ev in events)

    (e.src / "docs" / "a.txt").write_text("alpha, edited\n")
    (e.src / "gone.txt").unlink()
    (e.src / "docs" / "b.txt").rename(e.src / "docs" / "b-renamed.txt")
    (e.src / "docs" / "a.txt").chmod(0o600)
    before_second = snapshot(e.src)
    r = e.run("backup")
    assert r.returncode == 0, r.stderr
    assert "increment 1 (incremental)" in r.stdout

    (cycle,) = cycles(e)
    with open(cycle / formats.index_name(1), "rb") as f:
        index1 = read_index(f)
    prefix = str(e.src).lstrip("/").encode()
    assert prefix + b"/gone.txt" not in index1
    assert prefix + b"/docs/b.txt" not in index1
    assert prefix + b"/docs/b-renamed.txt" in index1
    dest = tmp_path / "restored"
    extract(cycle, 1, dest)
    restored = snapshot(dest / str(e.src).lstrip("/"))
    for path in ("gone.txt", "docs/b.txt"):  # plain tar extraction keeps deleted files...
        restored.pop(path)
    assert restored == before_second  # ...everything else is exactly the tree at that time

    r = e.run("backup")  # the last increment of the cycle seals it
    assert r.returncode == 0, r.stderr
    sealed = formats.load_sealed_cycle(cycle)
    assert [m.kind for m in sealed.increments] == ["full", "incremental", "incremental"]
    for f in sealed.files:
        assert hashlib.sha256((cycle / f.name).read_bytes()).hexdigest() == f.sha256
    markers = list((e.spool / "markers").iterdir())
    assert [m.name for m in markers] == [f"cycle-{sealed.host}-{sealed.cycle_id}.json"]

    r = e.run("backup")  # the next backup starts a new cycle with a full
    assert r.returncode == 0 and "increment 0 (full)" in r.stdout
    assert len(cycles(e)) == 2


def test_seal_and_forced_full(tmp_path: Path) -> None:
    e = Project(tmp_path, increments=7, level=3)
    (e.src / "f").write_text("x")
    assert e.run("seal").stdout.startswith("nothing to seal: there is no open cycle")
    assert e.run("backup").returncode == 0
    r = e.run("seal")
    assert r.returncode == 0 and "sealed cycle" in r.stdout
    assert e.run("backup").returncode == 0
    r = e.run("backup", "--full")
    assert r.returncode == 0 and "a full backup was requested" in r.stdout
    first, second, third = cycles(e)
    assert (first / "cycle.json").exists() and (second / "cycle.json").exists()
    assert not (third / "cycle.json").exists()
    assert len(list((e.spool / "markers").iterdir())) == 2


def test_missing_source_is_a_warning_with_exit_code_3(tmp_path: Path) -> None:
    e = Project(tmp_path, increments=7, level=3)
    (e.src / "f").write_text("x")
    e.config.write_text(
        e.config.read_text().replace(
            f'sources = ["{e.src}"]', f'sources = ["{e.src}", "{tmp_path / "nope"}"]'
        )
    )
    r = e.run("backup")
    assert r.returncode == 3, r.stderr
    assert "missing_source" in r.stdout and str(tmp_path / "nope") in r.stdout
    (cycle,) = cycles(e)
    assert (cycle / formats.manifest_name(0)).exists()  # the backup itself completed


def _kill_mid_increment(e: Project, number: int) -> None:
    """Start a backup and SIGKILL it while increment ``number`` is being written."""
    proc = subprocess.Popen(e.cmd("backup"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((e.spool / "cycles").glob(f"*/.{formats.tar_name(number)}.partial"))
        if found and found[0].stat().st_size > 0:
            partial = found[0]
            break
        time.sleep(0.005)
    assert partial is not None and proc.poll() is None, "the backup ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_sigkill_mid_increment_then_next_run_recovers(tmp_path: Path) -> None:
    e = Project(
        tmp_path, increments=7, level=19
    )  # slow compression keeps the increment in flight long enough
    for i in range(8):
        (e.src / f"blob{i}").write_bytes(os.urandom(3 << 19))
    _kill_mid_increment(e, 0)
    r = e.run("backup")  # the full is written again, nothing partial is trusted
    assert r.returncode == 0, r.stderr
    assert "increment 0 (full)" in r.stdout
    assert "spool.recovered" in r.stderr

    for i in range(8):
        (e.src / f"blob{i}").write_bytes(os.urandom(3 << 19))
    _kill_mid_increment(e, 1)
    r = e.run("backup")  # continues the cycle from its last complete increment
    assert r.returncode == 0, r.stderr
    assert "increment 1 (incremental)" in r.stdout

    (cycle,) = cycles(e)
    assert not list(cycle.glob(".*"))
    for n in (0, 1):
        m = formats.load_manifest(cycle / formats.manifest_name(n))
        for f in (m.tar, m.index):
            assert hashlib.sha256((cycle / f.name).read_bytes()).hexdigest() == f.sha256
    dest = tmp_path / "out"
    extract(cycle, 1, dest)
    for i in range(8):
        assert (dest / str(e.src).lstrip("/") / f"blob{i}").read_bytes() == (
            e.src / f"blob{i}"
        ).read_bytes()


def test_init_writes_a_starter_config_and_private_dirs(tmp_path: Path) -> None:
    pytest.importorskip("uploader.crypto")
    env = {**os.environ, **{k: str(tmp_path / k.lower()) for k in ENV_KEYS}}
    src = tmp_path / "data-to-save"
    src.mkdir()
    cmd = [sys.executable, "-m", "watcher", "init", "--source", str(src)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 0, r.stderr
    config = tmp_path / "xdg_config_home" / "glacier-backup" / "config.toml"
    identity = config.parent / "identity.txt"
    assert identity.stat().st_mode & 0o777 == 0o600
    assert identity.read_text().startswith("# created:")
    text = config.read_text()
    assert str(src) in text and '"age1' in text
    for d in (
        "xdg_data_home/glacier-backup/spool",
        "xdg_data_home/glacier-backup/spool/markers",
        "xdg_state_home/glacier-backup",
        "xdg_data_home/glacier-backup/vault",
    ):
        assert (tmp_path / d).stat().st_mode & 0o777 == 0o700, d
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert again.returncode == 1 and "already exists" in again.stdout
    assert config.read_text() == text
    r = subprocess.run(
        [sys.executable, "-m", "watcher", "backup"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr


def test_keygen_writes_a_private_identity_that_age_accepts(tmp_path: Path) -> None:
    out = tmp_path / "id.txt"
    cmd = [sys.executable, "-m", "watcher", "keygen", "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    recipient = r.stdout.strip()
    assert recipient.startswith("age1") and out.stat().st_mode & 0o777 == 0o600
    assert "AGE-SECRET-KEY-1" not in r.stdout + r.stderr  # the secret is never printed
    enc = subprocess.run(
        ["age", "-r", recipient], input=b"secret data", capture_output=True, check=True
    ).stdout
    dec = subprocess.run(["age", "-d", "-i", str(out)], input=enc, capture_output=True, check=True)
    assert dec.stdout == b"secret data"
    before = out.read_bytes()
    again = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    assert out.read_bytes() == before


def test_init_never_changes_the_mode_of_a_folder_the_user_named(tmp_path: Path) -> None:
    pytest.importorskip("uploader.crypto")
    env = {**os.environ, **{k: str(tmp_path / k.lower()) for k in ENV_KEYS}}
    env["HOME"] = str(tmp_path / "home")  # with the default source, ~/Documents
    (tmp_path / "home" / "Documents").mkdir(parents=True)
    shared = tmp_path / "etc"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    config = shared / "glacier-backup.toml"
    r = subprocess.run(
        [sys.executable, "-m", "watcher", "--config", str(config), "init"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert shared.stat().st_mode & 0o777 == 0o755
    assert config.stat().st_mode & 0o777 == 0o600

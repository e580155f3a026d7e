"""Restoring archives of the original tool (glacierclient), made the way it made them.

The original's local stage wrote each backup with Python's ``tarfile`` (mode ``w:bz2``, one
``add(path)`` per new or changed file, absolute paths), named ``<ts>_full.tar.bz2`` or
``<ts>_incr_from_<previous ts>.tar.bz2``; its upload stage put every file of that directory
into a plain tar under its bare name and ran ``openssl enc -aes-256-cbc -pbkdf2 -salt -k KEY``
on it. The builder below does the same with the real ``openssl`` (and, as a variant, GNU
``tar -cjf`` for the inner archives).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from localbackup.pointintime import PointInTimeError
from localbackup.safepath import UnsafeMemberError
from uploader.restore.legacy import LegacyArchiveError, plan_restore, restore_legacy
from watcher.commands import legacy as command

OPENSSL = shutil.which("openssl")
TAR = shutil.which("tar")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")
KEY = "AReallySecurePasswordForLocalEncryption"  # the old tool's default localEncryptionKey
STAMPS = ["20210510030700", "20210511030700", "20210512030700", "20210513030700"]

Tree = dict[str, tuple[str, bytes, int]]  # path below the source -> (kind, data/target, mode)


@dataclass
class LegacyHistory:
    src: Path
    archive: Path
    expected: list[Tree] = field(default_factory=list)  # what a restore of point n gives


def _scan(src: Path) -> dict[str, tuple[str, bytes, int]]:
    """Files and symlinks the old tool saw (os.walk files, never directories)."""
    found: dict[str, tuple[str, bytes, int]] = {}
    for top, _dirs, files in os.walk(src):
        for name in files:
            p = Path(top, name)
            rel = str(p.relative_to(src))
            if p.is_symlink():
                found[rel] = ("link", os.fsencode(os.readlink(p)), 0)
            else:
                found[rel] = ("file", p.read_bytes(), p.stat().st_mode & 0o7777)
    return found


def _inner_tar(out: Path, files: list[Path], gnu_tar: bool) -> None:
    if gnu_tar:
        assert TAR is not None
        listing = out.with_suffix(".list")
        listing.write_text("".join(f"{f}\n" for f in files))
        subprocess.run(
            [TAR, "-cjf", str(out), "--no-recursion", "-T", str(listing)],
            check=True,
            capture_output=True,  # "Removing leading '/' from member names"
        )
        listing.unlink()
        return
    with tarfile.open(out, "w:bz2") as tf:  # exactly as the original: absolute paths, add()
        for f in files:
            tf.add(str(f))


def _encrypt(path: Path, key: str) -> Path:
    assert OPENSSL is not None
    out = path.with_name(path.name + ".enc")
    cmd = [OPENSSL, "enc", "-aes-256-cbc", "-pbkdf2", "-salt", "-in", str(path), "-out", str(out)]
    subprocess.run([*cmd, "-k", key], check=True)  # the original passed the key like this
    path.unlink()
    return out


def _bundle(stage: Path, out: Path, key: str | None) -> Path:
    with tarfile.open(out, "w:") as tf:  # bare names, os.walk order
        for top, _dirs, files in os.walk(stage):
            for name in files:
                if name != "backup_set_complete.flag":
                    tf.add(os.path.join(top, name), arcname=name)
    return _encrypt(out, key) if key else out


def make_legacy_history(
    tmp_path: Path, *, key: str | None = KEY, inner_key: str | None = None, gnu_tar: bool = False
) -> LegacyHistory:
    """A full and three increments of a changing tree, bundled as the original uploaded it."""
    src = tmp_path / "src"
    stage = tmp_path / "stage"
    (src / "sub").mkdir(parents=True)
    stage.mkdir()
    (src / "a.txt").write_text("a v1")
    (src / "sub" / "b.txt").write_text("b v1")
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    os.symlink("a.txt", src / "link")
    (src / "hard1").write_text("same inode")
    os.link(src / "hard1", src / "hard2")

    def step1() -> None:
        (src / "a.txt").write_text("a v2")
        (src / "sub" / "b.txt").unlink()  # deleted: the old tool never records it
        (src / "c.txt").write_text("c v1")

    def step2() -> None:
        (src / "deep" / "er").mkdir(parents=True)
        (src / "deep" / "er" / "d.txt").write_text("d v1")
        (src / "c.txt").write_text("c v2")

    def step3() -> None:
        (src / "a.txt").unlink()
        (src / "e.txt").write_text("e v1")

    history = LegacyHistory(src, tmp_path / "GlacierBackup-20210513040000.tar")
    previous: dict[str, tuple[str, bytes, int]] = {}
    union: Tree = {}
    for n, change in enumerate([None, step1, step2, step3]):
        if change is not None:
            change()
        now = _scan(src)
        changed = sorted(p for p, v in now.items() if previous.get(p) != v)
        name = f"{STAMPS[n]}_full" if n == 0 else f"{STAMPS[n]}_incr_from_{STAMPS[n - 1]}"
        inner = stage / f"{name}.tar.bz2"
        _inner_tar(inner, [src / p for p in changed], gnu_tar)
        if inner_key:
            _encrypt(inner, inner_key)
        union = {**union, **{p: now[p] for p in changed}}
        history.expected.append(dict(union))
        previous = now
    (stage / "backup_set_complete.flag").write_text(STAMPS[-1])
    history.archive = _bundle(stage, history.archive, key)
    return history


def restored(out: Path, src: Path) -> Tree:
    return _scan(out / str(src).lstrip("/"))


def _pass_file(tmp_path: Path, key: str = KEY) -> Path:
    f = tmp_path / "legacy-passphrase"
    f.write_text(key + "\n")
    return f


@pytest.mark.parametrize("gnu_tar", [False, True], ids=["python-tarfile", "gnu-tar"])
@pytest.mark.parametrize("key", [KEY, None], ids=["encrypted", "plain"])
def test_every_point_in_time_comes_back(tmp_path: Path, gnu_tar: bool, key: str | None) -> None:
    if gnu_tar and TAR is None:
        pytest.skip("GNU tar not installed")
    h = make_legacy_history(tmp_path, key=key, gnu_tar=gnu_tar)
    assert h.archive.name.endswith(".tar.enc" if key else ".tar")
    for n, expected in enumerate(h.expected):
        out = tmp_path / f"out{n}"
        result = restore_legacy(h.archive, out, passphrase=key.encode() if key else None, at=n)
        assert restored(out, h.src) == expected
        assert [p.number for p in result.plan.chain] == list(range(n + 1))
        assert result.stats.deleted == 0 and not result.stats.warnings
    # deletions were never recorded: b.txt (deleted at 1) and a.txt (deleted at 3) are back
    assert {"sub/b.txt", "a.txt"} <= set(restored(tmp_path / "out3", h.src))
    last = tmp_path / "out3" / str(h.src).lstrip("/")
    assert os.stat(last / "hard1").st_ino == os.stat(last / "hard2").st_ino
    assert (last / "deep").stat().st_mode & 0o777 == 0o755
    assert not list(tmp_path.glob(".*"))  # no staging or scratch left behind


def test_at_accepts_old_timestamps_and_times(tmp_path: Path) -> None:
    h = make_legacy_history(tmp_path)
    r = restore_legacy(h.archive, tmp_path / "a", passphrase=KEY.encode(), at=STAMPS[2])
    assert r.plan.target.number == 2
    when = datetime(2021, 5, 11, 12, 0).astimezone()
    r = restore_legacy(h.archive, tmp_path / "b", passphrase=KEY.encode(), at=when)
    assert r.plan.target.timestamp == STAMPS[1]
    assert restored(tmp_path / "b", h.src) == h.expected[1]
    with pytest.raises(PointInTimeError):
        restore_legacy(h.archive, tmp_path / "c", passphrase=KEY.encode(), at="20200101000000")
    assert not (tmp_path / "c").exists()


def test_encrypted_inner_backups_use_their_own_passphrase(tmp_path: Path) -> None:
    h = make_legacy_history(tmp_path, key=KEY, inner_key="inner secret")
    out = tmp_path / "out"
    restore_legacy(h.archive, out, passphrase=KEY.encode(), inner_passphrase=b"inner secret")
    assert restored(out, h.src) == h.expected[-1]


@pytest.mark.parametrize("passphrase", [b"not the key", None])
def test_wrong_or_missing_passphrase_fails_clearly_leaving_nothing(
    tmp_path: Path, passphrase: bytes | None
) -> None:
    h = make_legacy_history(tmp_path)
    before = set(tmp_path.iterdir())
    with pytest.raises(LegacyArchiveError, match="passphrase"):
        restore_legacy(h.archive, tmp_path / "out", passphrase=passphrase)
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize("bad_name", ["../escaped", "/abs/escaped", "home/../../escaped"])
def test_a_malicious_member_is_refused_and_nothing_is_left(tmp_path: Path, bad_name: str) -> None:
    stage = tmp_path / "stage"
    stage.mkdir()
    with tarfile.open(stage / f"{STAMPS[0]}_full.tar.bz2", "w:bz2") as tf:
        ok = tarfile.TarInfo("home/me/fine.txt")
        tf.addfile(ok, None)
        evil = tarfile.TarInfo(bad_name)
        evil.size = 4
        tf.addfile(evil, io.BytesIO(b"evil"))
    archive = _bundle(stage, tmp_path / "GlacierBackup-x.tar", KEY)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnsafeMemberError, match="refusing archive member"):
        restore_legacy(archive, work / "out", passphrase=KEY.encode())
    assert list(work.iterdir()) == []
    assert not (tmp_path / "escaped").exists() and not Path("/abs/escaped").exists()


def test_an_increment_whose_base_is_missing_is_refused(tmp_path: Path) -> None:
    members = [(f"{STAMPS[1]}_incr_from_{STAMPS[0]}.tar.bz2", 10)]
    with pytest.raises(LegacyArchiveError, match="not in this archive"):
        plan_restore(members, None)


def test_plan_follows_links_and_ignores_other_members() -> None:
    members = [
        (f"{STAMPS[2]}_incr_from_{STAMPS[1]}.tar.bz2", 3),
        ("GlacierBackup-20210501000000.tar.enc", 99),  # a leftover of a failed upload
        (f"{STAMPS[0]}_full.tar.bz2", 1),
        (f"{STAMPS[1]}_incr_from_{STAMPS[0]}.tar.bz2", 2),
        (f"{STAMPS[3]}_full.tar.bz2", 4),  # a second chain: the upload ran late
    ]
    plan = plan_restore(members, 2)
    assert [p.timestamp for p in plan.chain] == STAMPS[:3]
    assert plan.ignored == ("GlacierBackup-20210501000000.tar.enc",)
    assert [p.timestamp for p in plan_restore(members, None).chain] == [STAMPS[3]]


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    command.add_parser(sub)
    args = parser.parse_args(list(argv))
    return int(args.run(args))


def test_cli_restores_with_a_passphrase_file_or_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_legacy_history(tmp_path)
    pw = _pass_file(tmp_path)
    out = tmp_path / "out"
    argv = ["restore-legacy", str(h.archive), "--to", str(out), "--at", "1"]
    assert _cli(*argv, "--passphrase-file", str(pw)) == 0
    assert restored(out, h.src) == h.expected[1]
    printed = capsys.readouterr().out
    assert "4 backups" in printed and "applying 0, 1" in printed
    assert "recorded no deletions" in printed
    monkeypatch.setenv("GLACIER_BACKUP_LEGACY_PASSPHRASE", KEY)
    assert _cli("restore-legacy", str(h.archive), "--list") == 0
    assert f"{STAMPS[3]}_incr_from_{STAMPS[2]}.tar.bz2" in capsys.readouterr().out
    assert not list(tmp_path.glob("*scratch*"))
    assert _cli(*argv) == 1  # not empty, no --force: refused, as by restore
    assert _cli(*argv[:-1], "3", "--force", "--yes") == 0
    assert restored(out, h.src) == h.expected[3]
    monkeypatch.setenv("GLACIER_BACKUP_LEGACY_PASSPHRASE", "wrong")
    assert _cli("restore-legacy", str(h.archive), "--to", str(tmp_path / "x")) == 1
    assert "cannot decrypt" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

"""A source that is missing at backup time keeps its entries (issue 13), through the real
``glacier-backup`` process: an unplugged disk, a moved folder, an unmounted mount point."""

from __future__ import annotations

import shutil
from pathlib import Path

from localbackup import formats
from tests.support.mounts import tmpfs
from tests.watcher.service_harness import Project


def two_sources(p: Project) -> Path:
    """A second source, ``disk``, next to the project's ``src``; returns it."""
    disk = p.root / "disk"
    disk.mkdir()
    (disk / "photos").mkdir()
    (disk / "photos" / "1.jpg").write_bytes(b"one" * 1000)
    (disk / "photos" / "2.jpg").write_bytes(b"two" * 1000)
    text = p.config.read_text()
    p.config.write_text(text.replace(f'sources = ["{p.src}"]', f'sources = ["{p.src}", "{disk}"]'))
    (p.src / "notes.txt").write_text("notes\n")
    return disk


def test_a_missing_source_keeps_its_entries_and_says_so(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=7)
    disk = two_sources(p)
    p.backup()
    shutil.move(disk, tmp_path / "unplugged")
    r = p.run("backup")
    assert r.returncode == 3, r.stderr
    assert f"WARNING: {disk}: source does not exist: its 4 entries" in r.stderr
    assert "not recorded as deleted" in r.stderr
    assert "0 deleted since the base" in r.stdout
    out = tmp_path / "out"  # a restore of that point in time still has the disk's files
    assert p.run("restore", "--from-spool", "--to", str(out)).returncode == 0
    assert (out / str(disk).lstrip("/") / "photos" / "2.jpg").read_bytes() == b"two" * 1000
    status = p.status()["last_backup"]
    assert status["result"] == "warnings" and status["warnings"] == 1
    assert str(disk) in status["message"]

    shutil.move(tmp_path / "unplugged", disk)  # plugged in again: nothing is sent again
    r = p.run("backup")
    assert r.returncode == 0, r.stderr
    assert "0 B read" in r.stdout

    p.config.write_text(p.config.read_text().replace(f', "{disk}"', ""))  # removed for good
    r = p.run("backup")
    assert r.returncode == 0, r.stderr
    assert "4 deleted since the base" in r.stdout


def test_every_source_missing_writes_nothing_and_fails(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=7)
    (p.src / "f").write_text("x")
    p.backup()
    (cycle,) = (p.spool / "cycles").iterdir()
    shutil.rmtree(p.src)
    r = p.run("backup")
    assert r.returncode == 1
    assert "every source is missing" in r.stderr and str(p.src) in r.stderr
    assert not (cycle / formats.manifest_name(1)).exists()  # no increment written
    assert p.status()["last_backup"]["result"] == "failed"


def test_an_unmounted_mount_point_counts_as_missing(tmp_path: Path) -> None:
    """The backup runs once with a real tmpfs mounted on the source, once after it is
    unmounted: the empty folder left behind is not "every file deleted"."""
    p = Project(tmp_path, increments=7)
    mnt = p.root / "mnt"
    text = p.config.read_text()
    p.config.write_text(text.replace(f'sources = ["{p.src}"]', f'sources = ["{p.src}", "{mnt}"]'))
    (p.src / "f").write_text("x")
    with tmpfs(mnt):
        (mnt / "music").mkdir()
        (mnt / "music" / "song").write_text("la\n")
        p.backup()
    assert not any(mnt.iterdir())  # unmounted: an empty folder on the parent's filesystem
    r = p.run("backup")
    assert r.returncode == 3, r.stderr
    assert f"{mnt}: source is an empty folder where a filesystem was mounted" in r.stderr
    out = tmp_path / "out"
    assert p.run("restore", "--from-spool", "--to", str(out)).returncode == 0
    assert (out / str(mnt).lstrip("/") / "music" / "song").read_text() == "la\n"

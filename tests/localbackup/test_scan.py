"""The scanner: order, sources, special files, excludes, CACHEDIR.TAG, mount points."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from localbackup.exclude import compile_excludes
from localbackup.scan import ScanStats, scan

SIG = b"Signature: 8a477f597d28d172789f06886806bc55"


def names(root: Path, entries: list[tuple[bytes, os.stat_result]]) -> list[str]:
    base = os.fsencode(root)
    return [os.fsdecode(os.path.relpath(p, base)) for p, _ in entries]


def run(sources: list[Path], patterns: tuple[str, ...] = (), **kw: bool) -> tuple[list, ScanStats]:  # type: ignore[type-arg]
    stats = ScanStats()
    return list(scan(tuple(sources), compile_excludes(patterns), stats, **kw)), stats


def test_depth_first_parents_first_files_before_subdirs_sorted(tmp_path: Path) -> None:
    for d in ("b/y", "a", "b/x"):
        (tmp_path / d).mkdir(parents=True)
    for f in ("b/2", "b/1", "a/f", "b/x/g", "z"):
        (tmp_path / f).write_text(f)
    entries, stats = run([tmp_path])
    assert names(tmp_path, entries) == [
        ".",
        "z",
        "a",
        "a/f",
        "b",
        "b/1",
        "b/2",
        "b/x",
        "b/x/g",
        "b/y",
    ]
    assert not stats.warnings


def test_sources_keep_order_drop_duplicates_and_nested(tmp_path: Path) -> None:
    (tmp_path / "d" / "inner").mkdir(parents=True)
    (tmp_path / "file").write_text("x")
    entries, stats = run(
        [
            tmp_path / "file",
            tmp_path / "d",
            tmp_path / "d" / "inner",
            tmp_path / "file",
            tmp_path / "nope",
        ]
    )
    assert names(tmp_path, entries) == ["file", "d", "d/inner"]
    assert [(k, os.fsdecode(p)) for p, k, _ in stats.warnings] == [
        ("missing_source", str(tmp_path / "nope"))
    ]


def test_fifo_and_socket_skipped_and_counted(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp_path / "sock"))
    try:
        entries, stats = run([tmp_path])
    finally:
        s.close()
    assert names(tmp_path, entries) == ["."]
    assert stats.skipped == {"fifo": 1, "socket": 1}


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    (tmp_path / "alias").symlink_to("real")
    entries, _ = run([tmp_path])
    assert names(tmp_path, entries) == [".", "alias", "real", "real/f"]


def test_excluded_directory_is_not_descended(tmp_path: Path) -> None:
    (tmp_path / "node_modules" / "deep").mkdir(parents=True)
    (tmp_path / "node_modules" / "deep" / "x").write_text("x")
    (tmp_path / "keep.tmp").write_text("x")
    (tmp_path / "keep").write_text("x")
    entries, stats = run([tmp_path], ("node_modules/", "*.tmp"))
    assert names(tmp_path, entries) == [".", "keep"]
    assert stats.skipped == {"excluded": 2}


@pytest.mark.parametrize(("content", "skipped"), [(SIG + b"\n", True), (b"Signature: nope", False)])
def test_cachedir_tag(tmp_path: Path, content: bytes, skipped: bool) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "CACHEDIR.TAG").write_bytes(content)
    (tmp_path / "cache" / "blob").write_text("x")
    entries, stats = run([tmp_path])
    got = names(tmp_path, entries)
    assert ("cache/blob" in got) is not skipped
    assert stats.skipped == ({"cachedir": 1} if skipped else {})
    entries, stats = run([tmp_path], exclude_caches=False)
    assert "cache/blob" in names(tmp_path, entries)


def test_unreadable_directory_is_listed_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "f").write_text("x")
    real = os.scandir

    def scandir(p):  # type: ignore[no-untyped-def]
        if p.endswith(b"locked"):
            raise PermissionError(13, "Permission denied")
        return real(p)

    monkeypatch.setattr(os, "scandir", scandir)
    entries, stats = run([tmp_path])
    assert names(tmp_path, entries) == [".", "locked"]
    assert [k for _, k, _ in stats.warnings] == ["unreadable"]
    assert stats.unreadable_dirs == [os.fsencode(tmp_path / "locked")]


def test_one_file_system_stops_at_mount_points(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    (tmp_path / "f").write_text("x")
    if subprocess.run(
        ["mount", "-t", "tmpfs", "tmpfs", str(mnt)], capture_output=True, check=False
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (mnt / "inside").write_text("x")
        entries, _ = run([tmp_path], one_file_system=True)
        assert names(tmp_path, entries) == [".", "f", "mnt"]
        entries, _ = run([tmp_path], one_file_system=False)
        assert "mnt/inside" in names(tmp_path, entries)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_children_are_stated_relative_to_a_directory_fd_that_is_closed(tmp_path: Path) -> None:
    for d in ("a/b", "c"):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "f").write_text("x")
    (tmp_path / "a" / "link").symlink_to("nowhere")
    before = _open_fds()
    entries, stats = run([tmp_path])
    assert _open_fds() == before
    assert names(tmp_path, entries) == [".", "a", "a/link", "a/b", "a/b/f", "c", "c/f"]
    assert all(os.lstat(p) == st for p, st in entries)  # lstat: symlinks are not followed
    assert stats.warnings == []


def test_directory_that_cannot_be_opened_is_stated_by_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    expected = names(tmp_path, run([tmp_path])[0])
    real_open = os.open

    def no_dirs(path, flags, *args):  # type: ignore[no-untyped-def]
        if flags & os.O_DIRECTORY:
            raise OSError(24, "Too many open files")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", no_dirs)
    entries, stats = run([tmp_path])
    assert names(tmp_path, entries) == expected == [".", "d", "d/f"]
    assert all(os.lstat(p) == st for p, st in entries)
    assert stats.warnings == []


def test_file_vanishing_between_listing_and_stat_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "gone").write_text("x")
    (tmp_path / "kept").write_text("x")
    real = os.scandir

    def scandir(p):  # type: ignore[no-untyped-def]
        listing = list(real(p))
        if os.path.exists(tmp_path / "gone"):
            os.unlink(tmp_path / "gone")  # listed, then deleted before its stat
        return _Listing(listing)

    class _Listing(list):  # type: ignore[type-arg]
        def __enter__(self):  # type: ignore[no-untyped-def]
            return iter(self)

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(os, "scandir", scandir)
    entries, stats = run([tmp_path])
    assert names(tmp_path, entries) == [".", "kept"]
    assert [(os.path.basename(p), k) for p, k, _ in stats.warnings] == [(b"gone", "vanished")]

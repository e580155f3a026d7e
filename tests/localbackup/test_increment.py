"""write_increment end to end: full + incremental, extracted with GNU tar and Python tarfile."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import stat
import tarfile
from pathlib import Path

import pytest

from localbackup.fileio import open_for_reading
from localbackup.index import Index

from .conftest import Backup, BackupFn, archived_root, gnu_extract, needs_gnu_tar, snapshot

NS = 1_000_000_000


def make_tree(root: Path) -> Path:
    (root / "docs" / "sub").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "docs" / "a.txt").write_text("alpha\n")
    (root / "docs" / "sub" / "b.bin").write_bytes(os.urandom(70_000))
    (root / "docs" / "c.txt").write_text("charlie\n" * 1000)
    (root / "link").symlink_to("docs/a.txt")
    (root / "docs" / "mode.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "docs" / "mode.sh", 0o750)
    os.utime(root / "docs" / "c.txt", ns=(1_600_000_000 * NS + 123_456_789,) * 2)
    return root


@needs_gnu_tar
def test_full_then_incremental_restore_with_gnu_tar(tmp_path: Path, backup: BackupFn) -> None:
    src = make_tree(tmp_path / "src")
    full = backup(src)
    assert full.result.files_written == full.result.files_scanned == len(full.index)
    assert all(e.in_increment for e in full.index.entries())

    # modify, delete, rename, chmod, add
    (src / "docs" / "a.txt").write_text("alpha, changed\n")
    (src / "docs" / "sub" / "b.bin").unlink()
    (src / "docs" / "c.txt").rename(src / "docs" / "renamed.txt")
    os.chmod(src / "docs" / "mode.sh", 0o700)
    (src / "new.txt").write_text("new\n")
    (src / "newdir").mkdir()
    inc = backup(src, base=full)

    prefix = str(src).lstrip("/").encode()
    assert prefix + b"/docs/sub/b.bin" not in inc.index
    assert prefix + b"/docs/c.txt" not in inc.index
    assert prefix + b"/docs/renamed.txt" in inc.index
    assert inc.result.deleted == 2
    written = {p for p in inc.index if inc.index[p].in_increment}
    assert prefix + b"/docs/a.txt" in written
    assert prefix + b"/docs/mode.sh" in written  # chmod is a change
    assert prefix + b"/docs/renamed.txt" in written  # renamed: a new path
    assert prefix + b"/newdir" in written
    assert prefix + b"/link" not in written  # unchanged: content in the full
    assert prefix + b"/empty" not in written
    assert inc.result.files_written == len(written)

    dest = tmp_path / "restore"
    gnu_extract(dest, full.tar, inc.tar)
    restored = snapshot(archived_root(dest, src), dir_mtimes=False)
    expected = snapshot(src, dir_mtimes=False)
    # Plain extraction keeps deleted files; the index says what to delete.
    for gone in (b"docs/sub/b.bin", b"docs/c.txt"):
        assert gone in restored
        del restored[gone]
    assert restored == expected


@needs_gnu_tar
def test_full_restore_preserves_dir_mtimes_and_ns_mtimes(tmp_path: Path, backup: BackupFn) -> None:
    src = make_tree(tmp_path / "src")
    os.utime(src / "docs", ns=(1_500_000_000 * NS + 987_654_321,) * 2)
    full = backup(src)
    dest = tmp_path / "restore"
    gnu_extract(dest, full.tar)
    assert snapshot(archived_root(dest, src)) == snapshot(src)
    st = os.stat(archived_root(dest, src) / "docs" / "c.txt")
    assert st.st_mtime_ns == 1_600_000_000 * NS + 123_456_789


def test_python_tarfile_reads_increment(tmp_path: Path, backup: BackupFn) -> None:
    src = make_tree(tmp_path / "src")
    full = backup(src)
    dest = tmp_path / "restore"
    import zstandard

    with (
        open(full.tar, "rb") as f,
        zstandard.ZstdDecompressor().stream_reader(f) as r,
        tarfile.open(fileobj=r, mode="r|") as tf,
    ):
        tf.extractall(dest, filter="fully_trusted")
    got, want = snapshot(archived_root(dest, src)), snapshot(src)
    assert got.keys() == want.keys()
    for k, w in want.items():  # tarfile keeps mtime as a float: about microsecond precision
        g = got[k]
        assert g[:2] == w[:2] and g[3:] == w[3:], k
        if w[0] != "link":
            assert abs(g[2] - w[2]) < 1000, k  # type: ignore[operator]


def test_member_names_strip_leading_slash_and_parents_are_not_archived(
    tmp_path: Path, backup: BackupFn
) -> None:
    src = make_tree(tmp_path / "src")
    single = tmp_path / "single.txt"
    single.write_text("one file\n")
    b = backup([src / "docs", single, tmp_path / "missing"])
    names = list(b.index)
    assert names[0] == str(src / "docs").lstrip("/").encode()
    assert str(single).lstrip("/").encode() in names
    assert str(src).lstrip("/").encode() not in names
    assert b.warnings_by_kind == {"missing_source": [str(tmp_path / "missing")]}


@needs_gnu_tar
def test_new_hardlink_rewrites_both_names(tmp_path: Path, backup: BackupFn) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("shared\n")
    (src / "b").write_text("other\n")
    full = backup(src)
    os.link(src / "a", src / "z_link")  # the first name is unchanged except for its ctime
    inc = backup(src, base=full)
    pre = str(src).lstrip("/").encode()
    a, z = inc.index[pre + b"/a"], inc.index[pre + b"/z_link"]
    assert a.in_increment and a.type == "file"
    assert z.in_increment and z.type == "hardlink" and z.link_target == pre + b"/a"
    assert not inc.index[pre + b"/b"].in_increment
    dest = tmp_path / "restore"
    gnu_extract(dest, full.tar, inc.tar)
    ra, rz = archived_root(dest, src) / "a", archived_root(dest, src) / "z_link"
    assert os.stat(ra).st_ino == os.stat(rz).st_ino
    assert rz.read_text() == "shared\n"


@needs_gnu_tar
def test_sparse_5gib_file_restores_holes(tmp_path: Path, backup: BackupFn) -> None:
    src = tmp_path / "src"
    src.mkdir()
    f = src / "sparse.img"
    with open(f, "wb") as h:
        h.truncate(5 << 30)
        h.seek(1 << 20)
        h.write(b"head data")
        h.seek((4 << 30) + 12345)
        h.write(b"data beyond 4 GiB")
    b = backup(src)
    assert os.path.getsize(b.tar) < 100_000
    dest = tmp_path / "restore"
    gnu_extract(dest, b.tar)
    r = archived_root(dest, src) / "sparse.img"
    st = os.stat(r)
    assert st.st_size == 5 << 30
    assert st.st_blocks * 512 < 1 << 20  # the holes are holes again
    with open(r, "rb") as h:
        h.seek(1 << 20)
        assert h.read(9) == b"head data"
        h.seek((4 << 30) + 12345)
        assert h.read(17) == b"data beyond 4 GiB"
        h.seek((4 << 30) + 12345 - 4)
        assert h.read(4) == bytes(4)

    import zstandard

    with (
        open(b.tar, "rb") as fh,
        zstandard.ZstdDecompressor().stream_reader(fh) as rd,
        tarfile.open(fileobj=rd, mode="r|") as tf,
    ):
        for m in tf:
            if m.name.endswith("sparse.img"):
                assert m.size == 5 << 30
                assert m.sparse is not None
                tf.extract(m, tmp_path / "py", filter="fully_trusted")
    p = archived_root(tmp_path / "py", src) / "sparse.img"
    assert os.stat(p).st_size == 5 << 30
    with open(p, "rb") as h:
        h.seek((4 << 30) + 12345)
        assert h.read(17) == b"data beyond 4 GiB"


@needs_gnu_tar
def test_non_utf8_names_round_trip_byte_exact(tmp_path: Path, backup: BackupFn) -> None:
    src = tmp_path / "src"
    src.mkdir()
    bsrc = os.fsencode(src)
    short = os.path.join(bsrc, b"caf\xe9")
    long_dir = os.path.join(bsrc, b"d\xff" * 60)  # > 100 bytes: needs a pax path record
    os.mkdir(long_dir)
    with open(short, "wb") as f:
        f.write(b"latin-1 name")
    with open(os.path.join(long_dir, b"caf\xe9-" + b"x" * 80), "wb") as f:
        f.write(b"long non-UTF-8 name")
    os.symlink(b"caf\xe9", os.path.join(bsrc, b"lnk\xe9"))
    b = backup(src)
    dest = tmp_path / "restore"
    gnu_extract(dest, b.tar)
    assert snapshot(archived_root(dest, src)) == snapshot(src)
    assert short[1:] in b.index
    import zstandard

    with (
        open(b.tar, "rb") as f,
        zstandard.ZstdDecompressor().stream_reader(f) as r,
        tarfile.open(fileobj=r, mode="r|") as tf,
    ):
        names = {os.fsencode(m.name) for m in tf}
    assert set(b.index) == names  # tarfile decodes with surrogateescape: same bytes back


@needs_gnu_tar
def test_xattrs_are_archived(tmp_path: Path, backup: BackupFn) -> None:
    src = tmp_path / "src"
    src.mkdir()
    f = src / "x.txt"
    f.write_text("x")
    try:
        os.setxattr(f, "user.foo", b"bar\x00baz")
        os.setxattr(src, "user.dir", b"yes")
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            pytest.skip("filesystem refuses user xattrs")
        raise
    b = backup(src)
    dest = tmp_path / "restore"
    gnu_extract(dest, b.tar, extra=("--xattrs", "--xattrs-include=user.*"))
    r = archived_root(dest, src)
    assert os.getxattr(r / "x.txt", "user.foo") == b"bar\x00baz"
    assert os.getxattr(r, "user.dir") == b"yes"


@needs_gnu_tar
def test_devices_archived_fifos_and_sockets_skipped(tmp_path: Path, backup: BackupFn) -> None:
    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(src / "fifo")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(src / "sock"))
    try:
        os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs privileges")
    try:
        b = backup(src)
    finally:
        s.close()
    assert b.result.skipped == {"fifo": 1, "socket": 1}
    pre = str(src).lstrip("/").encode()
    assert b.index[pre + b"/null"].type == "chardev"
    assert pre + b"/fifo" not in b.index
    dest = tmp_path / "restore"
    gnu_extract(dest, b.tar)
    st = os.lstat(archived_root(dest, src) / "null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


def test_excludes_and_cachedir_are_skipped_and_counted(tmp_path: Path, backup: BackupFn) -> None:
    src = make_tree(tmp_path / "src")
    (src / "x.tmp").write_text("tmp")
    (src / "node_modules" / "pkg").mkdir(parents=True)
    (src / "node_modules" / "pkg" / "i.js").write_text("js")
    (src / "cachey").mkdir()
    (src / "cachey" / "CACHEDIR.TAG").write_text(
        "Signature: 8a477f597d28d172789f06886806bc55\n# cache\n"
    )
    (src / "cachey" / "blob").write_text("cached")
    b = backup(src, exclude=("*.tmp", "node_modules/"))
    assert b.result.skipped == {"excluded": 2, "cachedir": 1}
    names = b"\n".join(b.index)
    assert b".tmp" not in names and b"node_modules" not in names and b"cachey" not in names
    kept = backup(src, exclude_caches=False)
    assert any(p.endswith(b"cachey/blob") for p in kept.index)


def test_unchanged_tree_writes_nothing_and_dirs_with_new_metadata_are_rewritten(
    tmp_path: Path, backup: BackupFn
) -> None:
    src = make_tree(tmp_path / "src")
    full = backup(src)
    same = backup(src, base=full)
    assert same.result.files_written == 0
    assert same.result.deleted == 0
    assert len(same.index) == len(full.index)
    assert not any(e.in_increment for e in same.index.entries())
    os.chmod(src / "empty", 0o700)
    again = backup(src, base=same)
    assert [p for p in again.index if again.index[p].in_increment] == [
        str(src / "empty").lstrip("/").encode()
    ]


def test_chown_is_a_change(tmp_path: Path, backup: BackupFn) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    src = make_tree(tmp_path / "src")
    full = backup(src)
    os.chown(src / "docs" / "a.txt", 4321, 4321)
    inc = backup(src, base=full)
    e = inc.index[str(src / "docs" / "a.txt").lstrip("/").encode()]
    assert e.in_increment and e.uid == 4321 and e.gid == 4321
    assert inc.result.files_written == 1


def test_content_hash_mode_ignores_times_but_sees_content(tmp_path: Path, backup: BackupFn) -> None:
    src = make_tree(tmp_path / "src")
    full = backup(src, content_hash=True)
    a_name = str(src / "docs" / "a.txt").lstrip("/").encode()
    assert full.index[a_name].content_hash is not None
    os.utime(src / "docs" / "a.txt", ns=(NS, NS))  # times only
    st = os.stat(src / "docs" / "c.txt")
    (src / "docs" / "c.txt").write_text("CHARLIE\n" * 1000)  # same size, same mtime
    os.utime(src / "docs" / "c.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    inc = backup(src, base=full, content_hash=True)
    written = [p for p in inc.index if inc.index[p].in_increment]
    assert written == [str(src / "docs" / "c.txt").lstrip("/").encode()]
    assert inc.index[a_name].mtime_ns == NS  # the index has the current metadata
    # metadata mode would have missed the same-size, same-mtime edit only if ctime matched:
    meta = backup(src, base=inc)
    assert meta.result.files_written == 0


def test_progress_is_reported(tmp_path: Path, backup: BackupFn) -> None:
    src = make_tree(tmp_path / "src")
    calls: list[tuple[int, int]] = []
    import io

    from localbackup.increment import IncrementOptions, write_increment

    r = write_increment(
        IncrementOptions(sources=(src,), compression_threads=1),
        None,
        io.BytesIO(),
        io.BytesIO(),
        progress=lambda n, b: calls.append((n, b)),
    )
    assert calls[-1] == (r.files_scanned, r.bytes_in)
    assert r.bytes_in == sum(
        os.path.getsize(os.path.join(d, f))
        for d, _, fs in os.walk(src)
        for f in fs
        if not os.path.islink(os.path.join(d, f))
    )


def test_progress_counts_bytes_inside_a_large_file(tmp_path: Path) -> None:
    import io

    from localbackup.increment import IncrementOptions, write_increment

    src = tmp_path / "src"
    src.mkdir()
    size = 9 << 20  # more than two of the tar writer's 4 MiB buffers
    (src / "big.bin").write_bytes(os.urandom(size))
    calls: list[tuple[int, int]] = []
    write_increment(
        IncrementOptions(sources=(src,), compression_level=1, compression_threads=1),
        None,
        io.BytesIO(),
        io.BytesIO(),
        progress=lambda n, b: calls.append((n, b)),
    )
    inside = [b for _, b in calls if 0 < b < size]
    assert len(inside) >= 2 and inside == sorted(inside)
    assert calls[-1][1] == size


def test_bytes_out_is_the_compressed_size(tmp_path: Path, backup: BackupFn) -> None:
    b = backup(make_tree(tmp_path / "src"))
    assert b.result.bytes_out == os.path.getsize(b.tar)


# -- faults ---------------------------------------------------------------------------------


def _failing_opener(victim: bytes, exc: OSError):  # type: ignore[no-untyped-def]
    def opener(path: bytes) -> int:
        if path == victim:
            raise exc
        return open_for_reading(path)

    return opener


def test_unreadable_file_is_a_warning_and_keeps_old_entry(tmp_path: Path, backup: BackupFn) -> None:
    src = make_tree(tmp_path / "src")
    victim = os.fsencode(src / "docs" / "a.txt")
    full = backup(src)
    (src / "docs" / "a.txt").write_text("new content\n")
    inc = backup(src, base=full, opener=_failing_opener(victim, PermissionError(13, "denied")))
    assert list(inc.warnings_by_kind) == ["unreadable"]
    assert inc.result.skipped == {"unreadable": 1}  # the summary's "skipped" counts it
    name = victim[1:]
    assert name in inc.index and not inc.index[name].in_increment  # old copy still restorable
    first = backup(src, opener=_failing_opener(victim, PermissionError(13, "denied")))
    assert name not in first.index  # nothing earlier to fall back on


_UNPRIVILEGED_CHILD = """
import json, os, sys
from pathlib import Path
from localbackup.increment import IncrementOptions, write_increment

# Everything is imported while still root (the interpreter may live where nobody cannot read);
# then this process becomes nobody for the backup itself.
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
top, src = Path(sys.argv[1]), Path(sys.argv[2])
with open(top / "t.tar.zst", "wb") as t, open(top / "i.zst", "wb") as i:
    r = write_increment(IncrementOptions(sources=(src,), compression_threads=1), None, t, i)
print(json.dumps([[w.kind, w.path] for w in r.warnings]))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="drops privileges from root")
def test_unreadable_file_for_real_as_unprivileged_user(tmp_path: Path) -> None:
    """Root reads everything, so a child process that becomes nobody meets a real EACCES.

    A fresh interpreter rather than a fork: forking the test process, which holds the
    threads of session servers, is not safe (a forked child crashed with SIGSEGV)."""
    import subprocess
    import sys
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="lb-unreadable-", dir="/tmp"))
    try:
        os.chmod(top, 0o777)
        src = top / "src"
        src.mkdir()
        (src / "ok.txt").write_text("fine")
        (src / "secret.txt").write_text("no")
        os.chmod(src / "secret.txt", 0o000)
        child = subprocess.run(
            [sys.executable, "-c", _UNPRIVILEGED_CHILD, str(top), str(src)],
            cwd=top,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
            capture_output=True,
            text=True,
            check=False,
        )
        assert child.returncode == 0, child.stderr
        assert json.loads(child.stdout) == [["unreadable", str(src / "secret.txt")]]
    finally:
        shutil.rmtree(top)


def test_file_vanishing_before_read_is_a_warning(tmp_path: Path, backup: BackupFn) -> None:
    src = make_tree(tmp_path / "src")
    victim = os.fsencode(src / "docs" / "a.txt")

    def opener(path: bytes) -> int:
        if path == victim:
            os.unlink(path)  # really gone between the scan and the read
        return open_for_reading(path)

    b = backup(src, opener=opener)
    assert list(b.warnings_by_kind) == ["vanished"]
    assert victim[1:] not in b.index
    assert b.result.files_written == len(b.index)


@pytest.mark.parametrize("delta", [-5000, +5000])
@needs_gnu_tar
def test_size_change_while_reading(tmp_path: Path, backup: BackupFn, delta: int) -> None:
    src = make_tree(tmp_path / "src")
    victim_path = src / "docs" / "c.txt"
    victim = os.fsencode(victim_path)
    size = victim_path.stat().st_size

    def opener(path: bytes) -> int:
        fd = open_for_reading(path)
        if path == victim:  # the file changes after the scan, while we hold it open
            with open(path, "r+b") as f:
                if delta < 0:
                    f.truncate(size + delta)
                else:
                    f.seek(0, 2)
                    f.write(b"z" * delta)
        return fd

    b = backup(src, opener=opener)
    assert list(b.warnings_by_kind) == ["changed_while_reading"]
    dest = tmp_path / "restore"
    gnu_extract(dest, b.tar)  # the archive stays well-formed
    got = (archived_root(dest, src) / "docs" / "c.txt").read_bytes()
    assert len(got) == size
    now = victim_path.read_bytes()
    if delta < 0:
        assert got == now + bytes(-delta)
    else:
        assert got == now[:size]
    again = backup(src, base=b)  # recorded so that the next run backs it up again
    assert [p for p in again.index if again.index[p].in_increment] == [victim[1:]]
    assert again.result.warnings == ()


def test_backup_type_is_reexported_for_tests(tmp_path: Path) -> None:
    assert Backup.__name__ == "Backup"


def test_unlistable_directory_keeps_its_base_entries(
    tmp_path: Path, backup: BackupFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_tree(tmp_path / "src")
    full = backup(src)
    real = os.scandir
    locked = os.fsencode(src / "docs")

    def scandir(p):  # type: ignore[no-untyped-def]
        if p == locked:
            raise PermissionError(13, "Permission denied")
        return real(p)

    monkeypatch.setattr(os, "scandir", scandir)
    inc = backup(src, base=full)
    assert list(inc.warnings_by_kind) == ["unreadable"]
    assert inc.result.deleted == 0  # not "deleted": we just could not look
    assert set(inc.index) == set(full.index)


# -- change detection by position in the base index -----------------------------------------


def _contents(index: Index) -> list[tuple[bytes, object, object, object]]:
    """Everything an index says except which entries are in the increment, in order."""
    return [(p, index.records[p], index.links.get(p), index.hashes.get(p)) for p in index]


def _rel(src: Path, names: set[bytes]) -> set[str]:
    top = str(src).lstrip("/")
    return {os.fsdecode(n)[len(top) :].lstrip("/") or "." for n in names}


@pytest.mark.parametrize("content_hash", [False, True], ids=["metadata", "content"])
def test_additions_deletions_and_renames_anywhere_give_the_index_of_a_fresh_scan(
    tmp_path: Path, backup: BackupFn, content_hash: bool
) -> None:
    src = tmp_path / "src"
    for d in range(6):
        (src / f"d{d}").mkdir(parents=True)
        for f in range(5):
            (src / f"d{d}" / f"f{f}").write_text(f"{d}{f}")
    (src / "d2" / "ln").symlink_to("f0")
    full = backup(src, content_hash=content_hash)
    (src / "d0" / "f0").unlink()  # the first file in archive order
    shutil.rmtree(src / "d3")  # a whole directory in the middle
    (src / "d2" / "new").write_text("new")
    (src / "d5" / "f4").write_text("changed!")  # the last entry
    (src / "a_first").write_text("first")
    (src / "z_last").mkdir()
    (src / "d1" / "f1").rename(src / "d4" / "moved")
    inc = backup(src, base=full, content_hash=content_hash)
    fresh = backup(src, content_hash=content_hash)
    assert _contents(inc.index) == _contents(fresh.index)
    assert _rel(src, inc.index.written) == {
        ".", "a_first", "z_last", "d0", "d1", "d2", "d2/new", "d4", "d4/moved", "d5/f4"
    }  # fmt: skip
    assert inc.result.files_written == 10
    assert inc.result.deleted == 1 + 6 + 1  # d0/f0, d3 and its files, d1/f1
    again = backup(src, base=inc, content_hash=content_hash)
    assert again.result.files_written == again.result.deleted == 0
    assert _contents(again.index) == _contents(fresh.index)


def test_sources_in_another_order_change_nothing_but_the_order(
    tmp_path: Path, backup: BackupFn
) -> None:
    a, b = make_tree(tmp_path / "a"), make_tree(tmp_path / "b")
    full = backup([a, b])
    swapped = backup([b, a], base=full)
    assert swapped.result.files_written == swapped.result.deleted == 0
    assert _contents(swapped.index) == _contents(backup([b, a]).index)


def test_incrementals_over_a_decoded_base_index(tmp_path: Path, backup: BackupFn) -> None:
    src = make_tree(tmp_path / "src")
    full = backup(src)
    assert len(list(full.index.entries())) == len(full.index)  # decodes every column
    same = backup(src, base=full)
    assert same.result.files_written == same.result.deleted == 0
    assert _contents(same.index) == _contents(full.index) and not same.index.written
    (src / "docs" / "a.txt").write_text("changed\n")
    assert len(same.index.records) == len(full.index)  # decoded base again
    changed = backup(src, base=same)
    assert _rel(src, changed.index.written) == {"docs/a.txt"}
    assert _contents(changed.index) == _contents(backup(src).index)


def test_a_missing_source_keeps_its_entries_even_when_nothing_else_changed(
    tmp_path: Path, backup: BackupFn
) -> None:
    """A source that is gone is not recorded as deleted (this pinned the opposite before
    issue 13: a missing source root means an unplugged disk or a moved folder, not deleted
    files). Its entries are carried until it is removed from the sources."""
    src = make_tree(tmp_path / "src")
    single = tmp_path / "single.txt"
    single.write_text("x")
    full = backup([src, single])
    single.unlink()  # its parent directory is not archived: nothing else changes
    inc = backup([src, single], base=full)
    assert inc.result.files_written == 0 and inc.result.deleted == 0
    assert str(single).lstrip("/").encode() in inc.index
    assert _contents(inc.index) == _contents(full.index)
    (w,) = inc.result.warnings
    assert (w.kind, w.path) == ("missing_source", str(single))
    assert "does not exist" in w.message and "1 entries of the previous backup" in w.message
    removed = backup([src], base=inc)  # removed from the sources: now it is deleted
    assert removed.result.deleted == 1 and not removed.result.warnings


def test_a_missing_folder_comes_back_without_being_sent_again(
    tmp_path: Path, backup: BackupFn
) -> None:
    disk, home = make_tree(tmp_path / "disk"), make_tree(tmp_path / "home")
    full = backup([disk, home])
    (disk.parent / "disk").rename(tmp_path / "elsewhere")  # unplugged
    (home / "new.txt").write_text("new\n")
    gone = backup([disk, home], base=full)
    assert gone.result.deleted == 0
    assert _rel(home, gone.index.written) == {".", "new.txt"}  # the folder and its new file
    prefix = str(disk).lstrip("/").encode()
    kept = {p for p in full.index if p.startswith(prefix)}
    assert kept and kept <= set(gone.index)
    assert "its 9 entries of the previous backup are kept" in gone.result.warnings[0].message
    (tmp_path / "elsewhere").rename(disk)  # plugged in again, unchanged
    back = backup([disk, home], base=gone)
    assert back.result.bytes_in == 0 and back.result.deleted == 0  # no content sent again
    assert _rel(disk, back.index.written) <= {"."}  # at most the folder (renames touch ctime)
    assert not back.result.warnings


def test_a_missing_source_in_a_full_says_the_full_cannot_hold_it(
    tmp_path: Path, backup: BackupFn
) -> None:
    src = make_tree(tmp_path / "src")
    full = backup([src, tmp_path / "disk"])
    (w,) = full.result.warnings
    assert w.kind == "missing_source" and "not in this full backup" in w.message

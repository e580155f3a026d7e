"""The pax tar writer, read back with Python's tarfile (GNU tar is used in test_increment)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from localbackup.paxheader import BLOCK, RECORD, pax_record
from localbackup.tarwriter import TarWriter, data_regions

NS = 1_000_000_000


def fake_stat(**kw: int) -> os.stat_result:
    base = dict(st_mode=0o100644, st_uid=1000, st_gid=1000, st_size=0, st_blocks=1 << 40,
                st_mtime_ns=1_700_000_000 * NS + 5, st_rdev=0)  # fmt: skip
    base.update(kw)
    return SimpleNamespace(**base)  # type: ignore[return-value]


def read_members(data: bytes) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for m in tf:
            f = tf.extractfile(m) if m.isfile() else None
            out.append((m, f.read() if f is not None else None))
    return out


def test_members_round_trip_through_tarfile(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"hello world")
    sink = io.BytesIO()
    tw = TarWriter(sink, uname=lambda _: "alice", gname=lambda _: "staff")
    tw.add_dir(b"top", fake_stat(st_mode=0o40750))
    fd = os.open(f, os.O_RDONLY)
    copy = tw.add_file(b"top/f", fake_stat(st_size=11), fd)
    os.close(fd)
    tw.add_symlink(b"top/l", fake_stat(st_mode=0o120777), b"t" * 150)
    tw.add_hardlink(b"top/h", fake_stat(), b"top/f")
    tw.add_device(b"top/null", fake_stat(st_mode=0o20666, st_rdev=os.makedev(1, 3)))
    tw.add_dir(b"top/" + b"long" * 40, fake_stat(st_mode=0o40700, st_uid=2**31, st_gid=7))
    tw.close()
    data = sink.getvalue()
    assert len(data) % RECORD == 0
    assert not copy.changed and not copy.sparse
    (d, _), (fm, content), (lm, _), (hm, _), (dev, _), (ld, _) = read_members(data)
    assert d.isdir() and d.name == "top" and d.mode == 0o750
    assert fm.name == "top/f" and content == b"hello world"
    assert fm.uname == "alice" and fm.gname == "staff" and fm.uid == 1000
    assert fm.mtime == pytest.approx(1_700_000_000 + 5e-9)
    assert fm.pax_headers["mtime"] == "1700000000.000000005"
    assert lm.issym() and lm.linkname == "t" * 150
    assert hm.islnk() and hm.linkname == "top/f"
    assert dev.ischr() and (dev.devmajor, dev.devminor) == (1, 3)
    assert ld.name == "top/" + "long" * 40 and ld.uid == 2**31 and ld.gid == 7


def test_negative_mtime_goes_to_pax() -> None:
    sink = io.BytesIO()
    tw = TarWriter(sink)
    tw.add_dir(b"old", fake_stat(st_mode=0o40755, st_mtime_ns=-1_500_000_000))
    tw.close()
    ((m, _),) = read_members(sink.getvalue())
    assert m.pax_headers["mtime"] == "-1.500000000"


@pytest.mark.parametrize(("claimed", "changed"), [(1500, True), (500, True), (1000, False)])
def test_size_change_while_reading_keeps_the_header_size(
    tmp_path: Path, claimed: int, changed: bool
) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 1000)
    sink = io.BytesIO()
    tw = TarWriter(sink)
    fd = os.open(f, os.O_RDONLY)
    copy = tw.add_file(b"f", fake_stat(st_size=claimed), fd)
    os.close(fd)
    tw.close()
    assert copy.changed is changed
    ((m, content),) = read_members(sink.getvalue())
    assert m.size == claimed
    assert content == (b"x" * 1000 + bytes(claimed))[:claimed]


def test_file_over_4gib_gets_a_pax_size_record() -> None:
    """5 GiB streamed from /dev/zero into a sink that keeps only the start."""

    class Head:
        def __init__(self) -> None:
            self.head = bytearray()
            self.total = 0

        def write(self, data: memoryview | bytes) -> None:
            if len(self.head) < 65536:
                self.head += bytes(data[: 65536 - len(self.head)])
            self.total += len(data)

    sink = Head()
    tw = TarWriter(sink)
    size = 5 << 30
    fd = os.open("/dev/zero", os.O_RDONLY)
    tw.add_file(b"big", fake_stat(st_size=size), fd)  # /dev/zero "grows": cut at size
    os.close(fd)
    tw.close()
    assert sink.total == 3 * BLOCK + size + 2 * BLOCK + (-(5 * BLOCK + size) % RECORD)
    with tarfile.open(fileobj=io.BytesIO(bytes(sink.head)), mode="r:") as tf:
        m = tf.next()
    assert m is not None and m.size == size and m.pax_headers["size"] == str(size)


def test_sparse_file_uses_gnu_sparse_1_0(tmp_path: Path) -> None:
    f = tmp_path / "sparse"
    with open(f, "wb") as h:
        h.truncate(10 << 20)
        h.seek(4 << 20)
        h.write(b"middle")
    fd = os.open(f, os.O_RDONLY)
    regions = data_regions(fd, 10 << 20)
    assert len(regions) == 1 and regions[0][0] <= 4 << 20 < sum(regions[0])
    sink = io.BytesIO()
    tw = TarWriter(sink)
    copy = tw.add_file(b"dir/sparse", os.fstat(fd), fd)
    os.close(fd)
    tw.close()
    assert copy.sparse and not copy.changed
    assert len(sink.getvalue()) < 1 << 20
    ((m, content),) = read_members(sink.getvalue())
    assert m.name == "dir/sparse" and m.size == 10 << 20
    assert m.pax_headers["GNU.sparse.major"] == "1"
    assert m.sparse is not None and m.sparse[-1] == (10 << 20, 0)  # trailing hole marker
    assert content is not None and content[4 << 20 : (4 << 20) + 6] == b"middle"
    assert content.count(0) == (10 << 20) - 6


def test_pax_record_length_counts_itself() -> None:
    for n in range(0, 2100, 7):
        rec = pax_record(b"k", b"v" * n)
        length, _, rest = rec.partition(b" ")
        assert int(length) == len(rec) and rest.endswith(b"\n")


def test_many_xattrs_beyond_the_buffer_still_work() -> None:
    sink = io.BytesIO()
    tw = TarWriter(sink, buffer_size=4096)
    recs = b"".join(pax_record(b"SCHILY.xattr.user.k%d" % i, b"v" * 100) for i in range(100))
    tw.add_dir(b"d", fake_stat(st_mode=0o40755), recs)
    tw.close()
    ((m, _),) = read_members(sink.getvalue())
    assert m.pax_headers["SCHILY.xattr.user.k99"] == "v" * 100

"""Index format: lossless round trip, Mapping behaviour, version checks, speed at 50k entries."""

from __future__ import annotations

import io
import time

import pytest
import zstandard

from localbackup.index import (
    INDEX_MAGIC,
    Index,
    IndexEntry,
    IndexFormatError,
    read_index,
    write_index,
)


def entry(path: bytes, **kw: object) -> IndexEntry:
    fields: dict[str, object] = dict(
        path=path, type="file", mode=0o100644, uid=1000, gid=1000, size=10,
        mtime_ns=1_700_000_000_123_456_789, ctime_ns=1_700_000_001_000_000_001, ino=42,
        dev=2049, nlink=1, link_target=None, content_hash=None, in_increment=True,
    )  # fmt: skip
    fields.update(kw)
    return IndexEntry(**fields)  # type: ignore[arg-type]


def round_trip(index: Index) -> Index:
    buf = io.BytesIO()
    write_index(index, buf)
    buf.seek(0)
    return read_index(buf)


def test_round_trip_is_lossless_and_ordered() -> None:
    entries = [
        entry(b"home/u", type="dir", mode=0o40755, size=4096),
        entry(b"home/u/caf\xe9", in_increment=False),
        entry(b"home/u/link", type="symlink", mode=0o120777, link_target=b"caf\xe9"),
        entry(b"home/u/hard", type="hardlink", nlink=2, link_target=b"home/u/caf\xe9"),
        entry(b"home/u/hashed", content_hash="ab" * 32, in_increment=False),
        entry(b"home/u/old", mtime_ns=-1_500_000_000, ctime_ns=-1, uid=2**32 - 1),
        entry(b"dev/sda", type="blockdev", mode=0o60660, size=0, ino=2**64 - 1, dev=2**64 - 1),
        entry(b"dev/null", type="chardev", mode=0o20666),
        entry(b"x" * 4000),
    ]
    got = round_trip(Index.from_entries(entries))
    assert list(got.entries()) == entries
    assert list(got) == [e.path for e in entries]
    assert list(got.paths()) == [e.path for e in entries]
    assert len(got) == len(entries)
    assert got.get(b"home/u/link") == entries[2]
    assert got.get(b"missing") is None
    assert b"home/u" in got and b"home" not in got


def test_empty_index_round_trips() -> None:
    assert len(round_trip(Index())) == 0


def test_file_is_a_plain_zstd_frame_starting_with_the_version_line() -> None:
    buf = io.BytesIO()
    write_index(Index.from_entries([entry(b"a")]), buf)
    assert zstandard.ZstdDecompressor().decompress(buf.getvalue()).startswith(INDEX_MAGIC)


@pytest.mark.parametrize(
    "payload",
    [b"GLACIER-BACKUP-INDEX 2\n", b"something else entirely", INDEX_MAGIC + b"\x01\x00"],
)
def test_unknown_version_or_garbage_is_refused(payload: bytes) -> None:
    data = zstandard.ZstdCompressor().compress(payload)
    with pytest.raises(IndexFormatError):
        read_index(io.BytesIO(data))


def test_truncated_index_is_refused() -> None:
    buf = io.BytesIO()
    write_index(Index.from_entries([entry(b"a"), entry(b"b")]), buf)
    raw = zstandard.ZstdDecompressor().decompress(buf.getvalue())
    with pytest.raises(IndexFormatError):
        read_index(io.BytesIO(zstandard.ZstdCompressor().compress(raw[:-3])))
    with pytest.raises(IndexFormatError):
        read_index(io.BytesIO(b"not zstd at all"))


def test_nul_in_path_is_rejected() -> None:
    with pytest.raises(ValueError, match="NUL"):
        write_index(Index.from_entries([entry(b"a\0b")]), io.BytesIO())


def test_50k_entries_write_and_read_quickly() -> None:
    index = Index.from_entries(
        entry(b"home/user/project/dir%04d/file%06d.txt" % (i // 40, i), ino=i)
        for i in range(50_000)
    )
    buf = io.BytesIO()
    t0 = time.perf_counter()
    write_index(index, buf)
    buf.seek(0)
    got = read_index(buf)
    assert time.perf_counter() - t0 < 1.0
    assert len(got) == 50_000
    assert len(buf.getvalue()) < 2_000_000  # compact: well under 40 bytes an entry
    assert got[b"home/user/project/dir0000/file000007.txt"].ino == 7

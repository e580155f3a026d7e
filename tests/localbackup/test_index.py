"""Index format: lossless round trip, Mapping behaviour, version checks, 50k entries, the
encoded (not yet decoded) form of a read index and its change keys."""

from __future__ import annotations

import io

import pytest
import zstandard

from localbackup.index import (
    CHANGE_KEY,
    INDEX_MAGIC,
    ROW_SIZE,
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


def test_50k_entries_round_trip_compactly() -> None:
    index = Index.from_entries(
        entry(b"home/user/project/dir%04d/file%06d.txt" % (i // 40, i), ino=i)
        for i in range(50_000)
    )
    buf = io.BytesIO()
    write_index(index, buf)
    buf.seek(0)
    got = read_index(buf)
    assert len(got) == 50_000
    assert len(buf.getvalue()) < 2_000_000  # compact: well under 40 bytes an entry
    assert got[b"home/user/project/dir0000/file000007.txt"].ino == 7


ENTRIES = [
    entry(b"home/u", type="dir", mode=0o40755, size=4096, in_increment=False),
    entry(b"home/u/a", ino=7),
    entry(b"home/u/link", type="symlink", mode=0o120777, link_target=b"a", in_increment=False),
    entry(b"home/u/hashed", content_hash="cd" * 32, ino=9),
    entry(b"home/u/old", mtime_ns=-1_500_000_000, ctime_ns=-1, in_increment=False),
]


def decompressed(index: Index) -> bytes:
    buf = io.BytesIO()
    write_index(index, buf)
    return zstandard.ZstdDecompressor().decompress(buf.getvalue())


@pytest.mark.parametrize("read", [True, False], ids=["read", "in_memory"])
def test_rows_by_position_agree_with_the_records(read: bool) -> None:
    index = Index.from_entries(ENTRIES)
    if read:
        index = round_trip(index)
    records = list(Index.from_entries(ENTRIES).records.values())
    rows = index.rows()
    assert rows.paths == [e.path for e in ENTRIES]
    assert [rows.record(i) for i in range(len(ENTRIES))] == records
    assert rows.records(1, 4) == records[1:4]
    for i, r in enumerate(records):
        at = rows.at + i * ROW_SIZE
        assert rows.data[at : at + CHANGE_KEY.size] == CHANGE_KEY.pack(*r[:7])
    assert list(index.entries()) == ENTRIES  # and it still decodes to the same entries


@pytest.mark.parametrize("read", [True, False], ids=["read", "in_memory"])
def test_one_record_and_a_directory_s_contents_are_found_without_decoding_them_all(
    read: bool,
) -> None:
    """What a backup asks of its base about a source root (missing, or an unmounted mount
    point): the answers of the records, and an index as read stays encoded (its rows are its
    own columns, not a copy the change detection would have to re-encode)."""
    index = Index.from_entries(ENTRIES)
    if read:
        index = round_trip(index)
    records = Index.from_entries(ENTRIES).records
    columns = index.rows().data
    for path, rec in records.items():
        assert index.record_of(path) == rec
    assert index.record_of(b"home/nothing") is None
    assert index.lists_below(b"home/u") and index.lists_below(b"home")
    assert not index.lists_below(b"home/u/a") and not index.lists_below(b"home/u/b")
    assert (index.rows().data is columns) == read


def test_rows_of_a_changed_read_index_show_the_change() -> None:
    index = round_trip(Index.from_entries(ENTRIES))
    index.records[b"home/u/a"] = (0o100600, *index.records[b"home/u/a"][1:])
    assert index.rows().record(1)[0] == 0o100600


def test_carried_over_index_clears_the_flags_and_keeps_everything_else() -> None:
    base = round_trip(Index.from_entries(ENTRIES))
    carried = base.carried_over()
    assert len(carried) == len(ENTRIES) and not carried.written
    expected = Index.from_entries(
        IndexEntry(**{**{f: getattr(e, f) for f in e.__slots__}, "in_increment": False})
        for e in ENTRIES
    )
    assert decompressed(carried) == decompressed(expected)  # copied columns == encoded ones
    assert list(round_trip(carried).entries()) == list(expected.entries())
    assert base.written == {b"home/u/a", b"home/u/hashed"}  # the base itself is untouched


@pytest.mark.parametrize(
    "change",
    [
        lambda ix: ix.records.__setitem__(b"home/u/a", (0o100600, *ix.records[b"home/u/a"][1:])),
        lambda ix: ix.records.pop(b"home/u/old"),
        lambda ix: ix.links.__setitem__(b"home/u/a", b"elsewhere"),
        lambda ix: ix.hashes.pop(b"home/u/hashed"),
        lambda ix: ix.written.add(b"home/u"),
        lambda ix: ix.add(ENTRIES[0]),
    ],
    ids=["record", "deletion", "link", "hash", "flag", "add"],
)
def test_a_changed_read_index_is_written_as_changed(change) -> None:  # type: ignore[no-untyped-def]
    changed = round_trip(Index.from_entries(ENTRIES))
    change(changed)
    reference = Index.from_entries(changed.entries())  # built in memory, encoded from scratch
    assert decompressed(changed) == decompressed(reference)
    carried = round_trip(Index.from_entries(ENTRIES))
    change(carried)
    assert decompressed(carried.carried_over()) == decompressed(
        Index.from_entries(
            IndexEntry(**{**{f: getattr(e, f) for f in e.__slots__}, "in_increment": False})
            for e in carried.entries()
        )
    )


def test_column_counts_are_checked_on_read() -> None:
    raw = decompressed(Index.from_entries(ENTRIES))
    bad = raw.replace(b"cdcd", b"\0dcd", 1)  # one more separator in the hashes column
    with pytest.raises(IndexFormatError, match="disagree"):
        read_index(io.BytesIO(zstandard.ZstdCompressor().compress(bad)))

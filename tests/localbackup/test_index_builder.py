"""The on-disk index builder writes exactly the bytes ``write_index`` writes."""

from __future__ import annotations

import io
import random

import pytest

from localbackup.index import _ROW, TYPES, Index, IndexEntry, read_index, write_index
from localbackup.indexbuilder import IndexBuilder


def _entries(n: int, seed: int, links: bool, hashes: bool) -> list[IndexEntry]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        typ = TYPES[rng.randrange(len(TYPES))]
        out.append(
            IndexEntry(
                path=b"root/d%d/f\xff%d" % (i // 7, i),
                type=typ,
                mode=0o100644,
                uid=rng.randrange(70000),
                gid=rng.randrange(70000),
                size=rng.randrange(1 << 40),
                mtime_ns=rng.randrange(-(1 << 60), 1 << 60),
                ctime_ns=rng.randrange(1 << 60),
                ino=rng.randrange(1 << 60),
                dev=rng.randrange(1 << 30),
                nlink=rng.randrange(1, 4),
                link_target=b"t%d" % i if links and i % 3 == 0 else None,
                content_hash=f"{i:064x}" if hashes and i % 2 == 0 else None,
                in_increment=bool(i % 5),
            )
        )
    return out


@pytest.mark.parametrize(
    ("n", "links", "hashes"),
    [(0, False, False), (1, False, False), (5000, True, True), (900, False, True)],
)
def test_builder_bytes_equal_write_index_bytes(n: int, links: bool, hashes: bool) -> None:
    entries = _entries(n, n, links, hashes)
    expected = io.BytesIO()
    write_index(Index.from_entries(entries), expected)
    got = io.BytesIO()
    with IndexBuilder() as b:
        half = n // 2
        for e in entries[:half]:
            rec = Index.from_entries([e]).records[e.path]
            b.append(e.path, rec, e.in_increment, e.link_target, e.content_hash)
        rest = Index.from_entries(entries[half:])
        for e in entries[half:]:  # the bulk path, for the entries not in the increment
            rec = rest.records[e.path]
            if e.in_increment:
                b.append(e.path, rec, True, e.link_target, e.content_hash)
            else:
                b.extend(
                    [e.path],
                    _ROW.pack(*rec),
                    [e.link_target or b""] if links else None,
                    [e.content_hash or ""] if hashes else None,
                )
        b.write(got)
    assert got.getvalue() == expected.getvalue()
    assert list(read_index(io.BytesIO(got.getvalue())).entries()) == entries


def test_a_nul_in_a_path_is_refused() -> None:
    with IndexBuilder() as b, pytest.raises(ValueError, match="NUL"):
        b.append(b"a\0b", (0,) * 10, True, None, None)  # type: ignore[arg-type]

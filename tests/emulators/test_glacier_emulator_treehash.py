"""The emulator's own tree hash agrees with botocore's and with the documented vectors."""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from botocore.utils import calculate_tree_hash
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.glacier.treehash import (
    MIB,
    TreeHasher,
    combine_tree_hashes,
    is_mib_aligned,
    is_tree_hash_aligned,
    leaf_digests,
    range_tree_hash,
    reduce_digests,
    tree_hash,
    tree_hash_file,
)

VECTORS = [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"hello", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
    (bytes(MIB), "30e14955ebf1352266dc2ff8067e68104607e750abb9d3b36582b8af909fcb58"),
    (bytes(MIB + 1), "28638dab8d5e1754a4ecb38b0ebe6df66c844f94aed142d4d0283d208bb786cd"),
    (bytes(3 * MIB), "ca6cc129a4514ec765de86a4e7a49adf44842c9cac213c383ebe4071271bdf21"),
    (bytes(6 * MIB + MIB // 2), "7fce0b2525bccf5bd8ed75ec7b7eb52de9b5c0aac4cf60f485aed45a934e9cf5"),
]


@pytest.mark.parametrize(("data", "expected"), VECTORS, ids=lambda v: str(len(v)))
def test_documented_vectors(data: bytes, expected: str) -> None:
    assert tree_hash(data) == expected
    assert calculate_tree_hash(io.BytesIO(data)) == expected


@pytest.mark.parametrize("size", [1, MIB - 1, MIB, 2 * MIB, 3 * MIB + 5, 5 * MIB, 9 * MIB - 1])
def test_matches_botocore_on_random_data(size: int) -> None:
    data = random.Random(size).randbytes(size)
    assert tree_hash(data) == calculate_tree_hash(io.BytesIO(data))
    assert tree_hash_file(io.BytesIO(data)) == tree_hash(data)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=300_000), min_size=1, max_size=30))
def test_incremental_hasher_ignores_chunking(chunks: list[int]) -> None:
    data = random.Random(len(chunks)).randbytes(sum(chunks))
    hasher = TreeHasher()
    offset = 0
    for size in chunks:
        hasher.update(data[offset : offset + size])
        offset += size
    assert hasher.tree_hash() == tree_hash(data)
    assert hasher.linear_hash() == hashlib.sha256(data).hexdigest()
    assert hasher.size == len(data)


@pytest.mark.parametrize(
    ("part_size", "total"),
    [(MIB, 3 * MIB + MIB // 2), (2 * MIB, 7 * MIB + 1), (4 * MIB, 4 * MIB), (MIB, 1)],
)
def test_combining_part_hashes_gives_archive_hash(part_size: int, total: int) -> None:
    data = random.Random(total).randbytes(total)
    parts = [tree_hash(data[i : i + part_size]) for i in range(0, total, part_size)]
    assert combine_tree_hashes(parts) == calculate_tree_hash(io.BytesIO(data))


def test_combining_fails_for_non_power_of_two_parts() -> None:
    data = random.Random(1).randbytes(6 * MIB)
    parts = [tree_hash(data[i : i + 3 * MIB]) for i in range(0, len(data), 3 * MIB)]
    assert combine_tree_hashes(parts) != tree_hash(data)


def _tree_nodes(leaves: list[bytes]) -> set[bytes]:
    """Every node of the tree, by brute force."""
    nodes = set(leaves)
    level = leaves
    while len(level) > 1:
        nxt = [reduce_digests(level[i : i + 2]) for i in range(0, len(level), 2)]
        nodes.update(nxt)
        level = nxt
    return nodes


@pytest.mark.parametrize("chunks_and_tail", [(1, 0), (4, 0), (6, MIB // 2), (7, 0), (9, 3)])
def test_alignment_rule_matches_brute_force(chunks_and_tail: tuple[int, int]) -> None:
    full, tail = chunks_and_tail
    total = full * MIB + tail
    data = random.Random(total).randbytes(total)
    leaves = leaf_digests(data)
    nodes = _tree_nodes(leaves)
    n = len(leaves)
    for a in range(n):
        for b in range(a + 1, n + 1):
            first, last = a * MIB, min(b * MIB, total) - 1
            in_tree = reduce_digests(leaves[a:b]) in nodes
            assert is_tree_hash_aligned(first, last, total) == in_tree, (a, b)
            assert range_tree_hash(leaves, first, last) == tree_hash(data[first : last + 1])


def test_documented_alignment_examples() -> None:
    total = 6 * MIB + MIB // 2
    assert is_tree_hash_aligned(2 * MIB, 4 * MIB - 1, total)
    assert not is_tree_hash_aligned(MIB, 3 * MIB - 1, total)
    assert is_mib_aligned(MIB, 3 * MIB - 1, total)
    assert is_mib_aligned(6 * MIB, total - 1, total)
    assert not is_mib_aligned(1, MIB - 1, total)
    assert not is_mib_aligned(0, MIB, total)

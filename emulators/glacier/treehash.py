"""SHA-256 tree hash as Amazon Glacier defines it.

Leaves are the SHA-256 digests of consecutive 1 MiB chunks; pairs of digests are hashed
together level by level, an unpaired last digest moving up unchanged.  All functions are pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import BinaryIO

MIB = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def reduce_digests(digests: Sequence[bytes]) -> bytes:
    """Combine binary node digests pairwise up to the root (raw 32-byte digests)."""
    if not digests:
        return hashlib.sha256(b"").digest()
    level = list(digests)
    while len(level) > 1:
        nxt = [
            hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def combine_tree_hashes(part_hashes: Iterable[str]) -> str:
    """Archive tree hash from the ordered hex tree hashes of its parts.

    Valid when every part except the last is 1 MiB * 2^k bytes (Glacier's part-size rule),
    because each such part is then a node of the archive's tree.
    """
    return reduce_digests([bytes.fromhex(h) for h in part_hashes]).hex()


def leaf_digests(data: bytes) -> list[bytes]:
    """SHA-256 digests of the 1 MiB chunks of ``data``."""
    return [hashlib.sha256(data[i : i + MIB]).digest() for i in range(0, len(data), MIB)]


def tree_hash(data: bytes) -> str:
    """Hex tree hash of an in-memory byte string."""
    return reduce_digests(leaf_digests(data)).hex()


class TreeHasher:
    """Incremental tree hash and linear SHA-256 over a stream of chunks of any size."""

    def __init__(self) -> None:
        self._leaves: list[bytes] = []
        self._pending = bytearray()
        self._linear = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        """Feed the next bytes of the stream."""
        self._linear.update(chunk)
        self.size += len(chunk)
        self._pending += chunk
        while len(self._pending) >= MIB:
            self._leaves.append(hashlib.sha256(self._pending[:MIB]).digest())
            del self._pending[:MIB]

    def leaves(self) -> list[bytes]:
        """All leaf digests so far, including a final short chunk."""
        if self._pending:
            return [*self._leaves, hashlib.sha256(self._pending).digest()]
        return list(self._leaves)

    def tree_hash(self) -> str:
        """Hex tree hash of everything fed so far."""
        return reduce_digests(self.leaves()).hex()

    def linear_hash(self) -> str:
        """Hex plain SHA-256 of everything fed so far."""
        return self._linear.hexdigest()


def tree_hash_file(stream: BinaryIO, length: int | None = None) -> str:
    """Tree hash of ``length`` bytes (or everything) read from a binary stream."""
    hasher = TreeHasher()
    remaining = length
    while remaining is None or remaining > 0:
        size = MIB if remaining is None else min(MIB, remaining)
        chunk = stream.read(size)
        if not chunk:
            break
        hasher.update(chunk)
        if remaining is not None:
            remaining -= len(chunk)
    return hasher.tree_hash()


def is_mib_aligned(first: int, last: int, total: int) -> bool:
    """Glacier's RetrievalByteRange rule for the inclusive range ``first-last``."""
    return first % MIB == 0 and ((last + 1) % MIB == 0 or last == total - 1)


def is_tree_hash_aligned(first: int, last: int, total: int) -> bool:
    """Whether the tree hash of bytes ``first..last`` (inclusive) is a node of the tree of
    a ``total``-byte blob: the range covers chunks [a, b) with a % 2^i == 0 and
    b == min(a + 2^i, N) for some i >= 0.
    """
    if not 0 <= first <= last < total or not is_mib_aligned(first, last, total):
        return False
    n = -(-total // MIB)
    a = first // MIB
    b = n if last == total - 1 else (last + 1) // MIB
    span = 1
    while span < 2 * n:
        if a % span == 0 and b == min(a + span, n):
            return True
        span *= 2
    return False


def range_tree_hash(leaves: Sequence[bytes], first: int, last: int) -> str:
    """Tree hash of a MiB-aligned inclusive byte range from the blob's leaf digests."""
    return reduce_digests(leaves[first // MIB : last // MIB + 1]).hex()

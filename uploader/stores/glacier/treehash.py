"""Amazon Glacier's SHA-256 tree hash, and the range rules built on its 1 MiB chunks.

Leaves are the SHA-256 digests of consecutive 1 MiB chunks; pairs of digests are hashed
together level by level, an unpaired last digest moving up unchanged. Because Glacier part sizes
are 1 MiB x 2^n, each part's tree hash is a node of the archive's tree, so the archive hash is
the same pairwise reduction over the ordered part hashes (:func:`combine_tree_hashes`).
The test double in ``emulators/glacier`` has its own copy (it is not shipped with the package);
the tests cross-check the two and botocore's ``calculate_tree_hash``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from uploader.stores.base import MiB


def _reduce(digests: Sequence[bytes]) -> bytes:
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


def tree_hash(data: bytes | bytearray | memoryview) -> str:
    """Hex tree hash of an in-memory buffer (hashlib releases the GIL: run it in a thread)."""
    view = memoryview(data)
    return _reduce(
        [hashlib.sha256(view[i : i + MiB]).digest() for i in range(0, len(view), MiB)]
    ).hex()


def combine_tree_hashes(part_hashes: Iterable[str]) -> str:
    """Archive tree hash from the ordered hex tree hashes of parts of 1 MiB x 2^n bytes."""
    return _reduce([bytes.fromhex(h) for h in part_hashes]).hex()


class TreeHasher:
    """Incremental tree hash over a stream of chunks of any size."""

    def __init__(self) -> None:
        self._leaves: list[bytes] = []
        self._pending = bytearray()
        self.size = 0

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add ``data`` (any length) to the hash."""
        self.size += len(chunk)
        self._pending += chunk
        while len(self._pending) >= MiB:
            self._leaves.append(hashlib.sha256(memoryview(self._pending)[:MiB]).digest())
            del self._pending[:MiB]

    def hexdigest(self) -> str:
        """The tree hash of everything added, in hex."""
        tail = [hashlib.sha256(self._pending).digest()] if self._pending else []
        return _reduce([*self._leaves, *tail]).hex()


def is_mib_aligned(first: int, last: int, size: int) -> bool:
    """Glacier's rule for ``RetrievalByteRange`` (inclusive ``first-last`` of ``size`` bytes)."""
    return (
        0 <= first <= last < size
        and first % MiB == 0
        and ((last + 1) % MiB == 0 or last == size - 1)
    )


def is_tree_hash_aligned(first: int, last: int, size: int) -> bool:
    """Whether bytes ``first..last`` (inclusive) are one node of the tree of a ``size``-byte blob:
    the range covers chunks ``[a, b)`` with ``a % 2^i == 0`` and ``b == min(a + 2^i, N)``."""
    if not is_mib_aligned(first, last, size):
        return False
    n = -(-size // MiB)
    a, b = first // MiB, (n if last == size - 1 else (last + 1) // MiB)
    span = 1
    while span < 2 * n:
        if a % span == 0 and b == min(a + span, n):
            return True
        span *= 2
    return False

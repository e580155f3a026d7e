"""Reading what a manifest describes, and checking it is exactly that.

Every file a restore reads (an increment's tar and index, from the spool or from a retrieved
bundle) has a size and a SHA-256 in its cycle's manifest. :class:`VerifyingReader` hands the
bytes on while hashing them and :meth:`VerifyingReader.verify` refuses any difference with
:class:`IntegrityError`, so a restore never finishes on damaged data.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from localbackup.fileio import CHUNK_SIZE
from localbackup.safepath import ExtractError

__all__ = ["IntegrityError", "Readable", "VerifyingReader"]


class IntegrityError(ExtractError):
    """The data read does not match what it must be (a checksum, a size, a valid stream)."""


class Readable(Protocol):
    """A source of bytes (a file, a bundle member, a decryptor's output)."""

    def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` bytes (all when negative); ``b""`` at the end."""
        ...


class VerifyingReader:
    """Reads exactly ``size`` bytes of ``src`` while hashing; :meth:`verify` checks them."""

    def __init__(self, src: Readable, size: int, sha256: str, name: str) -> None:
        self._src, self._left, self._sha256, self.name = src, size, sha256, name
        self._hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left when negative), never past ``size``;
        raises :class:`IntegrityError` if the source ends early.
        """
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._src.read(want) if want else b""
        self._hash.update(data)
        self._left -= len(data)
        if want and not data:
            raise IntegrityError(f"{self.name}: ends {self._left} bytes early")
        return data

    def verify(self) -> None:
        """Read what the consumer left (end padding), then compare size and SHA-256."""
        while self._left:
            self.read(CHUNK_SIZE)
        if self._src.read(1):
            raise IntegrityError(f"{self.name}: longer than its manifest says")
        if self._hash.hexdigest() != self._sha256:
            raise IntegrityError(f"{self.name}: SHA-256 does not match the cycle's manifest")

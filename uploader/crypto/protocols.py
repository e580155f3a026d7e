"""The two hooks of the format: recipients wrap the file key, identities unwrap it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from uploader.crypto.header import Stanza

__all__ = ["Identity", "Recipient"]


@runtime_checkable
class Recipient(Protocol):
    """Something the file key can be encrypted to (a public key or a passphrase)."""

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """Return the header stanzas that carry ``file_key`` for this recipient."""
        ...


@runtime_checkable
class Identity(Protocol):
    """Something that can recover the file key from a header (a private key or a passphrase)."""

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """Return the file key, ``None`` if no stanza is for this identity.

        Raises :class:`~uploader.crypto.errors.HeaderError` for a malformed stanza of its type.
        """
        ...

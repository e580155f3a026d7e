"""Encryption state: the file key, the header and the payload nonce of one archive.

Saving this state lets an interrupted upload regenerate byte-identical ciphertext later.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from uploader.crypto.errors import InvalidRecipientError
from uploader.crypto.header import VERSION_LINE, format_header
from uploader.crypto.primitives import FILE_KEY_SIZE
from uploader.crypto.protocols import Recipient
from uploader.crypto.scrypt import ScryptRecipient

__all__ = ["NONCE_SIZE", "EncryptionState", "new_encryption"]

NONCE_SIZE = 16
_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class EncryptionState:
    """Everything needed to produce an archive's ciphertext. ``file_key`` is a secret."""

    file_key: bytes = field(repr=False)
    header: bytes  # complete header, including the '--- mac' line and its newline
    nonce: bytes  # the 16-byte payload nonce that follows the header

    def __post_init__(self) -> None:
        if len(self.file_key) != FILE_KEY_SIZE:
            raise ValueError(f"file key must be {FILE_KEY_SIZE} bytes")
        if len(self.nonce) != NONCE_SIZE:
            raise ValueError(f"payload nonce must be {NONCE_SIZE} bytes")
        if not self.header.startswith(VERSION_LINE) or not self.header.endswith(b"\n"):
            raise ValueError("header must be a complete age v1 header")

    @property
    def prefix(self) -> bytes:
        """The bytes before the first payload chunk: header then nonce."""
        return self.header + self.nonce

    def to_json(self) -> str:
        """Serialize for resume state. Contains the file key: store it 0600."""
        return json.dumps(
            {
                "version": _STATE_VERSION,
                "file_key": base64.b64encode(self.file_key).decode("ascii"),
                "header": base64.b64encode(self.header).decode("ascii"),
                "nonce": base64.b64encode(self.nonce).decode("ascii"),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> EncryptionState:
        """Inverse of :meth:`to_json`; ``ValueError`` if the document is not a saved state."""
        try:
            doc = json.loads(text)
            if doc["version"] != _STATE_VERSION:
                raise ValueError(f"unsupported encryption state version {doc['version']!r}")
            return cls(
                file_key=base64.b64decode(doc["file_key"], validate=True),
                header=base64.b64decode(doc["header"], validate=True),
                nonce=base64.b64decode(doc["nonce"], validate=True),
            )
        except (KeyError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
            raise ValueError(f"not a saved encryption state: {type(exc).__name__}") from None


def new_encryption(recipients: Sequence[Recipient]) -> EncryptionState:
    """Start an archive: a random file key and nonce, and the header for ``recipients``."""
    if not recipients:
        raise InvalidRecipientError("at least one recipient is required")
    if len(recipients) > 1 and any(isinstance(r, ScryptRecipient) for r in recipients):
        raise InvalidRecipientError("a passphrase (scrypt) recipient must be the only recipient")
    file_key = os.urandom(FILE_KEY_SIZE)
    stanzas = [stanza for recipient in recipients for stanza in recipient.wrap(file_key)]
    if len(stanzas) > 1 and any(stanza.type == "scrypt" for stanza in stanzas):
        raise InvalidRecipientError("a passphrase (scrypt) recipient must be the only recipient")
    return EncryptionState(file_key, format_header(stanzas, file_key), os.urandom(NONCE_SIZE))

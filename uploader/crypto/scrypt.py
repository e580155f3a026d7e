"""Passphrase recipients and identities (``scrypt`` stanzas)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from uploader.crypto.errors import HeaderError, InvalidRecipientError, PassphraseError
from uploader.crypto.header import Stanza, b64decode_canonical, b64encode_raw
from uploader.crypto.primitives import unwrap_file_key, wrap_file_key

__all__ = ["DEFAULT_MAX_WORK_FACTOR", "DEFAULT_WORK_FACTOR", "ScryptIdentity", "ScryptRecipient"]

DEFAULT_WORK_FACTOR = 18  # what `age -p` uses: about a second, 256 MiB of memory
DEFAULT_MAX_WORK_FACTOR = 22  # what age accepts when decrypting
_STANZA_TYPE = "scrypt"
_SALT_LABEL = b"age-encryption.org/v1/scrypt"
_SALT_SIZE = 16
_WORK_FACTOR_RE = re.compile(r"[1-9][0-9]*")
_MAX_SUPPORTED_WORK_FACTOR = 30


def _derive(passphrase: bytes, salt: bytes, work_factor: int) -> bytes:
    kdf = Scrypt(salt=_SALT_LABEL + salt, length=32, n=1 << work_factor, r=8, p=1)
    return kdf.derive(passphrase)


def _check_passphrase(passphrase: bytes) -> None:
    if not passphrase:
        raise PassphraseError("passphrase is empty")


@dataclass(frozen=True, slots=True)
class ScryptRecipient:
    """Encrypt to a passphrase. Must be the only recipient of a file."""

    passphrase: bytes = field(repr=False)
    work_factor: int = DEFAULT_WORK_FACTOR

    def __post_init__(self) -> None:
        _check_passphrase(self.passphrase)
        if not 1 <= self.work_factor <= _MAX_SUPPORTED_WORK_FACTOR:
            raise InvalidRecipientError(
                f"scrypt work factor must be between 1 and {_MAX_SUPPORTED_WORK_FACTOR}"
            )

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """One ``scrypt`` stanza with a fresh salt."""
        salt = os.urandom(_SALT_SIZE)
        wrap_key = _derive(self.passphrase, salt, self.work_factor)
        body = wrap_file_key(wrap_key, file_key)
        return [Stanza(_STANZA_TYPE, (b64encode_raw(salt), str(self.work_factor)), body)]


@dataclass(frozen=True, slots=True)
class ScryptIdentity:
    """Decrypt with a passphrase; refuses work factors above ``max_work_factor``."""

    passphrase: bytes = field(repr=False)
    max_work_factor: int = DEFAULT_MAX_WORK_FACTOR

    def __post_init__(self) -> None:
        _check_passphrase(self.passphrase)

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """The file key from the ``scrypt`` stanza, or ``None`` if the passphrase is wrong."""
        for stanza in stanzas:
            if stanza.type != _STANZA_TYPE:
                continue
            if len(stanzas) != 1:
                raise HeaderError("an scrypt stanza must be the only stanza")
            if len(stanza.args) != 2:
                raise HeaderError("scrypt stanza must have exactly two arguments")
            salt = b64decode_canonical(stanza.args[0], "scrypt salt")
            if len(salt) != _SALT_SIZE:
                raise HeaderError("scrypt salt must be 16 bytes")
            text = stanza.args[1]
            # decimal, no sign, no leading zeros; length cap keeps int() cheap
            if len(text) > 2 or not _WORK_FACTOR_RE.fullmatch(text):
                raise HeaderError("scrypt work factor must be a small decimal number")
            work_factor = int(text)
            if work_factor > self.max_work_factor:
                raise HeaderError(
                    f"scrypt work factor {work_factor} exceeds the limit {self.max_work_factor}"
                )
            wrap_key = _derive(self.passphrase, salt, work_factor)
            return unwrap_file_key(wrap_key, stanza.body, _STANZA_TYPE)
        return None

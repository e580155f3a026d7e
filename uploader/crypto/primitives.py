"""Small cryptographic building blocks shared by the recipient types and the payload STREAM."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from uploader.crypto.errors import HeaderError

__all__ = [
    "FILE_KEY_SIZE",
    "TAG_SIZE",
    "hkdf_sha256",
    "unwrap_file_key",
    "wrap_file_key",
]

FILE_KEY_SIZE = 16
TAG_SIZE = 16
_ZERO_NONCE = bytes(12)


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA-256 (RFC 5869); an empty ``salt`` is the all-zero salt, as in age."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(ikm)


def wrap_file_key(wrap_key: bytes, file_key: bytes) -> bytes:
    """Encrypt the file key under a per-stanza key (ChaCha20-Poly1305, all-zero nonce)."""
    return ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)


def unwrap_file_key(wrap_key: bytes, body: bytes, stanza_type: str) -> bytes | None:
    """Decrypt a stanza body into the file key.

    Returns ``None`` when the body does not authenticate (the stanza is for someone else) and
    raises :class:`HeaderError` when the body cannot hold a file key at all.
    """
    if len(body) != FILE_KEY_SIZE + TAG_SIZE:
        raise HeaderError(f"{stanza_type} stanza body must be {FILE_KEY_SIZE + TAG_SIZE} bytes")
    try:
        return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None

"""X25519 recipients (``age1...``) and identities (``AGE-SECRET-KEY-1...``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from uploader.crypto.bech32 import bech32_decode, bech32_encode
from uploader.crypto.errors import HeaderError, InvalidIdentityError, InvalidRecipientError
from uploader.crypto.header import Stanza, b64decode_canonical, b64encode_raw
from uploader.crypto.primitives import hkdf_sha256, unwrap_file_key, wrap_file_key
from uploader.crypto.recipients import RECIPIENT_HRP, recipient_key

__all__ = ["X25519Identity", "X25519Recipient"]

_STANZA_TYPE = "X25519"
_INFO = b"age-encryption.org/v1/X25519"
_IDENTITY_HRP = "age-secret-key-"
_KEY_SIZE = 32


def _shared_secret(private: X25519PrivateKey, public: bytes) -> bytes:
    try:
        secret = private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        # OpenSSL refuses low-order points: the all-zero shared secret the spec forbids
        raise HeaderError("X25519 share is a low-order point") from None
    if secret == bytes(_KEY_SIZE):
        raise HeaderError("X25519 share is a low-order point")
    return secret


@dataclass(frozen=True, slots=True)
class X25519Recipient:
    """An age X25519 public key."""

    public_key: bytes

    def __post_init__(self) -> None:
        if len(self.public_key) != _KEY_SIZE:
            raise InvalidRecipientError("X25519 public key must be 32 bytes")

    @classmethod
    def from_string(cls, text: str) -> X25519Recipient:
        """Parse an ``age1...`` recipient string."""
        return cls(recipient_key(text))

    def to_string(self) -> str:
        """The ``age1...`` form, as printed by ``age-keygen``."""
        return bech32_encode(RECIPIENT_HRP, self.public_key)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """One ``X25519`` stanza with a fresh ephemeral share."""
        ephemeral = X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        secret = _shared_secret(ephemeral, self.public_key)
        wrap_key = hkdf_sha256(secret, share + self.public_key, _INFO)
        body = wrap_file_key(wrap_key, file_key)
        return [Stanza(_STANZA_TYPE, (b64encode_raw(share),), body)]


@dataclass(frozen=True, slots=True)
class X25519Identity:
    """An age X25519 private key. Its repr never shows the key."""

    secret_key: bytes = field(repr=False)
    _private: X25519PrivateKey = field(init=False, repr=False, compare=False)
    _public: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.secret_key) != _KEY_SIZE:
            raise InvalidIdentityError("X25519 secret key must be 32 bytes")
        private = X25519PrivateKey.from_private_bytes(self.secret_key)
        object.__setattr__(self, "_private", private)
        object.__setattr__(self, "_public", private.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> X25519Identity:
        """A new random identity."""
        return cls(X25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_string(cls, text: str) -> X25519Identity:
        """Parse an ``AGE-SECRET-KEY-1...`` string (the error never echoes the key)."""
        try:
            hrp, data = bech32_decode(text.strip())
        except ValueError as exc:
            raise InvalidIdentityError(f"malformed age identity: {exc}") from None
        if hrp != _IDENTITY_HRP or len(data) != _KEY_SIZE:
            raise InvalidIdentityError("not an X25519 age identity (expected 'AGE-SECRET-KEY-1')")
        return cls(data)

    def to_string(self) -> str:
        """The ``AGE-SECRET-KEY-1...`` form, as written by ``age-keygen``."""
        return bech32_encode(_IDENTITY_HRP, self.secret_key).upper()

    def recipient(self) -> X25519Recipient:
        """The matching public recipient."""
        return X25519Recipient(self._public)

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """Try every ``X25519`` stanza; the file key, or ``None`` if none is for us."""
        for stanza in stanzas:
            if stanza.type != _STANZA_TYPE:
                continue
            if len(stanza.args) != 1:
                raise HeaderError("X25519 stanza must have exactly one argument")
            share = b64decode_canonical(stanza.args[0], "X25519 share")
            if len(share) != _KEY_SIZE:
                raise HeaderError("X25519 share must be 32 bytes")
            secret = _shared_secret(self._private, share)
            wrap_key = hkdf_sha256(secret, share + self._public, _INFO)
            file_key = unwrap_file_key(wrap_key, stanza.body, _STANZA_TYPE)
            if file_key is not None:
                return file_key
        return None

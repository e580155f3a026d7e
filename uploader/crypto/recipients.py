"""Reading an ``age1...`` recipient string, without the cipher library: the configuration is
checked by every command, most of which never encrypt (``status``, ``backup``)."""

from __future__ import annotations

from uploader.crypto.bech32 import bech32_decode
from uploader.crypto.errors import InvalidRecipientError

__all__ = ["RECIPIENT_HRP", "recipient_key"]

RECIPIENT_HRP = "age"
_KEY_SIZE = 32


def recipient_key(text: str) -> bytes:
    """The X25519 public key of an ``age1...`` recipient; :class:`InvalidRecipientError`
    (saying what is wrong, never echoing a secret) for anything else."""
    stripped = text.strip()
    if stripped.upper().startswith("AGE-SECRET-KEY-"):
        raise InvalidRecipientError("this is a secret identity, not a recipient: use its age1 key")
    if stripped.startswith("ssh-"):
        raise InvalidRecipientError("SSH recipients are not supported: use an age1 key")
    try:
        hrp, data = bech32_decode(stripped)
    except ValueError as exc:
        raise InvalidRecipientError(f"malformed age recipient: {exc}") from None
    if hrp != RECIPIENT_HRP or len(data) != _KEY_SIZE:
        raise InvalidRecipientError("not an X25519 age recipient (expected 'age1...')")
    return data

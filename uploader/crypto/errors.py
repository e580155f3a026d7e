"""Exception types of the age implementation.

Every failure is its own subclass of :class:`AgeError`, so callers can tell a wrong key from a
damaged or truncated archive without parsing messages. Messages never contain secrets.
"""

from __future__ import annotations

__all__ = [
    "AgeError",
    "HeaderError",
    "HeaderMacError",
    "InvalidIdentityError",
    "InvalidRecipientError",
    "LegacyDecryptError",
    "NoIdentityMatchError",
    "PassphraseError",
    "PayloadError",
    "TruncatedError",
]


class AgeError(Exception):
    """Base class of every error raised by :mod:`uploader.crypto`."""


class NoIdentityMatchError(AgeError):
    """None of the given identities can unwrap the file key (wrong key or passphrase)."""


class HeaderError(AgeError):
    """The age header is malformed, unsupported or violates the specification."""


class HeaderMacError(HeaderError):
    """The header MAC does not match: the header was altered after encryption."""


class PayloadError(AgeError):
    """A payload chunk failed authentication or breaks the STREAM framing rules."""


class TruncatedError(PayloadError):
    """The payload ends before its final chunk: the file was cut short."""


class InvalidRecipientError(AgeError, ValueError):
    """A recipient string or recipient set cannot be used for encryption."""


class InvalidIdentityError(AgeError, ValueError):
    """An identity string or identity file is malformed."""


class PassphraseError(AgeError, ValueError):
    """A passphrase source is missing, unreadable or empty."""


class LegacyDecryptError(AgeError):
    """A legacy ``openssl enc`` file cannot be decrypted (wrong passphrase or damaged file)."""

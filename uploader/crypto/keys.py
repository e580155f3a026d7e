"""Key management: recipient strings, identity files, key generation, passphrase sources."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from localbackup.atomic import atomic_create
from uploader.crypto.errors import InvalidIdentityError, PassphraseError
from uploader.crypto.protocols import Identity
from uploader.crypto.recipients import recipient_key
from uploader.crypto.x25519 import X25519Identity, X25519Recipient

__all__ = [
    "generate_identity",
    "load_identities",
    "parse_recipient",
    "read_passphrase",
    "write_identity_file",
]


def parse_recipient(text: str) -> X25519Recipient:
    """Parse an ``age1...`` public key; :class:`InvalidRecipientError` for anything else."""
    return X25519Recipient(recipient_key(text))


def load_identities(path: Path | str) -> list[Identity]:
    """Read an ``age-keygen`` style identity file (``#`` comments and blank lines allowed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidIdentityError(f"cannot read identity file {path}: {exc}") from None
    identities: list[Identity] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            identities.append(X25519Identity.from_string(stripped))
        except InvalidIdentityError as exc:
            # the message never includes the line itself: it may be a secret
            raise InvalidIdentityError(f"{path}, line {number}: {exc}") from None
    if not identities:
        raise InvalidIdentityError(f"no identities found in {path}")
    return identities


def generate_identity() -> X25519Identity:
    """A new random X25519 identity."""
    return X25519Identity.generate()


def write_identity_file(path: Path | str, *, now: datetime | None = None) -> X25519Identity:
    """Generate an identity and write it like ``age-keygen -o`` (mode 0600, never overwrites).

    Raises :class:`FileExistsError` if ``path`` exists.
    """
    identity = generate_identity()
    created = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    content = (
        f"# created: {created}\n"
        f"# public key: {identity.recipient().to_string()}\n"
        f"{identity.to_string()}\n"
    ).encode("ascii")
    atomic_create(Path(path), content, 0o600)
    return identity


def _strip_newline(value: bytes) -> bytes:
    if value.endswith(b"\r\n"):
        return value[:-2]
    if value.endswith(b"\n"):
        return value[:-1]
    return value


def read_passphrase(file: Path | None = None, env: str | None = None) -> bytes:
    """Read a passphrase from a file or from the environment variable named ``env``.

    Exactly one source must be given. One trailing newline is removed. The value is never
    logged nor put in an error message.
    """
    if (file is None) == (env is None):
        raise PassphraseError("give exactly one passphrase source: a file or an env variable")
    if file is not None:
        try:
            value = _strip_newline(Path(file).read_bytes())
        except OSError as exc:
            raise PassphraseError(f"cannot read passphrase file {file}: {exc.strerror}") from None
        source = f"passphrase file {file}"
    else:
        assert env is not None
        raw = os.environb.get(env.encode())
        if raw is None:
            raise PassphraseError(f"environment variable {env} is not set")
        value = _strip_newline(raw)
        source = f"environment variable {env}"
    if not value:
        raise PassphraseError(f"{source} holds an empty passphrase")
    return value

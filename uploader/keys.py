"""The configured keys: the age recipients archives and metadata objects are encrypted to."""

from __future__ import annotations

from uploader.config import EncryptionConfig
from uploader.crypto import Recipient, ScryptRecipient, parse_recipient, read_passphrase


def recipients_for(cfg: EncryptionConfig) -> list[Recipient]:
    """The age recipients of the configuration (reads the passphrase if that is the key)."""
    cfg.require_key()
    if cfg.recipients:
        return [parse_recipient(r) for r in cfg.recipients]
    if cfg.passphrase_file is not None:
        return [ScryptRecipient(read_passphrase(file=cfg.passphrase_file))]
    return [ScryptRecipient(read_passphrase(env=cfg.passphrase_env))]

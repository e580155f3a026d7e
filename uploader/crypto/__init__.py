"""age v1 encryption (C2SP age spec) built on ``cryptography`` primitives, streaming.

Archives open with the standard tool: ``age -d -i key.txt < archive``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from localbackup.lazyfront import lazy_front

if TYPE_CHECKING:
    from uploader.crypto.decrypt import DecryptingReader, Decryptor, decrypt_file
    from uploader.crypto.encrypt import encrypt_file
    from uploader.crypto.errors import (
        AgeError,
        HeaderError,
        HeaderMacError,
        InvalidIdentityError,
        InvalidRecipientError,
        LegacyDecryptError,
        NoIdentityMatchError,
        PassphraseError,
        PayloadError,
        TruncatedError,
    )
    from uploader.crypto.header import Stanza
    from uploader.crypto.keys import (
        generate_identity,
        load_identities,
        parse_recipient,
        read_passphrase,
        write_identity_file,
    )
    from uploader.crypto.legacy import decrypt_openssl
    from uploader.crypto.protocols import Identity, Recipient
    from uploader.crypto.scrypt import ScryptIdentity, ScryptRecipient
    from uploader.crypto.state import EncryptionState, new_encryption
    from uploader.crypto.stream import (
        CHUNK_SIZE,
        ENCRYPTED_CHUNK_SIZE,
        Encryptor,
        PayloadSealer,
        chunk_offset,
        ciphertext_size,
    )
    from uploader.crypto.x25519 import X25519Identity, X25519Recipient
else:
    __getattr__ = lazy_front(
        __name__,
        {
            ".decrypt": (
                "DecryptingReader",
                "Decryptor",
                "decrypt_file",
            ),
            ".encrypt": ("encrypt_file",),
            ".errors": (
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
            ),
            ".header": ("Stanza",),
            ".keys": (
                "generate_identity",
                "load_identities",
                "parse_recipient",
                "read_passphrase",
                "write_identity_file",
            ),
            ".legacy": ("decrypt_openssl",),
            ".protocols": (
                "Identity",
                "Recipient",
            ),
            ".scrypt": (
                "ScryptIdentity",
                "ScryptRecipient",
            ),
            ".state": (
                "EncryptionState",
                "new_encryption",
            ),
            ".stream": (
                "CHUNK_SIZE",
                "ENCRYPTED_CHUNK_SIZE",
                "Encryptor",
                "PayloadSealer",
                "chunk_offset",
                "ciphertext_size",
            ),
            ".x25519": (
                "X25519Identity",
                "X25519Recipient",
            ),
        },
    )

__all__ = [
    "CHUNK_SIZE",
    "ENCRYPTED_CHUNK_SIZE",
    "AgeError",
    "DecryptingReader",
    "Decryptor",
    "EncryptionState",
    "Encryptor",
    "HeaderError",
    "HeaderMacError",
    "Identity",
    "InvalidIdentityError",
    "InvalidRecipientError",
    "LegacyDecryptError",
    "NoIdentityMatchError",
    "PassphraseError",
    "PayloadError",
    "PayloadSealer",
    "Recipient",
    "ScryptIdentity",
    "ScryptRecipient",
    "Stanza",
    "TruncatedError",
    "X25519Identity",
    "X25519Recipient",
    "chunk_offset",
    "ciphertext_size",
    "decrypt_file",
    "decrypt_openssl",
    "encrypt_file",
    "generate_identity",
    "load_identities",
    "new_encryption",
    "parse_recipient",
    "read_passphrase",
    "write_identity_file",
]

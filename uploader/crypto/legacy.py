"""Legacy archives made by ``openssl enc -aes-256-cbc -pbkdf2 -salt`` (decrypt only)."""

from __future__ import annotations

from typing import BinaryIO

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from uploader.crypto.errors import LegacyDecryptError
from uploader.crypto.stream import read_full, write_all

__all__ = ["decrypt_openssl"]

_MAGIC = b"Salted__"
_ITERATIONS = 10_000  # the default of `openssl enc -pbkdf2`
_BLOCK = 16
_READ_SIZE = 4 << 20


def decrypt_openssl(src: BinaryIO, dst: BinaryIO, passphrase: bytes) -> int:
    """Decrypt an ``openssl enc -aes-256-cbc -pbkdf2 -salt`` stream; return plaintext bytes.

    CBC is unauthenticated: a wrong passphrase shows only as bad padding at the very end (and
    goes unnoticed with probability about 1/256), after earlier plaintext was written. Write to
    a temporary file and discard it on :class:`LegacyDecryptError`.
    """
    head = src.read(16)
    if len(head) != 16 or not head.startswith(_MAGIC):
        raise LegacyDecryptError("not an 'openssl enc -salt' file (missing 'Salted__' header)")
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=48, salt=head[8:], iterations=_ITERATIONS)
    material = kdf.derive(passphrase)
    decryptor = Cipher(algorithms.AES256(material[:32]), modes.CBC(material[32:])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    buf = bytearray(_READ_SIZE)
    view = memoryview(buf)
    total_in = 0
    total_out = 0
    while n := read_full(src, view):
        total_in += n
        plain = unpadder.update(decryptor.update(view[:n]))
        write_all(dst, memoryview(plain))
        total_out += len(plain)
    if total_in == 0 or total_in % _BLOCK:
        raise LegacyDecryptError("ciphertext length is not a positive multiple of 16 bytes")
    try:
        tail = unpadder.update(decryptor.finalize()) + unpadder.finalize()
    except ValueError:
        raise LegacyDecryptError("bad padding: wrong passphrase or damaged file") from None
    write_all(dst, memoryview(tail))
    return total_out + len(tail)

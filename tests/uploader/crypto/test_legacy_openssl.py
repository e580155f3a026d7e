"""Legacy archives made by ``openssl enc -aes-256-cbc -pbkdf2 -salt``."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from uploader.crypto import LegacyDecryptError, decrypt_openssl

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")
PASSPHRASE = b"legacy passphrase"


def openssl_encrypt(tmp_path: Path, data: bytes, salt: str | None = None) -> bytes:
    assert OPENSSL is not None
    pass_file = tmp_path / "pass"
    pass_file.write_bytes(PASSPHRASE + b"\n")  # openssl reads the first line
    plain = tmp_path / "plain"
    plain.write_bytes(data)
    cmd = [OPENSSL, "enc", "-aes-256-cbc", "-pbkdf2", "-salt", "-in", str(plain)]
    cmd += ["-pass", f"file:{pass_file}"]
    if salt is None:
        return subprocess.run(cmd, capture_output=True, check=True).stdout
    # with an explicit -S, OpenSSL 3 leaves the 'Salted__' header out: add it back
    body = subprocess.run([*cmd, "-S", salt], capture_output=True, check=True).stdout
    return b"Salted__" + bytes.fromhex(salt) + body


@pytest.mark.parametrize("size", [0, 15, 16, 17, 1 << 20])
def test_decrypts_openssl_output(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    out = io.BytesIO()
    assert decrypt_openssl(io.BytesIO(openssl_encrypt(tmp_path, data)), out, PASSPHRASE) == size
    assert out.getvalue() == data


def test_wrong_passphrase_is_legacy_error(tmp_path: Path) -> None:
    # fixed salt: a wrong key passes the padding check with probability ~1/256, never here
    archive = openssl_encrypt(tmp_path, b"x" * 100, salt="0011223344556677")
    with pytest.raises(LegacyDecryptError, match="wrong passphrase"):
        decrypt_openssl(io.BytesIO(archive), io.BytesIO(), b"not the passphrase")


@pytest.mark.parametrize(
    "archive",
    [b"", b"Salted_", b"plain text file!", b"Salted__12345678" + bytes(15), b"Salted__12345678"],
)
def test_malformed_input_is_legacy_error(archive: bytes) -> None:
    with pytest.raises(LegacyDecryptError):
        decrypt_openssl(io.BytesIO(archive), io.BytesIO(), PASSPHRASE)

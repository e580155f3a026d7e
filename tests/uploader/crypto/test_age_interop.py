"""Interoperability with the reference ``age`` / ``age-keygen`` command line tools."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from uploader.crypto import (
    CHUNK_SIZE,
    ScryptIdentity,
    ScryptRecipient,
    X25519Identity,
    decrypt_file,
    encrypt_file,
    load_identities,
    parse_recipient,
    write_identity_file,
)

AGE = shutil.which("age")
AGE_KEYGEN = shutil.which("age-keygen")
pytestmark = pytest.mark.skipif(AGE is None, reason="age CLI not installed")
SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * (1 << 20) + 5]
PROMPT = re.compile(rb"passphrase[^:\n]*: ")


def age(*args: str, data: bytes = b"") -> bytes:
    assert AGE is not None
    done = subprocess.run([AGE, *args], input=data, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def age_with_passphrase(args: list[str], passphrase: bytes, timeout: float = 30.0) -> None:
    """Run ``age`` on a pseudo-terminal and type ``passphrase`` at each prompt.

    age reads passphrases only from the terminal; this keeps them off the command line and out
    of the environment.
    """
    assert AGE is not None
    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is its controlling terminal
        os.execv(AGE, [AGE, *args])
    transcript = bytearray()
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(fd, 1024)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            transcript += data
            while len(PROMPT.findall(transcript)) > answered:
                os.write(fd, passphrase + b"\n")
                answered += 1
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    output = bytes(transcript).replace(passphrase, b"<redacted>").decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert answered >= 1, output


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "identity.txt"
    write_identity_file(path)
    return path


@pytest.mark.parametrize("size", SIZES)
def test_ours_to_age_cli(size: int, key_file: Path) -> None:
    data = os.urandom(size)
    archive = io.BytesIO()
    identity = load_identities(key_file)[0]
    assert isinstance(identity, X25519Identity)
    encrypt_file(io.BytesIO(data), archive, [identity.recipient()])
    assert age("-d", "-i", str(key_file), data=archive.getvalue()) == data


@pytest.mark.parametrize("size", SIZES)
def test_age_cli_to_ours(size: int, key_file: Path) -> None:
    data = os.urandom(size)
    recipient = load_identities(key_file)[0]
    assert isinstance(recipient, X25519Identity)
    archive = age("-e", "-r", recipient.recipient().to_string(), data=data)
    out = io.BytesIO()
    assert decrypt_file(io.BytesIO(archive), out, load_identities(key_file)) == size
    assert out.getvalue() == data


def test_multiple_recipients_both_directions(tmp_path: Path) -> None:
    keys = [tmp_path / f"k{i}.txt" for i in range(3)]
    identities = [write_identity_file(k) for k in keys]
    recipients = [i.recipient() for i in identities]
    data = os.urandom(2 * CHUNK_SIZE + 3)
    ours = io.BytesIO()
    encrypt_file(io.BytesIO(data), ours, recipients)
    for key in keys:
        assert age("-d", "-i", str(key), data=ours.getvalue()) == data
    args = [arg for r in recipients for arg in ("-r", r.to_string())]
    theirs = age("-e", *args, data=data)
    for identity in identities:
        out = io.BytesIO()
        decrypt_file(io.BytesIO(theirs), out, [identity])
        assert out.getvalue() == data


@pytest.mark.skipif(AGE_KEYGEN is None, reason="age-keygen not installed")
def test_keys_interoperate_with_age_keygen(tmp_path: Path) -> None:
    assert AGE_KEYGEN is not None
    ours = tmp_path / "ours.txt"
    identity = write_identity_file(ours)
    derived = subprocess.run(
        [AGE_KEYGEN, "-y", str(ours)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert derived == identity.recipient().to_string()
    theirs = tmp_path / "theirs.txt"
    subprocess.run([AGE_KEYGEN, "-o", str(theirs)], capture_output=True, check=True)
    public = next(
        line.split(": ", 1)[1]
        for line in theirs.read_text().splitlines()
        if line.startswith("# public key: ")
    )
    loaded = load_identities(theirs)[0]
    assert isinstance(loaded, X25519Identity)
    assert loaded.recipient() == parse_recipient(public)


def test_passphrase_ours_to_age_cli(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE + 9)
    archive, out = tmp_path / "p.age", tmp_path / "p.out"
    passphrase = b"correct horse battery staple"
    with archive.open("wb") as dst:
        encrypt_file(io.BytesIO(data), dst, [ScryptRecipient(passphrase, work_factor=10)])
    age_with_passphrase(["-d", "-o", str(out), str(archive)], passphrase)
    assert out.read_bytes() == data


def test_passphrase_age_cli_to_ours(tmp_path: Path) -> None:
    data = os.urandom(1000)
    plain, archive = tmp_path / "p.bin", tmp_path / "p.age"
    plain.write_bytes(data)
    passphrase = b"another passphrase"
    age_with_passphrase(["-p", "-o", str(archive), str(plain)], passphrase)  # work factor 18
    out = io.BytesIO()
    with archive.open("rb") as src:
        decrypt_file(src, out, [ScryptIdentity(passphrase)])
    assert out.getvalue() == data


def test_decrypts_streaming_from_a_pipe(key_file: Path, tmp_path: Path) -> None:
    assert AGE is not None
    data = os.urandom(5 * (1 << 20) + 17)
    plain = tmp_path / "plain.bin"
    plain.write_bytes(data)
    identity = load_identities(key_file)[0]
    assert isinstance(identity, X25519Identity)
    cmd = [AGE, "-e", "-r", identity.recipient().to_string(), str(plain)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        out = io.BytesIO()
        assert decrypt_file(proc.stdout, out, [identity]) == len(data)
    assert proc.returncode == 0
    assert out.getvalue() == data

"""Key strings, identity files, passphrase sources and header strictness."""

from __future__ import annotations

import io
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from uploader.crypto import (
    HeaderError,
    InvalidIdentityError,
    InvalidRecipientError,
    PassphraseError,
    ScryptIdentity,
    ScryptRecipient,
    Stanza,
    X25519Identity,
    X25519Recipient,
    generate_identity,
    load_identities,
    parse_recipient,
    read_passphrase,
    write_identity_file,
)
from uploader.crypto.bech32 import bech32_decode, bech32_encode
from uploader.crypto.header import format_header, read_header

# from the C2SP age test vectors
KNOWN_IDENTITY = "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"


def test_generated_identity_strings_round_trip() -> None:
    identity = generate_identity()
    text = identity.to_string()
    assert text.startswith("AGE-SECRET-KEY-1") and text == text.upper()
    assert X25519Identity.from_string(text) == identity
    recipient = identity.recipient().to_string()
    assert recipient.startswith("age1") and len(recipient) == 62
    assert parse_recipient(recipient) == identity.recipient()


def test_secret_never_in_repr() -> None:
    identity = X25519Identity.from_string(KNOWN_IDENTITY)
    assert KNOWN_IDENTITY not in repr(identity)
    assert identity.secret_key.hex() not in repr(identity)
    assert "hunter2" not in repr(ScryptIdentity(b"hunter2"))
    assert "hunter2" not in repr(ScryptRecipient(b"hunter2", work_factor=4))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "malformed"),
        ("age1notbech32", "malformed"),
        (KNOWN_IDENTITY, "secret identity"),
        ("ssh-ed25519 AAAAC3Nza", "SSH"),
        (bech32_encode("age", bytes(31)), "not an X25519"),
        (bech32_encode("agex", bytes(32)), "not an X25519"),
    ],
)
def test_parse_recipient_rejects_with_clear_message(text: str, message: str) -> None:
    with pytest.raises(InvalidRecipientError, match=message):
        parse_recipient(text)


def test_bech32_rejects_bad_checksum_and_mixed_case() -> None:
    good = bech32_encode("age", bytes(range(32)))
    assert bech32_decode(good.upper()) == ("age", bytes(range(32)))
    bad = good[:-1] + ("q" if good[-1] != "q" else "p")
    with pytest.raises(ValueError, match="checksum"):
        bech32_decode(bad)
    with pytest.raises(ValueError, match="mixed case"):
        bech32_decode(good[:5] + good[5:].upper())


def test_write_identity_file_layout_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "identity.txt"
    now = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)
    identity = write_identity_file(path, now=now)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().splitlines() == [
        "# created: 2026-11-26T08:30:00Z",
        f"# public key: {identity.recipient().to_string()}",
        identity.to_string(),
    ]
    assert load_identities(path) == [identity]


def test_write_identity_file_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "identity.txt"
    path.write_text("precious")
    with pytest.raises(FileExistsError):
        write_identity_file(path)
    assert path.read_text() == "precious"


def test_load_identities_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    other = generate_identity()
    path = tmp_path / "ids.txt"
    path.write_text(f"# comment\n\n{KNOWN_IDENTITY}\n   \n# more\n{other.to_string()}\n")
    loaded = load_identities(path)
    assert loaded == [X25519Identity.from_string(KNOWN_IDENTITY), other]


def test_load_identities_errors_do_not_echo_the_line(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    broken = KNOWN_IDENTITY[:-1] + "X"
    path.write_text(f"# comment\n{broken}\n")
    with pytest.raises(InvalidIdentityError, match="line 2") as info:
        load_identities(path)
    assert broken not in str(info.value)
    path.write_text("# only comments\n")
    with pytest.raises(InvalidIdentityError, match="no identities"):
        load_identities(path)
    with pytest.raises(InvalidIdentityError, match="cannot read"):
        load_identities(tmp_path / "missing.txt")


def test_read_passphrase_from_file_strips_one_newline(tmp_path: Path) -> None:
    path = tmp_path / "pass"
    path.write_bytes(b"two words\n\n")
    assert read_passphrase(file=path) == b"two words\n"
    path.write_bytes(b"crlf\r\n")
    assert read_passphrase(file=path) == b"crlf"
    path.write_bytes(b"\n")
    with pytest.raises(PassphraseError, match="empty") as info:
        read_passphrase(file=path)
    with pytest.raises(PassphraseError, match="cannot read"):
        read_passphrase(file=tmp_path / "missing")
    assert "two words" not in str(info.value)


def test_read_passphrase_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GBS_TEST_PASSPHRASE", "s3cret\n")
    assert read_passphrase(env="GBS_TEST_PASSPHRASE") == b"s3cret"
    monkeypatch.setenv("GBS_TEST_PASSPHRASE", "")
    with pytest.raises(PassphraseError, match="empty"):
        read_passphrase(env="GBS_TEST_PASSPHRASE")
    monkeypatch.delenv("GBS_TEST_PASSPHRASE")
    with pytest.raises(PassphraseError, match="not set"):
        read_passphrase(env="GBS_TEST_PASSPHRASE")
    with pytest.raises(PassphraseError, match="exactly one"):
        read_passphrase()


def test_empty_passphrase_refused() -> None:
    with pytest.raises(PassphraseError):
        ScryptRecipient(b"")
    with pytest.raises(PassphraseError):
        ScryptIdentity(b"")


def test_header_wraps_body_at_64_columns_with_short_last_line() -> None:
    key = bytes(16)
    for size in (0, 47, 48, 96):  # 48 bytes = exactly 64 base64 columns
        header = format_header([Stanza("test", ("a",), bytes(size))], key)
        parsed, rest = read_header(io.BytesIO(header + b"payload"))
        assert parsed.stanzas == (Stanza("test", ("a",), bytes(size)),)
        assert parsed.raw == header and rest == b"payload"
        body_lines = header.split(b"\n")[2:-2]
        assert all(len(line) == 64 for line in body_lines[:-1])
        assert len(body_lines[-1]) < 64


@pytest.mark.parametrize(
    "raw",
    [
        b"age-encryption.org/v2\n",
        b"Salted__12345678",
        b"-----BEGIN AGE ENCRYPTED FILE-----\n",
        b"age-encryption.org/v1\n-> X25519\n" + b"A" * 2_000_000,
    ],
)
def test_header_reader_fails_fast_on_foreign_or_huge_input(raw: bytes) -> None:
    with pytest.raises(HeaderError):
        read_header(io.BytesIO(raw))


def test_recipient_key_length_checked() -> None:
    with pytest.raises(InvalidRecipientError):
        X25519Recipient(bytes(31))
    with pytest.raises(InvalidIdentityError):
        X25519Identity(bytes(31))

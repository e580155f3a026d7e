"""Round trips, incremental encryption, resumable sealing and tamper detection."""

from __future__ import annotations

import io
import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uploader.crypto import (
    CHUNK_SIZE,
    ENCRYPTED_CHUNK_SIZE,
    AgeError,
    DecryptingReader,
    Decryptor,
    EncryptionState,
    Encryptor,
    HeaderError,
    HeaderMacError,
    InvalidRecipientError,
    NoIdentityMatchError,
    PayloadError,
    PayloadSealer,
    ScryptIdentity,
    ScryptRecipient,
    TruncatedError,
    X25519Identity,
    chunk_offset,
    ciphertext_size,
    decrypt_file,
    encrypt_file,
    new_encryption,
)

IDENTITY = X25519Identity.generate()
RECIPIENT = IDENTITY.recipient()
BOUNDARY_SIZES = [
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    2 * CHUNK_SIZE,
    3 * CHUNK_SIZE + 7,
]


def encrypt_bytes(data: bytes, state: EncryptionState | None = None) -> bytes:
    encryptor = Encryptor(state or new_encryption([RECIPIENT]))
    return encryptor.prefix() + encryptor.update(data) + encryptor.finish()


def decrypt_released(archive: bytes, read_size: int = 1 << 20) -> tuple[bytes, AgeError | None]:
    """All plaintext the reader hands out, and the error that stopped it (if any)."""
    released = bytearray()
    try:
        with Decryptor([IDENTITY]).open(io.BytesIO(archive)) as reader:
            while chunk := reader.read(read_size):
                released += chunk
    except AgeError as exc:
        return bytes(released), exc
    return bytes(released), None


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_encrypt_file_round_trip_at_chunk_boundaries(size: int) -> None:
    data = os.urandom(size)
    archive = io.BytesIO()
    written = encrypt_file(io.BytesIO(data), archive, [RECIPIENT], batch_chunks=2)
    assert written == len(archive.getvalue())
    header_len = archive.getvalue().index(b"\n---") + len("\n--- ") + 43 + 1
    assert written == ciphertext_size(size, header_len + 16)
    out = io.BytesIO()
    assert decrypt_file(io.BytesIO(archive.getvalue()), out, [IDENTITY]) == size
    assert out.getvalue() == data


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_ciphertext_size_is_exact(size: int) -> None:
    state = new_encryption([RECIPIENT])
    assert len(encrypt_bytes(os.urandom(size), state)) == ciphertext_size(size, len(state.prefix))


def test_last_chunk_full_rule_and_empty_payload() -> None:
    state = new_encryption([RECIPIENT])
    empty = encrypt_bytes(b"", state)
    assert len(empty) == len(state.prefix) + 16  # one empty final chunk
    one_full = encrypt_bytes(bytes(CHUNK_SIZE), state)
    assert len(one_full) == len(state.prefix) + ENCRYPTED_CHUNK_SIZE  # full, and final
    assert decrypt_released(empty) == (b"", None)
    assert decrypt_released(one_full) == (bytes(CHUNK_SIZE), None)


@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=3 * CHUNK_SIZE + 100),
    splits=st.lists(st.integers(min_value=0, max_value=3 * CHUNK_SIZE + 100), max_size=8),
    read_sizes=st.lists(st.integers(min_value=1, max_value=2 * CHUNK_SIZE), min_size=1, max_size=6),
    batch=st.integers(min_value=1, max_value=3),
)
def test_random_pieces_and_read_sizes_round_trip(
    data: bytes, splits: list[int], read_sizes: list[int], batch: int
) -> None:
    state = new_encryption([RECIPIENT])
    reference = encrypt_bytes(data, state)
    encryptor = Encryptor(state)
    pieces = [encryptor.prefix()]
    bounds = sorted({0, len(data), *(min(s, len(data)) for s in splits)})
    for start, end in itertools.pairwise(bounds):
        out = encryptor.update(memoryview(data)[start:end])
        assert len(out) % ENCRYPTED_CHUNK_SIZE == 0  # only complete chunks come out early
        pieces.append(out)
    pieces.append(encryptor.finish())
    assert b"".join(pieces) == reference  # deterministic for a given state
    reader = Decryptor([IDENTITY]).open(io.BytesIO(reference), batch_chunks=batch)
    received = bytearray()
    turn = 0
    while True:
        size = read_sizes[turn % len(read_sizes)]
        turn += 1
        if turn % 2:
            chunk = reader.read(size)
        else:
            buf = bytearray(size)
            chunk = bytes(buf[: reader.readinto(buf)])
        if not chunk:
            break
        received += chunk
    assert bytes(received) == data


def test_reader_works_under_buffered_reader() -> None:
    data = b"line\n" * 50_000
    reader = Decryptor([IDENTITY]).open(io.BytesIO(encrypt_bytes(data)))
    buffered = io.BufferedReader(reader)
    assert buffered.readline() == b"line\n"
    assert buffered.read() == data[5:]


def test_sealer_regenerates_identical_chunks_from_saved_state() -> None:
    data = os.urandom(4 * CHUNK_SIZE + 123)
    state = new_encryption([RECIPIENT])
    archive = encrypt_bytes(data, state)
    restored = EncryptionState.from_json(state.to_json())
    assert restored == state
    sealer = PayloadSealer(restored)
    count = 5
    for k in reversed(range(count)):  # any order
        plain = data[k * CHUNK_SIZE : (k + 1) * CHUNK_SIZE]
        start = chunk_offset(k, len(state.prefix))
        expected = archive[start : start + len(plain) + 16]
        assert sealer.seal_chunk(k, plain, final=k == count - 1) == expected


def test_sealer_rejects_invalid_chunks() -> None:
    sealer = PayloadSealer(new_encryption([RECIPIENT]))
    with pytest.raises(ValueError, match="final chunk"):
        sealer.seal_chunk(0, b"short", final=False)
    with pytest.raises(ValueError, match="empty"):
        sealer.seal_chunk(3, b"", final=True)
    with pytest.raises(ValueError, match="at most"):
        sealer.seal_chunk(0, bytes(CHUNK_SIZE + 1), final=True)
    assert len(sealer.seal_chunk(0, b"", final=True)) == 16


def test_state_json_round_trip_and_validation() -> None:
    state = new_encryption([RECIPIENT])
    assert EncryptionState.from_json(state.to_json()).prefix == state.prefix
    assert state.file_key.hex() not in repr(state)
    with pytest.raises(ValueError, match="not a saved encryption state"):
        EncryptionState.from_json("{}")
    with pytest.raises(ValueError):
        EncryptionState.from_json(state.to_json().replace('"version": 1', '"version": 2'))


@pytest.mark.parametrize("start", [0, 1, 3])
def test_open_payload_decrypts_from_any_chunk(start: int) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 10)
    archive = io.BytesIO(encrypt_bytes(data))
    state = Decryptor([IDENTITY]).open(archive).state
    archive.seek(chunk_offset(start, len(state.prefix)))
    reader = Decryptor.open_payload(archive, state, start)
    assert reader.read() == data[start * CHUNK_SIZE :]


def test_scrypt_recipient_round_trip_and_wrong_passphrase() -> None:
    archive = io.BytesIO()
    encrypt_file(io.BytesIO(b"secret"), archive, [ScryptRecipient(b"pass", work_factor=4)])
    out = io.BytesIO()
    decrypt_file(io.BytesIO(archive.getvalue()), out, [ScryptIdentity(b"pass")])
    assert out.getvalue() == b"secret"
    with pytest.raises(NoIdentityMatchError):
        decrypt_file(io.BytesIO(archive.getvalue()), io.BytesIO(), [ScryptIdentity(b"nope")])
    with pytest.raises(NoIdentityMatchError):
        decrypt_file(io.BytesIO(archive.getvalue()), io.BytesIO(), [IDENTITY])


def test_scrypt_recipient_must_be_alone() -> None:
    with pytest.raises(InvalidRecipientError, match="only recipient"):
        new_encryption([ScryptRecipient(b"pass", work_factor=4), RECIPIENT])
    with pytest.raises(InvalidRecipientError):
        new_encryption([])


def test_scrypt_work_factor_above_identity_limit_is_a_header_error() -> None:
    archive = io.BytesIO()
    encrypt_file(io.BytesIO(b"x"), archive, [ScryptRecipient(b"pass", work_factor=5)])
    with pytest.raises(HeaderError, match="work factor"):
        decrypt_file(io.BytesIO(archive.getvalue()), io.BytesIO(), [ScryptIdentity(b"pass", 4)])


def test_multiple_recipients_each_decrypt() -> None:
    others = [X25519Identity.generate() for _ in range(3)]
    archive = io.BytesIO()
    encrypt_file(io.BytesIO(b"shared"), archive, [i.recipient() for i in others])
    for identity in others:
        out = io.BytesIO()
        decrypt_file(io.BytesIO(archive.getvalue()), out, [IDENTITY, identity])
        assert out.getvalue() == b"shared"


def test_wrong_identity_is_no_match() -> None:
    with pytest.raises(NoIdentityMatchError, match="no identity matches"):
        Decryptor([X25519Identity.generate()]).open(io.BytesIO(encrypt_bytes(b"data")))


# --- tampering -------------------------------------------------------------------------------

DATA = os.urandom(3 * CHUNK_SIZE + 500)
STATE = new_encryption([RECIPIENT])
ARCHIVE = encrypt_bytes(DATA, STATE)
HEADER_LEN = len(STATE.header)
PAYLOAD_START = len(STATE.prefix)


def flip(archive: bytes, position: int, bit: int = 0) -> bytes:
    tampered = bytearray(archive)
    tampered[position] ^= 1 << bit
    return bytes(tampered)


@settings(max_examples=60, deadline=None)
@given(position=st.integers(0, HEADER_LEN - 1), bit=st.integers(0, 7))
def test_any_header_bit_flip_is_rejected_before_any_plaintext(position: int, bit: int) -> None:
    released, error = decrypt_released(flip(ARCHIVE, position, bit))
    assert isinstance(error, HeaderError | NoIdentityMatchError)
    assert released == b""


def test_mac_change_is_a_mac_error() -> None:
    mac_start = ARCHIVE.index(b"\n--- ") + 5
    replacement = b"A" if ARCHIVE[mac_start : mac_start + 1] != b"A" else b"B"
    tampered = ARCHIVE[:mac_start] + replacement + ARCHIVE[mac_start + 1 :]
    released, error = decrypt_released(tampered)
    assert isinstance(error, HeaderMacError)
    assert released == b""


def test_extra_stanza_breaks_the_mac() -> None:
    at = STATE.header.index(b"\n---") + 1
    tampered = ARCHIVE[:at] + b"-> grease\n\n" + ARCHIVE[at:]
    assert isinstance(decrypt_released(tampered)[1], HeaderMacError)


@settings(max_examples=60, deadline=None)
@given(position=st.integers(PAYLOAD_START - 16, len(ARCHIVE) - 1), bit=st.integers(0, 7))
def test_payload_bit_flip_releases_only_chunks_before_it(position: int, bit: int) -> None:
    released, error = decrypt_released(flip(ARCHIVE, position, bit), read_size=7777)
    assert isinstance(error, PayloadError)
    bad_chunk = max(0, (position - PAYLOAD_START) // ENCRYPTED_CHUNK_SIZE)
    assert released == DATA[: bad_chunk * CHUNK_SIZE]


@pytest.mark.parametrize("chunk", [0, 1, 3])
def test_tag_flip_is_payload_error(chunk: int) -> None:
    end = min(len(ARCHIVE), chunk_offset(chunk + 1, PAYLOAD_START))
    released, error = decrypt_released(flip(ARCHIVE, end - 1))
    assert isinstance(error, PayloadError) and not isinstance(error, TruncatedError)
    assert released == DATA[: chunk * CHUNK_SIZE]


@pytest.mark.parametrize("chunks_kept", [0, 1, 2, 3])
def test_truncation_at_chunk_boundary_is_truncated_error(chunks_kept: int) -> None:
    cut = ARCHIVE[: chunk_offset(chunks_kept, PAYLOAD_START)]
    released, error = decrypt_released(cut)
    assert isinstance(error, TruncatedError)
    assert released == DATA[: chunks_kept * CHUNK_SIZE]


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(PAYLOAD_START, len(ARCHIVE) - 1))
def test_any_truncation_is_payload_error_without_unverified_plaintext(cut: int) -> None:
    released, error = decrypt_released(ARCHIVE[:cut], read_size=5000)
    assert isinstance(error, PayloadError)
    assert len(released) % CHUNK_SIZE == 0
    assert released == DATA[: len(released)]


def test_truncated_header_or_nonce_is_header_error() -> None:
    for cut in (0, 10, HEADER_LEN - 5, HEADER_LEN, HEADER_LEN + 15):
        released, error = decrypt_released(ARCHIVE[:cut])
        assert isinstance(error, HeaderError), cut
        assert released == b""


def test_swapped_chunks_are_rejected() -> None:
    first, second = (
        ARCHIVE[chunk_offset(k, PAYLOAD_START) :][:ENCRYPTED_CHUNK_SIZE] for k in (0, 1)
    )
    swapped = ARCHIVE[:PAYLOAD_START] + second + first + ARCHIVE[chunk_offset(2, PAYLOAD_START) :]
    released, error = decrypt_released(swapped)
    assert isinstance(error, PayloadError)
    assert released == b""


def test_dropped_middle_chunk_is_rejected() -> None:
    dropped = ARCHIVE[: chunk_offset(1, PAYLOAD_START)] + ARCHIVE[chunk_offset(2, PAYLOAD_START) :]
    released, error = decrypt_released(dropped)
    assert isinstance(error, PayloadError)
    assert released == DATA[:CHUNK_SIZE]


@pytest.mark.parametrize("extra", [b"x", bytes(100), bytes(ENCRYPTED_CHUNK_SIZE)])
def test_trailing_data_is_rejected(extra: bytes) -> None:
    _, error = decrypt_released(ARCHIVE + extra)
    assert isinstance(error, PayloadError)


def test_trailing_data_after_full_final_chunk_releases_the_verified_plaintext() -> None:
    data = os.urandom(CHUNK_SIZE)
    released, error = decrypt_released(encrypt_bytes(data) + b"garbage")
    assert isinstance(error, PayloadError)
    assert "trailing data" in str(error)
    assert released == data


def test_error_repeats_after_failure() -> None:
    reader = Decryptor([IDENTITY]).open(io.BytesIO(ARCHIVE[: chunk_offset(1, PAYLOAD_START)]))
    assert isinstance(reader, DecryptingReader)
    assert reader.read(CHUNK_SIZE) == DATA[:CHUNK_SIZE]
    for _ in range(2):
        with pytest.raises(TruncatedError):
            reader.read(1)

"""The payload: STREAM of ChaCha20-Poly1305 chunks (64 KiB plaintext each)."""

from __future__ import annotations

from typing import Any, BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from uploader.crypto.primitives import TAG_SIZE, hkdf_sha256
from uploader.crypto.state import NONCE_SIZE, EncryptionState

__all__ = [
    "CHUNK_SIZE",
    "ENCRYPTED_CHUNK_SIZE",
    "Encryptor",
    "PayloadSealer",
    "chunk_count",
    "chunk_nonce",
    "chunk_offset",
    "ciphertext_size",
    "payload_aead",
    "read_full",
    "write_all",
]

CHUNK_SIZE = 65536
ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
_MAX_INDEX = (1 << 88) - 1
_FINAL = b"\x01"
_NOT_FINAL = b"\x00"


def payload_aead(file_key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    """The AEAD keyed with the payload key HKDF(file key, salt=nonce, info="payload")."""
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"payload nonce must be {NONCE_SIZE} bytes")
    return ChaCha20Poly1305(hkdf_sha256(file_key, nonce, b"payload"))


def chunk_nonce(index: int, final: bool) -> bytes:
    """11-byte big-endian chunk counter followed by the final-chunk flag."""
    if not 0 <= index < _MAX_INDEX:
        raise ValueError("chunk index out of range")
    return index.to_bytes(11, "big") + (_FINAL if final else _NOT_FINAL)


def chunk_count(plaintext_size: int) -> int:
    """Number of chunks for a payload; the empty payload still has one (empty) chunk."""
    if plaintext_size < 0:
        raise ValueError("plaintext size must not be negative")
    return max(1, -(-plaintext_size // CHUNK_SIZE))


def ciphertext_size(plaintext_size: int, prefix_len: int) -> int:
    """Exact size of an archive: prefix (header + nonce), plaintext and one tag per chunk."""
    return prefix_len + plaintext_size + TAG_SIZE * chunk_count(plaintext_size)


def chunk_offset(index: int, prefix_len: int) -> int:
    """Offset in the archive where ciphertext chunk ``index`` starts."""
    return prefix_len + index * ENCRYPTED_CHUNK_SIZE


def read_full(src: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``src`` unless EOF comes first; return the number of bytes read."""
    readinto: Any = getattr(src, "readinto", None)
    filled = 0
    while filled < len(view):
        if readinto is not None:
            n = readinto(view[filled:])
            if n is None:
                raise BlockingIOError("non-blocking source returned no data")
        else:
            block = src.read(len(view) - filled)
            n = len(block)
            view[filled : filled + n] = block
        if not n:
            break
        filled += n
    return filled


def write_all(dst: BinaryIO, view: memoryview) -> None:
    """Write all of ``view``, looping over short writes of raw files."""
    while view:
        n = dst.write(view)
        if n is None:  # non-blocking raw stream: treat as an error rather than spin
            raise BlockingIOError("non-blocking destination accepted no data")
        view = view[n:]


class PayloadSealer:
    """Pure chunk encryption for one archive: the same inputs always give the same bytes.

    Any chunk can be sealed in any order, so an interrupted upload can regenerate exactly the
    ciphertext of any part from the saved :class:`EncryptionState`.
    """

    __slots__ = ("_aead",)

    def __init__(self, state: EncryptionState) -> None:
        self._aead = payload_aead(state.file_key, state.nonce)

    @staticmethod
    def _check(index: int, size: int, final: bool) -> None:
        if size > CHUNK_SIZE:
            raise ValueError(f"a chunk holds at most {CHUNK_SIZE} bytes")
        if not final and size != CHUNK_SIZE:
            raise ValueError("only the final chunk may be shorter than CHUNK_SIZE")
        if final and size == 0 and index != 0:
            raise ValueError("the final chunk may be empty only for an empty payload")

    def seal_chunk(self, index: int, plaintext: bytes, final: bool) -> bytes:
        """Encrypt chunk ``index`` (ciphertext and tag)."""
        self._check(index, len(plaintext), final)
        return self._aead.encrypt(chunk_nonce(index, final), plaintext, None)

    def seal_into(self, first_index: int, data: memoryview, out: memoryview, final: bool) -> int:
        """Encrypt ``data`` as consecutive chunks into ``out``; return the bytes written.

        ``data`` must be whole chunks unless ``final``, in which case its last chunk is
        sealed as the final one (``data`` may then be empty only when ``first_index`` is 0).
        """
        count = chunk_count(len(data)) if final else len(data) // CHUNK_SIZE
        if not final and len(data) != count * CHUNK_SIZE:
            raise ValueError("non-final data must be whole chunks")
        aead = self._aead
        written = 0
        for k in range(count):
            piece = data[k * CHUNK_SIZE : (k + 1) * CHUNK_SIZE]
            last = final and k == count - 1
            self._check(first_index + k, len(piece), last)
            end = written + len(piece) + TAG_SIZE
            aead.encrypt_into(chunk_nonce(first_index + k, last), piece, None, out[written:end])
            written = end
        return written


class Encryptor:
    """Incremental encryption: feed any pieces, receive ciphertext for complete chunks.

    Write :meth:`prefix` first, then every :meth:`update` result, then :meth:`finish`.
    A full chunk is held back until more data arrives, because the last chunk of the payload
    carries the final flag even when it is full.
    """

    def __init__(self, state: EncryptionState) -> None:
        self._state = state
        self._sealer = PayloadSealer(state)
        self._pending = bytearray()
        self._index = 0
        self._finished = False

    def prefix(self) -> bytes:
        """Header and payload nonce: the first bytes of the archive."""
        return self._state.prefix

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Add plaintext; return the ciphertext of every chunk now known not to be the last."""
        if self._finished:
            raise ValueError("Encryptor already finished")
        view = memoryview(data).cast("B")
        total = len(self._pending) + len(view)
        if total <= CHUNK_SIZE:
            self._pending += view
            return b""
        count = (total - 1) // CHUNK_SIZE  # leave 1..CHUNK_SIZE bytes pending
        out = bytearray(count * ENCRYPTED_CHUNK_SIZE)
        out_view = memoryview(out)
        used = 0
        written = 0
        if self._pending:
            used = CHUNK_SIZE - len(self._pending)
            self._pending += view[:used]
            with memoryview(self._pending) as pending:
                written = self._sealer.seal_into(self._index, pending, out_view, final=False)
            self._index += 1
            count -= 1
            self._pending.clear()
        direct = view[used : used + count * CHUNK_SIZE]
        self._sealer.seal_into(self._index, direct, out_view[written:], final=False)
        self._index += count
        self._pending += view[used + count * CHUNK_SIZE :]
        return bytes(out)

    def finish(self) -> bytes:
        """Seal the final chunk (possibly empty, for an empty payload) and return it."""
        if self._finished:
            raise ValueError("Encryptor already finished")
        self._finished = True
        out = bytearray(len(self._pending) + TAG_SIZE)
        with memoryview(self._pending) as pending:
            self._sealer.seal_into(self._index, pending, memoryview(out), final=True)
        self._pending.clear()
        return bytes(out)

"""Decryption: header unwrapping and a streaming, authenticate-before-release reader."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, BinaryIO

from cryptography.exceptions import InvalidTag

from uploader.crypto.errors import (
    AgeError,
    HeaderError,
    InvalidIdentityError,
    NoIdentityMatchError,
    PayloadError,
    TruncatedError,
)
from uploader.crypto.header import Header, read_header, verify_header_mac
from uploader.crypto.primitives import TAG_SIZE
from uploader.crypto.protocols import Identity
from uploader.crypto.state import NONCE_SIZE, EncryptionState
from uploader.crypto.stream import (
    CHUNK_SIZE,
    ENCRYPTED_CHUNK_SIZE,
    chunk_nonce,
    payload_aead,
    read_full,
    write_all,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["DEFAULT_BATCH_CHUNKS", "DecryptingReader", "Decryptor", "decrypt_file"]

DEFAULT_BATCH_CHUNKS = 64  # 4 MiB of ciphertext per read


class DecryptingReader(io.RawIOBase):
    """Readable plaintext of one archive.

    Ciphertext is read and authenticated many chunks at a time; plaintext of a chunk is only
    handed out after its tag verified. On failure, plaintext of the chunks that did verify is
    still delivered, then every further read raises the error.
    The source stream is not closed by :meth:`close`; it belongs to the caller.
    """

    def __init__(
        self,
        src: BinaryIO,
        state: EncryptionState,
        *,
        first_chunk: int = 0,
        initial: bytes = b"",
        batch_chunks: int = DEFAULT_BATCH_CHUNKS,
    ) -> None:
        super().__init__()
        if batch_chunks < 1:
            raise ValueError("batch_chunks must be positive")
        self.state = state
        self._src = src
        self._aead = payload_aead(state.file_key, state.nonce)
        self._index = first_chunk
        self._cbuf = bytearray((batch_chunks + 1) * ENCRYPTED_CHUNK_SIZE)
        if len(initial) > len(self._cbuf):
            raise ValueError("initial data larger than the read buffer")
        self._cbuf[: len(initial)] = initial
        self._clen = len(initial)
        self._pbuf = bytearray((batch_chunks + 1) * CHUNK_SIZE)
        self._out = memoryview(self._pbuf)[:0]
        self._eof = False
        self._done = False
        self._error: AgeError | None = None

    def readable(self) -> bool:
        """Always: this is a reader."""
        return True

    def _next_view(self, limit: int) -> memoryview:
        """Up to ``limit`` bytes of verified plaintext, valid until the next call; empty at end."""
        while not self._out:
            if self._error is not None:
                raise self._error
            if self._done:
                return self._out
            self._fill()
        view = self._out[:limit]
        self._out = self._out[limit:]
        return view

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        """Fill ``buffer`` with authenticated plaintext; 0 at the end."""
        target = memoryview(buffer).cast("B")
        view = self._next_view(len(target))
        target[: len(view)] = view
        return len(view)

    def read(self, size: int | None = -1, /) -> bytes:
        """Up to ``size`` bytes of authenticated plaintext (all of it when negative or None)."""
        if size is None or size < 0:
            return self.readall()
        return bytes(self._next_view(size))

    def readall(self) -> bytes:
        """The rest of the plaintext, authenticated."""
        parts = []
        while chunk := self._next_view(len(self._pbuf)):
            parts.append(bytes(chunk))
        return b"".join(parts)

    def _fill(self) -> None:
        """Read ciphertext and decrypt as many chunks as can be decided."""
        cbuf = memoryview(self._cbuf)
        if not self._eof:
            got = read_full(self._src, cbuf[self._clen :])
            self._clen += got
            self._eof = self._clen < len(cbuf)
        pos = 0
        produced = 0
        pbuf = memoryview(self._pbuf)
        while not self._done and self._error is None:
            remaining = self._clen - pos
            if remaining > ENCRYPTED_CHUNK_SIZE:  # a full chunk with data after it
                size = self._open(cbuf[pos : pos + ENCRYPTED_CHUNK_SIZE], pbuf[produced:], False)
                if size < 0:
                    size = self._open(cbuf[pos : pos + ENCRYPTED_CHUNK_SIZE], pbuf[produced:], True)
                    if size < 0:
                        self._error = PayloadError(
                            f"payload chunk {self._index} failed authentication (tampered)"
                        )
                        break
                    self._error = PayloadError("trailing data after the final payload chunk")
            elif not self._eof:
                break  # need more data to know whether this chunk is the last
            else:
                size = self._open_last(cbuf[pos : self._clen], pbuf[produced:])
                if size < 0:
                    break
            pos += size + TAG_SIZE
            produced += size
            self._index += 1
        leftover = self._clen - pos
        self._cbuf[:leftover] = self._cbuf[pos : self._clen]
        self._clen = leftover
        self._out = pbuf[:produced]

    def _open_last(self, chunk: memoryview, out: memoryview) -> int:
        """Decrypt the piece ending the file; return its size, or -1 with ``_error`` set."""
        if not chunk:
            where = f"after chunk {self._index - 1}" if self._index else "right after the nonce"
            self._error = TruncatedError(f"file ends {where} without a final chunk (truncated)")
            return -1
        if len(chunk) < TAG_SIZE:
            self._error = TruncatedError(f"file ends inside payload chunk {self._index}")
            return -1
        size = self._open(chunk, out, True)
        if size == 0 and self._index > 0:
            self._error = PayloadError("final payload chunk is empty (not allowed after data)")
            return -1
        if size >= 0:
            self._done = True
            return size
        if len(chunk) == ENCRYPTED_CHUNK_SIZE:
            size = self._open(chunk, out, False)
            if size >= 0:
                self._error = TruncatedError(
                    f"file ends after chunk {self._index} without a final chunk (truncated)"
                )
                return size
        self._error = PayloadError(
            f"payload chunk {self._index} failed authentication (tampered or truncated)"
        )
        return -1

    def _open(self, chunk: memoryview, out: memoryview, final: bool) -> int:
        """Decrypt one chunk into ``out``; its plaintext size, or -1 if it does not verify."""
        size = len(chunk) - TAG_SIZE
        target = out[:size]
        try:
            self._aead.decrypt_into(chunk_nonce(self._index, final), chunk, None, target)
        except InvalidTag:
            target[:] = bytes(size)  # never leave unauthenticated plaintext around
            return -1
        return size

    def close(self) -> None:
        """Drop the buffered plaintext and close the reader."""
        self._out = memoryview(b"")
        super().close()


class Decryptor:
    """Opens archives for a set of identities (tried in order)."""

    def __init__(self, identities: Sequence[Identity]) -> None:
        if not identities:
            raise InvalidIdentityError("at least one identity is required to decrypt")
        self._identities = tuple(identities)

    def unwrap(self, header: Header) -> bytes:
        """Recover and authenticate the file key of a parsed header."""
        stanzas = header.stanzas
        if len(stanzas) > 1 and any(stanza.type == "scrypt" for stanza in stanzas):
            raise HeaderError("an scrypt stanza must be the only stanza")
        for identity in self._identities:
            file_key = identity.unwrap(stanzas)
            if file_key is not None:
                verify_header_mac(header, file_key)
                return file_key
        raise NoIdentityMatchError("no identity matches this file (wrong key or passphrase)")

    def open(self, src: BinaryIO, *, batch_chunks: int = DEFAULT_BATCH_CHUNKS) -> DecryptingReader:
        """Read the header and nonce from ``src``; return a reader of the plaintext."""
        header, rest = read_header(src)
        file_key = self.unwrap(header)
        if len(rest) < NONCE_SIZE:
            rest += src.read(NONCE_SIZE - len(rest))
            if len(rest) < NONCE_SIZE:
                raise HeaderError("file ends before the payload nonce")
        state = EncryptionState(file_key, header.raw, bytes(rest[:NONCE_SIZE]))
        return DecryptingReader(src, state, initial=rest[NONCE_SIZE:], batch_chunks=batch_chunks)

    @staticmethod
    def open_payload(
        src: BinaryIO,
        state: EncryptionState,
        start_chunk: int = 0,
        *,
        batch_chunks: int = DEFAULT_BATCH_CHUNKS,
    ) -> DecryptingReader:
        """Decrypt from ciphertext chunk ``start_chunk`` on (ranged restores).

        ``src`` must be positioned at :func:`chunk_offset` ``(start_chunk, len(state.prefix))``;
        ``state`` comes from a previous :meth:`open` (``reader.state``) or the upload's saved state.
        """
        return DecryptingReader(src, state, first_chunk=start_chunk, batch_chunks=batch_chunks)


def decrypt_file(src: BinaryIO, dst: BinaryIO, identities: Sequence[Identity]) -> int:
    """Decrypt an archive from ``src`` into ``dst``; return the plaintext byte count.

    On error, ``dst`` holds the verified plaintext written so far: write to a temporary file and
    discard it unless this returns.
    """
    total = 0
    with Decryptor(identities).open(src) as reader:
        while view := reader._next_view(1 << 30):
            write_all(dst, view)
            total += len(view)
    return total

"""Whole-file encryption with bounded memory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

from uploader.crypto.protocols import Recipient
from uploader.crypto.state import new_encryption
from uploader.crypto.stream import (
    CHUNK_SIZE,
    ENCRYPTED_CHUNK_SIZE,
    PayloadSealer,
    read_full,
    write_all,
)

__all__ = ["encrypt_file"]

_BATCH_CHUNKS = 64  # 4 MiB of plaintext per read


def encrypt_file(
    src: BinaryIO,
    dst: BinaryIO,
    recipients: Sequence[Recipient],
    *,
    batch_chunks: int = _BATCH_CHUNKS,
) -> int:
    """Encrypt everything readable from ``src`` to ``dst`` for ``recipients``.

    Returns the number of bytes written. Memory use is about ``2 * batch_chunks`` chunks.
    """
    state = new_encryption(recipients)
    sealer = PayloadSealer(state)
    write_all(dst, memoryview(state.prefix))
    written = len(state.prefix)
    # one spare chunk of look-ahead: a full chunk is final only if nothing follows it
    inbuf = bytearray((batch_chunks + 1) * CHUNK_SIZE)
    outbuf = bytearray((batch_chunks + 1) * ENCRYPTED_CHUNK_SIZE)
    in_view, out_view = memoryview(inbuf), memoryview(outbuf)
    index = 0
    have = 0
    while True:
        have += read_full(src, in_view[have:])
        if have < len(inbuf):  # end of input: everything left, last chunk final
            size = sealer.seal_into(index, in_view[:have], out_view, final=True)
            write_all(dst, out_view[:size])
            return written + size
        size = sealer.seal_into(index, in_view[: batch_chunks * CHUNK_SIZE], out_view, final=False)
        write_all(dst, out_view[:size])
        written += size
        index += batch_chunks
        inbuf[:CHUNK_SIZE] = inbuf[batch_chunks * CHUNK_SIZE :]
        have = CHUNK_SIZE

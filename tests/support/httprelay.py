"""Just enough HTTP/1.1 to relay one message at a time between asyncio streams: read a head,
copy a body framed by Content-Length, chunked encoding or EOF, reset a connection (TCP RST)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Sequence
from typing import Protocol

CHUNK = 64 * 1024


class Http:
    """Just enough HTTP/1.1 framing to relay one message at a time."""

    @staticmethod
    async def head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]] | None:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = raw.decode("latin-1").split("\r\n")
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
        return lines[0], headers

    @staticmethod
    def render(start: str, headers: list[tuple[str, str]]) -> bytes:
        return (start + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode(
            "latin-1"
        )

    @staticmethod
    def get(headers: list[tuple[str, str]], name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in headers if k.lower() == name), None)


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...


async def relay_body(
    reader: asyncio.StreamReader,
    headers: list[tuple[str, str]],
    send: Sequence[Sink],
    *,
    until_eof: bool = False,
    limit: int | None = None,
) -> int:
    """Copy one message body (Content-Length, chunked, or up to EOF) from ``reader`` to every
    writer in ``send``; stop after ``limit`` bytes if given. Returns the bytes copied."""
    copied = 0

    async def out(data: bytes) -> bool:
        nonlocal copied
        if limit is not None and copied + len(data) > limit:
            data = data[: limit - copied]
        for w in send:
            w.write(data)
            await w.drain()
        copied += len(data)
        return limit is None or copied < limit

    encoding = (Http.get(headers, "transfer-encoding") or "").lower()
    if "chunked" in encoding:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            if not await out(size_line):
                return copied
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = await reader.readuntil(b"\r\n")
                    if not await out(line) or line == b"\r\n":
                        return copied
            left = size + 2  # the data and its CRLF
            while left:
                data = await reader.read(min(CHUNK, left))
                if not data:
                    raise ConnectionError("chunked body cut short")
                left -= len(data)
                if not await out(data):
                    return copied
    length = Http.get(headers, "content-length")
    if length is not None:
        left = int(length)
        while left:
            data = await reader.read(min(CHUNK, left))
            if not data:
                raise ConnectionError("body shorter than Content-Length")
            left -= len(data)
            if not await out(data):
                return copied
        return copied
    if until_eof:
        while data := await reader.read(CHUNK):
            if not await out(data):
                return copied
    return copied


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed server or a middlebox does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Upstream:
    """One keep-alive connection to the server, opened when needed."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.writer is None or self.writer.is_closing() or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, limit=1 << 20
            )
        return self.reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Collect:
    """A writer-shaped sink that keeps what it is given."""

    def __init__(self, into: bytearray) -> None:
        self.into = into

    def write(self, data: bytes) -> None:
        self.into += data

    async def drain(self) -> None:
        return None

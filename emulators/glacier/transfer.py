"""Streaming request bodies to disk and file ranges to the client, with cut-connection faults."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from .errors import ConnectionCut
from .treehash import TreeHasher
from .wire import CUT_REQUEST_AFTER, CUT_RESPONSE_AFTER

RECEIVE_CHUNK = 256 * 1024
SEND_CHUNK = 256 * 1024


def cut_connection(request: web.Request) -> None:
    """Close the client's connection now (buffered bytes are still flushed)."""
    if request.transport is not None:
        request.transport.close()
    raise ConnectionCut


async def receive_body(request: web.Request, dest: Path) -> TreeHasher:
    """Write the request body to ``dest`` chunk by chunk, hashing as it goes.

    Honours a ``cut_request`` fault: the connection is closed once that many body bytes
    have been read (or at the end of a shorter body) and the request never gets an answer.
    """
    hasher = TreeHasher()
    cut_after: int | None = request.get(CUT_REQUEST_AFTER)
    try:
        with dest.open("wb") as out:
            async for chunk in request.content.iter_chunked(RECEIVE_CHUNK):
                if cut_after is not None and hasher.size + len(chunk) >= cut_after:
                    cut_connection(request)
                hasher.update(chunk)
                out.write(chunk)
            if cut_after is not None:
                cut_connection(request)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return hasher


async def cut_while_reading(request: web.Request, after: int) -> None:
    """Read up to ``after`` body bytes (or the whole shorter body), then cut the connection."""
    received = 0
    async for chunk in request.content.iter_chunked(RECEIVE_CHUNK):
        received += len(chunk)
        if received >= after:
            break
    cut_connection(request)


async def drain_body(request: web.Request) -> None:
    """Read and drop an unread request body so an error reply reaches the client intact."""
    if request.content.at_eof():
        return
    try:
        async for _ in request.content.iter_chunked(RECEIVE_CHUNK):
            pass
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception:  # noqa: S110 - the body is unwanted; failing to read it changes nothing
        pass


async def send_file_range(
    request: web.Request,
    path: Path,
    offset: int,
    length: int,
    *,
    status: int,
    headers: dict[str, str],
) -> web.StreamResponse:
    """Stream ``length`` bytes of ``path`` from ``offset`` without loading the file.

    Honours a ``cut_response`` fault: after that many body bytes the connection is closed,
    so the client sees a short body against its ``Content-Length``.
    """
    budget: int | None = request.get(CUT_RESPONSE_AFTER)
    if budget is not None and budget >= length:
        cut_connection(request)  # nothing to cut short: drop the connection unanswered
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = length
    await response.prepare(request)
    sent = 0
    with path.open("rb") as src:
        src.seek(offset)
        while sent < length:
            chunk = src.read(min(SEND_CHUNK, length - sent))
            if not chunk:
                break
            if budget is not None and sent + len(chunk) >= budget:
                await response.write(chunk[: budget - sent])
                cut_connection(request)
            await response.write(chunk)
            sent += len(chunk)
    await response.write_eof()
    return response


async def send_cut_response(request: web.Request, response: web.Response, after: int) -> None:
    """Send a prepared-in-memory response's headers and first ``after`` body bytes, then cut."""
    body = response.body if isinstance(response.body, bytes) else b""
    if after >= len(body):
        cut_connection(request)  # nothing to cut short: drop the connection unanswered
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[:after])
    cut_connection(request)

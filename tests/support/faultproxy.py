"""An HTTP fault proxy in front of an S3 server (moto, SeaweedFS), for tests.

It relays HTTP/1.1 byte for byte (the ``Host`` header and every signed header unchanged, so
SigV4 still verifies; bodies streamed in 64 KiB pieces, never held whole) and, for the requests a
test picks out, does what real S3 and real networks do on a bad day::

    with FaultProxy(moto_url) as proxy:
        rule = proxy.fail("UploadPart", SLOW_DOWN, skip=1)   # the 2nd UploadPart: 503 SlowDown
        proxy.drop_answer("CompleteMultipartUpload")          # done by S3, never heard of
        store = S3Store(bucket, endpoint_url=proxy.url, ...)
        ...
        assert rule.fired == 1 and proxy.requests("UploadPart") == 5

Requests are classified from method, path, query string and headers into S3 operation names
(:func:`classify`: ``UploadPart``, ``CreateMultipartUpload``, ``CompleteMultipartUpload``,
``AbortMultipartUpload``, ``ListParts``, ``ListMultipartUploads``, ``RestoreObject``,
``HeadObject``, ``GetObject`` — ``ranged=True`` picks ranged GETs —, ``PutObject``,
``DeleteObject``, ``ListObjectsV2``, ``CreateBucket``...). A :class:`FaultRule` fires on the
matching requests it selects (``skip`` the first ones, then ``every`` k-th, at most ``times``);
the first rule that fires decides. Kinds:

``error``  answer an S3 XML error (status and code: :data:`SLOW_DOWN`, :data:`INTERNAL_ERROR`,
           :data:`SERVICE_UNAVAILABLE`, :data:`REQUEST_TIMEOUT`...); the server never sees it
``reset``  reset the connection (TCP RST) after ``after_bytes`` of the request body; not forwarded
``stall``  hold the answer (``phase="response"``: the server did the work) or the request
           (``phase="request"``: the server has not seen it) until :meth:`FaultRule.release` or
           for ``seconds``; then go on normally if the client is still there
``drop``   forward the request, read the server's whole answer, then reset the connection: the
           server did it, the client never hears
``cut``    send the answer's head and ``after_bytes`` of its body, then reset the connection

:meth:`FaultProxy.hold_restores` makes every RestoreObject that passes through stay ongoing
(``x-amz-restore: ongoing-request="true"``, GetObject refused with ``InvalidObjectState``, a
repeated request ``RestoreAlreadyInProgress``) until :meth:`FaultProxy.release_restores`.

``log(operation)`` lists the requests that arrived (with their ``Range`` header and query), so
that a test can check what a client asked again after it was killed.

The proxy runs in a daemon thread with its own event loop, on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from tests.support.httprelay import Collect, Http, Upstream, relay_body, reset
from tests.support.s3requests import (
    INTERNAL_ERROR,
    INVALID_OBJECT_STATE,
    REQUEST_TIMEOUT,
    RESTORE_IN_PROGRESS,
    SERVICE_UNAVAILABLE,
    SLOW_DOWN,
    Request,
    S3Error,
    classify,
)
from tests.support.waiting import wait_for

KINDS = ("error", "reset", "stall", "drop", "cut")
__all__ = [
    "INTERNAL_ERROR",
    "INVALID_OBJECT_STATE",
    "KINDS",
    "REQUEST_TIMEOUT",
    "RESTORE_IN_PROGRESS",
    "SERVICE_UNAVAILABLE",
    "SLOW_DOWN",
    "FaultProxy",
    "FaultRule",
    "S3Error",
    "classify",
]


@dataclass(eq=False)
class FaultRule:
    """Apply ``kind`` to the requests of ``operation`` (None: any) that it selects."""

    operation: str | None
    kind: str
    error: S3Error = SLOW_DOWN
    skip: int = 0  # let this many matching requests through first
    every: int = 1  # then fire on every k-th matching request
    times: int | None = 1  # fire at most this often (None: until cleared)
    seconds: float | None = None  # stall: hold this long (None: until released)
    phase: str = "response"  # stall: hold the "response" (server did it) or the "request"
    after_bytes: int = 0  # reset: request bytes read first; cut: answer bytes sent first
    key: str | None = None  # only requests whose object key contains this
    ranged: bool | None = None  # only ranged (True) or whole (False) GETs
    seen: int = 0
    fired: int = 0
    holding: int = 0
    _released: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {KINDS}")
        if self.every < 1 or self.skip < 0 or (self.times is not None and self.times < 1):
            raise ValueError("every >= 1, skip >= 0, times >= 1 or None")
        if self.phase not in ("request", "response"):
            raise ValueError("phase is 'request' or 'response'")

    def _matches(self, request: Request) -> bool:
        return (
            self.operation in (None, request.operation)
            and (self.key is None or self.key in request.key)
            and (self.ranged is None or self.ranged == request.ranged)
        )

    def _select(self) -> bool:
        """Count one matching request; whether the rule fires on it."""
        self.seen += 1
        n = self.seen - self.skip
        if n < 1 or n % self.every or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def release(self) -> None:
        """Let every request this (stall) rule holds, or will hold, go on."""
        self._released.set()

    def wait_fired(self, count: int = 1, timeout: float = 30) -> None:
        """Block until the rule has fired ``count`` times."""
        wait_for(lambda: self.fired >= count, timeout, f"{self} to fire {count} time(s)")

    def wait_held(self, timeout: float = 30) -> None:
        """Block until a stall rule is holding a request (then :meth:`release` it)."""
        wait_for(lambda: self.holding > 0, timeout, f"{self} to hold a request")

    def __str__(self) -> str:
        return f"{self.kind} rule on {self.operation or 'any request'}"


class FaultProxy:
    """A fault-injecting HTTP/1.1 proxy in front of ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str) -> None:
        u = urlsplit(upstream)
        if u.scheme != "http" or u.hostname is None or u.port is None:
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self.upstream = upstream
        self._host, self._port = u.hostname, u.port
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._requests: Counter[str] = Counter()
        self._log: list[Request] = []
        self._injected: Counter[tuple[str, str]] = Counter()
        self._holding_restores = False
        self._restoring: set[tuple[str, str]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._ids = itertools.count(1)
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint URL clients use instead of the server's."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)
        self._thread.start()
        if not self._started.wait(10) or not self.port:
            raise RuntimeError("the fault proxy did not start")
        return self

    def close(self) -> None:
        self.clear()
        loop = self._loop
        if loop is not None and self._thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1 << 20)
            )
            self.port = int(self._server.sockets[0].getsockname()[1])
            self._started.set()
            loop.run_forever()
        finally:
            self._started.set()
            if self._server is not None:
                self._server.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    # -- knobs ---------------------------------------------------------------------------------

    def add(self, rule: FaultRule) -> FaultRule:
        """Queue ``rule`` behind the existing ones; returns it (for its counters)."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def fail(
        self, operation: str | None, error: S3Error = SLOW_DOWN, **select: object
    ) -> FaultRule:
        """Answer the selected requests with an S3 error (default 503 SlowDown)."""
        return self.add(FaultRule(operation, "error", error=error, **select))  # type: ignore[arg-type]

    def reset_connection(self, operation: str | None, **select: object) -> FaultRule:
        """Reset the connection of the selected requests (not forwarded)."""
        return self.add(FaultRule(operation, "reset", **select))  # type: ignore[arg-type]

    def stall(self, operation: str | None, **select: object) -> FaultRule:
        """Hold the selected requests' answers (``seconds``, or until ``rule.release()``)."""
        return self.add(FaultRule(operation, "stall", **select))  # type: ignore[arg-type]

    def drop_answer(self, operation: str | None, **select: object) -> FaultRule:
        """Forward the selected requests, then reset the connection instead of answering."""
        return self.add(FaultRule(operation, "drop", **select))  # type: ignore[arg-type]

    def cut(self, operation: str | None, after_bytes: int, **select: object) -> FaultRule:
        """Send ``after_bytes`` of the selected answers' bodies, then reset the connection."""
        return self.add(FaultRule(operation, "cut", after_bytes=after_bytes, **select))  # type: ignore[arg-type]

    def clear(self) -> None:
        """Drop every rule and let every held request go on; stop holding restores."""
        with self._lock:
            rules, self._rules = self._rules, []
            self._holding_restores = False
            self._restoring.clear()
        for rule in rules:
            rule.release()

    def hold_restores(self) -> None:
        """Every restore requested from now on stays ongoing until :meth:`release_restores`."""
        with self._lock:
            self._holding_restores = True

    def release_restores(self) -> None:
        with self._lock:
            self._holding_restores = False
            self._restoring.clear()

    # -- counters ------------------------------------------------------------------------------

    def requests(self, operation: str | None = None) -> int:
        """Requests that arrived (faulted ones included) for ``operation``, or for all."""
        with self._lock:
            return self._requests[operation] if operation else sum(self._requests.values())

    def log(self, operation: str | None = None) -> list[Request]:
        """Every request that arrived (faulted ones included) for ``operation``, or for all,
        in the order they arrived: what a test checks was (not) asked again."""
        with self._lock:
            return [r for r in self._log if operation in (None, r.operation)]

    def injected(self, operation: str | None = None, kind: str | None = None) -> int:
        """Faults injected, by operation and/or kind."""
        with self._lock:
            return sum(
                n
                for (op, k), n in self._injected.items()
                if operation in (None, op) and kind in (None, k)
            )

    def stats(self) -> dict[str, dict[str, int]]:
        """``{"requests": {op: n}, "injected": {"op kind": n}}``, for failure messages."""
        with self._lock:
            return {
                "requests": dict(self._requests),
                "injected": {f"{op} {k}": n for (op, k), n in self._injected.items()},
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._requests.clear()
            self._log.clear()
            self._injected.clear()

    # -- the relay -----------------------------------------------------------------------------

    def _decide(self, request: Request) -> FaultRule | None:
        with self._lock:
            self._requests[request.operation] += 1
            self._log.append(request)
            if request.operation == "MotoApi":
                return None
            chosen = None
            for rule in self._rules:
                if rule._matches(request) and rule._select() and chosen is None:
                    chosen = rule
            if chosen is not None:
                self._injected[(request.operation, chosen.kind)] += 1
            self._rules = [r for r in self._rules if not r.exhausted or r.kind == "stall"]
            return chosen

    def _restore_override(self, request: Request) -> S3Error | bool | None:
        """While restores are held: the error to answer, True to rewrite the answer's
        ``x-amz-restore`` header, None to pass through."""
        obj = (request.bucket, request.key)
        with self._lock:
            if not self._holding_restores:
                return None
            if request.operation == "RestoreObject":
                if obj in self._restoring:
                    return RESTORE_IN_PROGRESS
                self._restoring.add(obj)
                return None
            if obj not in self._restoring:
                return None
            if request.operation == "GetObject":
                return INVALID_OBJECT_STATE
            return request.operation == "HeadObject"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = Upstream(self._host, self._port)
        try:
            while await self._exchange(reader, writer, upstream):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # the proxy is closing: the connection just ends (asyncio would log it)
        finally:
            upstream.close()
            if not writer.is_closing():
                writer.close()

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Upstream
    ) -> bool:
        """Relay one request and its answer; whether the client connection stays open."""
        head = await Http.head(reader)
        if head is None:
            return False
        start, headers = head
        method, target, _ = start.split(" ", 2)
        lower = {k.lower(): v for k, v in headers}
        request = classify(method, target, lower)
        if lower.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            headers = [(k, v) for k, v in headers if k.lower() != "expect"]
        rule = self._decide(request)
        override = self._restore_override(request)
        if isinstance(override, S3Error):
            await relay_body(reader, headers, [])
            await self._answer_error(writer, request, override)
            return True
        kind = rule.kind if rule is not None else None
        if rule is not None and kind == "error":
            await relay_body(reader, headers, [])
            await self._answer_error(writer, request, rule.error)
            return True
        if rule is not None and kind == "reset":
            if rule.after_bytes:
                await relay_body(reader, headers, [], limit=rule.after_bytes)
            reset(writer)
            return False
        if rule is not None and kind == "stall" and rule.phase == "request":
            await self._hold(rule)

        up_reader, up_writer = await upstream.open()
        up_writer.write(Http.render(start, headers))
        await relay_body(reader, headers, [up_writer])
        while True:
            answer = await Http.head(up_reader)
            if answer is None:
                upstream.close()
                reset(writer)
                return False
            status_line, answer_headers = answer
            status = int(status_line.split(" ", 2)[1])
            if status >= 200:
                break
        if override is True:
            answer_headers = [
                (k, 'ongoing-request="true"' if k.lower() == "x-amz-restore" else v)
                for k, v in answer_headers
            ]
        has_body = method != "HEAD" and status not in (204, 304)
        framed = Http.get(answer_headers, "content-length") is not None or "chunked" in (
            Http.get(answer_headers, "transfer-encoding") or ""
        )
        server_closes = (Http.get(answer_headers, "connection") or "").lower() == "close"

        if rule is not None and kind == "drop":
            if has_body:
                await relay_body(up_reader, answer_headers, [], until_eof=not framed)
            if server_closes or not framed:
                upstream.close()
            reset(writer)
            return False
        if rule is not None and kind == "stall" and rule.phase == "response":
            body = bytearray()  # the answer is small (a stalled part's ETag), or the test's
            if has_body:
                sink = Collect(body)
                await relay_body(up_reader, answer_headers, [sink], until_eof=not framed)
            await self._hold(rule)
            writer.write(Http.render(status_line, answer_headers) + bytes(body))
            await writer.drain()
            return framed and not server_closes
        writer.write(Http.render(status_line, answer_headers))
        if has_body:
            limit = rule.after_bytes if rule is not None and kind == "cut" else None
            await relay_body(up_reader, answer_headers, [writer], until_eof=not framed, limit=limit)
            if limit is not None:
                upstream.close()
                reset(writer)
                return False
        else:
            await writer.drain()
        if server_closes or (has_body and not framed):
            upstream.close()
            return False
        return (Http.get(headers, "connection") or "").lower() != "close"

    async def _hold(self, rule: FaultRule) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            rule.holding += 1
        try:
            await loop.run_in_executor(None, rule._released.wait, rule.seconds)
        finally:
            with self._lock:
                rule.holding -= 1

    async def _answer_error(
        self, writer: asyncio.StreamWriter, request: Request, error: S3Error
    ) -> None:
        request_id = f"FAULTPROXY{next(self._ids):06d}"
        body = b""
        if request.method != "HEAD":
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{error.code}</Code><Message>{error.message}</Message>"
                f"<Resource>{urlsplit(request.target).path}</Resource>"
                f"<RequestId>{request_id}</RequestId><HostId>faultproxy</HostId></Error>"
            ).encode()
        reason = {400: "Bad Request", 403: "Forbidden", 409: "Conflict", 500: "Internal Error"}
        writer.write(
            Http.render(
                f"HTTP/1.1 {error.status} {reason.get(error.status, 'Service Unavailable')}",
                [
                    ("Content-Type", "application/xml"),
                    ("Content-Length", str(len(body))),
                    ("x-amz-request-id", request_id),
                    ("Server", "faultproxy"),
                ],
            )
            + body
        )
        await writer.drain()

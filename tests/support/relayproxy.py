"""An HTTP relay in front of a test server (the Glacier emulator, moto) that can hold a chosen
request, or corrupt a chosen answer, and that logs what it relayed.

    with RelayProxy(emu.endpoint_url) as proxy:
        rule = proxy.add(Rule("GET", r"/jobs/[^/]+/output$", "stall", skip=2))
        ...                       # point the store's endpoint_url at proxy.url
        rule.wait_held()          # the 3rd job-output GET is held: its client waits for it
        child.kill()              # a real SIGKILL at that instant
        rule.release()

``stall`` holds the request before the server sees it, until :meth:`Rule.release`; ``corrupt``
relays it and flips one byte in the middle of the answer's body, headers unchanged (a tree hash
that no longer matches). Bodies are small in tests and are held whole. Every relayed exchange is
logged: method, path, ``Range`` header, status, and whether its answer reached the client whole.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import web

from tests.support.servers import free_port

_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "expect"}


@dataclass(eq=False)
class Rule:
    """Apply ``kind`` to the matching requests: after ``skip``, at most ``times`` (None: all)."""

    method: str
    path: str  # a regular expression searched in the path
    kind: str  # "stall" | "corrupt"
    skip: int = 0
    times: int | None = 1
    query: str | None = None  # a query parameter the request must have (``partNumber``)
    seen: int = 0
    fired: int = 0
    holding: int = 0
    _released: threading.Event = field(default_factory=threading.Event)

    def select(self, request: web.Request) -> bool:
        """Count a request; whether the rule fires on it."""
        if request.method != self.method or not re.search(self.path, request.path):
            return False
        if self.query is not None and self.query not in request.query:
            return False
        self.seen += 1
        if self.seen <= self.skip or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True

    def release(self) -> None:
        """Let every request this rule holds (or will hold) go on."""
        self._released.set()

    def wait_held(self, timeout: float = 60) -> None:
        """Block until the rule holds a request."""
        wait_until(lambda: self.holding > 0, timeout, f"{self.kind} {self.path} to hold")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One relayed request and how its answer went."""

    method: str
    path: str
    query: dict[str, str]
    range: str | None
    status: int
    whole: bool  # the answer's body was handed to the client's connection in full


def wait_until(condition: object, timeout: float, what: str) -> None:
    """Poll ``condition()`` every 20 ms until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class RelayProxy:
    """The relay, on 127.0.0.1 and a free port, in a daemon thread with its own loop."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.rules: list[Rule] = []
        self.log: list[Exchange] = []
        self.in_flight = 0  # requests being relayed (held ones included)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def add(self, rule: Rule) -> Rule:
        """Apply ``rule`` from now on (the first matching rule that fires decides)."""
        with self._lock:
            self.rules.append(rule)
        return rule

    def exchanges(self, method: str, path: str) -> list[Exchange]:
        """The logged exchanges whose path matches the regular expression ``path``."""
        with self._lock:
            return [e for e in self.log if e.method == method and re.search(path, e.path)]

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for rule in self.rules:
            rule.release()
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._relay)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = int(self.url.rsplit(":", 1)[1])
        await web.TCPSite(runner, "127.0.0.1", port).start()
        async with aiohttp.ClientSession(auto_decompress=False) as self._session:
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

    def _fire(self, request: web.Request) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.select(request):
                    return rule
        return None

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.in_flight += 1
        try:
            return await self._exchange(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _exchange(self, request: web.Request) -> web.StreamResponse:
        rule = self._fire(request)
        body = await request.read()
        if rule is not None and rule.kind == "stall":
            rule.holding += 1
            await asyncio.to_thread(rule._released.wait)
            rule.holding -= 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers["Host"] = request.headers.get("Host", "")
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as answer:
            data = await answer.read()
            out_headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
            status = answer.status
        if rule is not None and rule.kind == "corrupt" and data:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        response = web.StreamResponse(status=status, headers=out_headers)
        if request.method == "HEAD":  # no body: the length is the object's
            response.headers["Content-Length"] = answer.headers.get("Content-Length", "0")
        else:
            response.content_length = len(data)
        whole = False
        try:
            await response.prepare(request)
            if request.method != "HEAD":
                await response.write(data)
            await response.write_eof()
            whole = True
        finally:
            with self._lock:
                self.log.append(
                    Exchange(
                        request.method,
                        request.path,
                        dict(request.query),
                        request.headers.get("Range"),
                        status,
                        whole,
                    )
                )
        return response

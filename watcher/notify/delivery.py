"""Delivering notifications without ever holding up or failing what they report.

:meth:`Notifier.send` only queues the notice; one worker thread POSTs it to ``[notify] url``
(user and password in the URL go as HTTP Basic authorization) and/or runs ``[notify] command``
with the JSON on stdin, each tried a few times with a pause in
between, then given up with a ``notify.undeliverable`` log line. :meth:`Notifier.close` waits a
bounded time for what is queued (a command that ends right after its work still reports it).

A ping URL is a secret (whoever has it can ping the check): logs show :func:`mask_url`'s form
(scheme and host; user, path and query masked) and only the program name of the command.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from localbackup.logevents import get_logger
from watcher.notify.config import NotifyConfig, UrlStyle
from watcher.notify.events import Category, Notice

log = get_logger(__name__)

BACKOFF = (2.0, 10.0)  # pauses between the attempts of one delivery (3 attempts)
CLOSE_TIMEOUT = 30.0
_HEALTHCHECKS_SUFFIX = {
    Category.START: "/start",
    Category.SUCCESS: "",
    Category.RETRIEVAL_READY: "/log",
}  # every other category: "/fail"
_STOP = object()


def mask_url(url: str) -> str:
    """``url`` fit for a log: scheme and host kept; user info, path and query masked."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if parts.username is not None or parts.password is not None:
        host = f"***@{host}"
    path = "/***" if parts.path.strip("/") else parts.path
    return urlunsplit((parts.scheme, host, path, "***" if parts.query else "", ""))


def ping_url(url: str, category: Category | None) -> str:
    """The healthchecks-style URL for ``category``: ``<url>/start``, ``<url>``, ``<url>/fail``
    or ``<url>/log`` (a query string stays at the end)."""
    suffix = _HEALTHCHECKS_SUFFIX.get(category, "/fail") if category else "/log"
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))


def _split_userinfo(url: str) -> tuple[str, str | None]:
    """``url`` without its ``user:password@`` part, and that part as a Basic authorization."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    netloc = parts.netloc.rsplit("@", 1)[1]
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    token = base64.b64encode(pair.encode()).decode()
    return urlunsplit(parts._replace(netloc=netloc)), f"Basic {token}"


class DeliveryError(Exception):
    """One attempt failed; ``final`` when trying again cannot help (an HTTP 4xx)."""

    def __init__(self, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


class Notifier:
    """Sends :class:`Notice` s as ``[notify]`` says, from a worker thread (see the module doc)."""

    def __init__(
        self,
        config: NotifyConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Sequence[float] = BACKOFF,
    ) -> None:
        self.config = config
        self._sleep, self._backoff = sleep, tuple(backoff)
        self._queue: queue.Queue[object] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def send(self, notice: Notice) -> None:
        """Queue ``notice`` if its category is on; returns at once."""
        if not self.config.sends(notice.category):
            return
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name="glacier-backup-notify", daemon=True
                )
                self._worker.start()
        self._queue.put(notice)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Deliver what is queued, waiting at most ``timeout`` seconds, then stop."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is None:
            return
        self._queue.put(_STOP)
        worker.join(timeout)
        if worker.is_alive():
            log.warning("notify.abandoned", pending=self._queue.qsize(), waited=timeout)

    def _work(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            assert isinstance(item, Notice)
            body = json.dumps(item.document()).encode()
            if self.config.url:
                url = self.config.url
                if self.config.url_style is UrlStyle.HEALTHCHECKS:
                    url = ping_url(url, item.category)
                try:
                    target = mask_url(url)
                except ValueError:  # an unparsable port: the config check refuses it
                    target = "the [notify] url"
                self._deliver(item, target, functools.partial(self._post, url, body))
            if self.config.command:
                name = Path(self.config.command[0]).name
                self._deliver(item, f"command {name}", functools.partial(self._run, item, body))

    def _deliver(self, notice: Notice, target: str, attempt: Callable[[], None]) -> None:
        """One delivery: tried a few times with pauses, then given up with a log line."""
        tries = len(self._backoff) + 1
        fields: dict[str, object] = {"notify_event": notice.event.value, "target": target}
        for n in range(tries):
            try:
                attempt()
            except DeliveryError as exc:
                fields.update(error=self._clean(str(exc)), attempts=n + 1)
                if exc.final or n == tries - 1:
                    log.error("notify.undeliverable", **fields)
                    return
                log.warning("notify.retry", wait=self._backoff[n], **fields)
                self._sleep(self._backoff[n])
            except Exception as exc:  # never the end of the worker, nor the operation's failure
                fields.update(error=self._clean(f"{type(exc).__name__}: {exc}"), attempts=n + 1)
                log.error("notify.undeliverable", **fields)
                return
            else:
                log.info("notify.sent", **fields)
                return

    def _post(self, url: str, body: bytes) -> None:
        import urllib.error
        import urllib.request

        headers = {"Content-Type": "application/json", "User-Agent": "glacier-backup"}
        url, auth = _split_userinfo(url)
        if auth is not None:
            headers["Authorization"] = auth
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in the config
            url, data=body, method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:  # noqa: S310 - http(s) only, checked in the config
                response.read()
        except urllib.error.HTTPError as exc:
            retry = exc.code >= 500 or exc.code in (408, 429)
            raise DeliveryError(f"HTTP {exc.code} {exc.reason}", final=not retry) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"{type(exc).__name__}: {reason}") from None

    def _run(self, notice: Notice, body: bytes) -> None:
        env = {**os.environ, "GLACIER_BACKUP_EVENT": notice.event.value}
        try:
            done = subprocess.run(
                list(self.config.command),
                input=body,
                capture_output=True,
                timeout=self.config.timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DeliveryError(f"did not end within {self.config.timeout:g} s") from None
        except OSError as exc:
            raise DeliveryError(f"cannot run: {exc.strerror}", final=True) from None
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip()[-500:]
            raise DeliveryError(f"exit status {done.returncode}: {tail}")

    def _clean(self, text: str) -> str:
        """An error text with the URL (and its secret parts) masked."""
        url = self.config.url
        if not url:
            return text
        parts = urlsplit(url)
        for secret in (url, parts.path, parts.query, parts.password, parts.username):
            if secret and secret.strip("/"):
                text = text.replace(secret, "***")
        return text

"""Structured log events through structlog, with structlog imported only when an event is logged.

``import structlog`` costs 90-250 ms here (it imports ``rich`` for tracebacks and ``asyncio``),
more than a whole unchanged ``glacier-backup backup`` of a small tree. Every module logs through
:func:`get_logger`, which returns a small forwarder: an event below the level the command line
asked for is dropped before structlog is imported, and the first event that passes imports it,
runs the set-up :func:`defer_setup` registered (``watcher/logs.py``: renderer, level, redaction)
and hands the event over. Events, names and fields are structlog's own: this module renders
nothing.

:func:`bound_fields` tags every event of a block with fields (a cycle, an increment), like
``structlog.contextvars.bound_contextvars`` but without importing structlog for a block that may
log nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40


class _Settings:
    """What the command line set: the level, and structlog's set-up until it has run."""

    __slots__ = ("pending_setup", "threshold")

    def __init__(self) -> None:
        self.threshold = 0  # events below it are dropped here; 0: all go to structlog
        self.pending_setup: Callable[[], None] | None = None


_settings = _Settings()  # structlog's own configuration is process-wide too
_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "log_fields", default=None
)


def defer_setup(threshold: int, setup: Callable[[], None]) -> None:
    """Drop events below ``threshold`` here; configure structlog with ``setup`` before the first
    event that passes (at once if structlog is already imported)."""
    _settings.threshold = threshold
    if "structlog" in sys.modules:
        _settings.pending_setup = None
        setup()
    else:
        _settings.pending_setup = setup


def import_structlog() -> ModuleType:
    """structlog, imported without ``rich`` unless rich is loaded already: ``structlog.dev``
    imports rich (~30-70 ms here) for its console renderer's tracebacks, which this program
    does not use (``watcher/logs.py`` renders its own lines). A later ``import rich`` (a
    progress bar) works as usual."""
    found = sys.modules.get("structlog")
    if found is not None:
        return found
    hide = "rich" not in sys.modules
    if hide:
        sys.modules["rich"] = None  # type: ignore[assignment]  # "import rich" fails for now
    try:
        import structlog
    finally:
        if hide and sys.modules.get("rich", False) is None:
            del sys.modules["rich"]
    return structlog


def _structlog_logger(name: str) -> Any:
    structlog = import_structlog()

    setup, _settings.pending_setup = _settings.pending_setup, None
    if setup is not None:
        setup()
    return structlog.get_logger(name)


@contextlib.contextmanager
def bound_fields(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every event logged inside the block (this context only)."""
    token = _fields.set((_fields.get() or {}) | fields)
    try:
        yield
    finally:
        _fields.reset(token)


class EventLogger:
    """A named logger whose events go to structlog if they pass the level (see the module)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def _emit(self, level: int, method: str, event: str, fields: dict[str, Any]) -> None:
        if level < _settings.threshold:
            return
        bound = _fields.get()
        logger = _structlog_logger(self._name)
        getattr(logger, method)(event, **(bound | fields if bound else fields))

    def debug(self, event: str, **fields: Any) -> None:
        """Log ``event`` at debug level."""
        self._emit(DEBUG, "debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log ``event`` at info level."""
        self._emit(INFO, "info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log ``event`` at warning level."""
        self._emit(WARNING, "warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log ``event`` at error level."""
        self._emit(ERROR, "error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """Log ``event`` at error level with the exception being handled."""
        self._emit(ERROR, "exception", event, fields)


def get_logger(name: str) -> EventLogger:
    """The logger of module ``name``."""
    return EventLogger(name)

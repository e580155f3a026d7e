"""structlog set-up: short readable lines on a terminal, JSON lines otherwise (journald).

On a terminal the default output of a command is its own: a progress bar and a summary on
stdout, problems on stderr. Log events stay out of the way there: only warnings and errors are
shown, as one line each (``glacier-backup: warning: <message>``, no colours), unless
``--log-level`` asks for more. When stderr is not a terminal (the service under systemd, cron,
a pipe), every event from ``info`` up is a JSON line, as before.

structlog itself is set up (and imported) when the first event at the level or above is logged:
a command that logs nothing does not pay for it (``localbackup/logevents.py``).
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO, get_args

from localbackup.logevents import DEBUG, ERROR, INFO, WARNING, defer_setup, import_structlog

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["auto", "console", "json"]  # auto: console on a terminal, else JSON lines
LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)
FORMATS: tuple[LogFormat, ...] = get_args(LogFormat)
TERMINAL_LEVEL: LogLevel = "warning"  # default on a terminal: the command's own output is news
PIPE_LEVEL: LogLevel = "info"  # default otherwise: every event, for the journal

# Field names that could carry a secret; their values never reach a log line.
_SECRET_FIELDS = ("passphrase", "password", "secret", "file_key", "identity", "private_key")
# Fields the console line leaves out: what the line itself already says.
_CONSOLE_SKIP = frozenset({"event", "level", "timestamp", "message"})
_THRESHOLDS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR}


class _Chosen:
    """The format :func:`configure` chose (process-wide, as structlog's configuration is)."""

    fmt: LogFormat | None = None


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(s in key.lower() for s in _SECRET_FIELDS):
            event[key] = "[redacted]"
    return event


def _console_line(_: Any, __: str, event: MutableMapping[str, Any]) -> str:
    """``glacier-backup: warning: <message>`` (the event's ``message`` field, else its name and
    fields): one line a person reads, not a record."""
    level = str(event.get("level", "info"))
    text = event.get("message") or " ".join(
        [str(event.get("event", ""))]
        + [f"{k}={v}" for k, v in event.items() if k not in _CONSOLE_SKIP]
    )
    return f"glacier-backup: {level}: {text}"


class _StderrLogger:
    """Writes each line to the *current* ``sys.stderr``: a progress bar that redirects stderr
    while it is shown then prints log lines above itself instead of through it."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def is_json() -> bool:
    """Whether log events go out as JSON lines (so a message printed for a person is not the
    only record of it)."""
    return _Chosen.fmt == "json"


def configure(
    level: LogLevel | None = None, fmt: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    """Send structlog's events to ``stream`` (stderr) at ``level`` and above (None: warnings
    on a terminal, everything from info otherwise), as ``fmt``."""
    out = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    if level is None:
        level = TERMINAL_LEVEL if fmt == "console" and out.isatty() else PIPE_LEVEL
    _Chosen.fmt = fmt
    threshold = _THRESHOLDS[level]
    defer_setup(threshold, lambda: _setup_structlog(threshold, fmt, out, stream is None))


def _setup_structlog(threshold: int, fmt: LogFormat, out: TextIO, to_stderr: bool) -> None:
    structlog = import_structlog()

    renderer: Any
    factory: Any
    if fmt == "console":
        renderer = _console_line
        factory = (lambda *_: _StderrLogger()) if to_stderr else structlog.PrintLoggerFactory(out)
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        factory = structlog.PrintLoggerFactory(out)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )

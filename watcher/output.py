"""What a command tells its user: each problem printed once, progress bars only on a terminal.

Results and summaries go to stdout; problems to stderr as ``glacier-backup: error: ...`` (with
a line saying how to fix it, when there is one). A problem is also a log event, but only where
the log is a record of its own (JSON lines: the journal, cron mail): on a terminal the printed
line is the one message. Progress bars (rich, which honours ``NO_COLOR``) are drawn on stderr
when it is a terminal, and nothing is drawn otherwise.
"""

from __future__ import annotations

import sys
from typing import Any

from localbackup.logevents import get_logger
from watcher import logs

__all__ = ["error", "on_terminal", "warning"]

log = get_logger("glacier_backup")


def on_terminal() -> bool:
    """Whether stderr is a terminal (progress bars are drawn there)."""
    return sys.stderr.isatty()


def _say(level: str, text: str, fix: str | None, event: str | None, fields: dict[str, Any]) -> None:
    line = f"glacier-backup: {level}: {text}" if level == "error" else f"glacier-backup: {text}"
    print(line, file=sys.stderr, flush=True)
    if fix:
        print(f"  fix: {fix}", file=sys.stderr, flush=True)
    if event is not None and logs.is_json():
        getattr(log, level)(event, message=text, **({"fix": fix} if fix else {}), **fields)


def error(text: str, *, fix: str | None = None, event: str | None = None, **fields: Any) -> None:
    """Print ``glacier-backup: error: text`` (and how to fix it) once; log ``event`` too when
    the log is JSON lines."""
    _say("error", text, fix, event, fields)


def warning(text: str, *, fix: str | None = None, event: str | None = None, **fields: Any) -> None:
    """Print ``glacier-backup: text`` (a problem the command worked around) once; log ``event``
    at warning level too when the log is JSON lines."""
    _say("warning", text, fix, event, fields)

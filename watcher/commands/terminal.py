"""The restore commands' side of :class:`uploader.restore.RestoreUI`: print, input, stderr.

Messages go to stdout; problems and the download progress to stderr (the progress only on a
terminal); questions are asked with ``input`` when stdin is a terminal.
"""

from __future__ import annotations

import sys
import time

from localbackup.configkit import format_size
from uploader.restore import RestoreDeclined
from watcher.exitcodes import USAGE


class TerminalUI:
    """A :class:`uploader.restore.RestoreUI` on the process's terminal (or pipes)."""

    def __init__(self, unit: str = "ranges") -> None:
        self._status_shown = False  # a status line waits for its end of line
        self._unit = unit  # what progress() counts down: "ranges", "archives"
        self._started: tuple[float, int] | None = None  # (monotonic time, bytes) of the first

    @property
    def can_ask(self) -> bool:
        """Whether there is a terminal to ask on."""
        return sys.stdin.isatty()

    def confirm(self, question: str) -> bool:
        """Ask on the terminal; yes is ``y`` or ``yes``."""
        answer = input(f"{question} [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    def say(self, text: str, *, now: bool = False) -> None:
        """Print ``text`` on stdout (ending a status line first)."""
        if self._status_shown:
            self._status_shown = False
            text = f"\n{text}"
        print(text, flush=now)

    def warn(self, text: str) -> None:
        """Print ``glacier-backup: text`` on stderr."""
        print(f"glacier-backup: {text}", file=sys.stderr)

    def status(self, text: str) -> None:
        """Rewrite the current stdout line with ``text``."""
        self._status_shown = True
        print(f"\r{text}", end="", flush=True)

    def progress(self, done: int, total: int, left: int) -> None:
        """Rewrite the progress line on stderr, if it is a terminal: bytes, rate and ETA."""
        if not sys.stderr.isatty():
            return
        now = time.monotonic()
        if self._started is None:
            self._started = (now, done)
        began, base = self._started
        rate = (done - base) / (now - began) if now > began else 0.0
        eta = f", {_eta((total - done) / rate)} to go" if rate > 0 else ""
        speed = f" at {format_size(rate)}/s" if rate > 0 else ""
        line = (
            f"\r  {format_size(done)} of {format_size(total)}{speed}{eta}, {left} {self._unit} left"
        )
        print(f"{line:<79}", end="", file=sys.stderr, flush=True)

    def progress_done(self) -> None:
        """End the progress line on stderr, if it is a terminal."""
        self._started = None
        if sys.stderr.isatty():
            print(file=sys.stderr)


def _eta(seconds: float) -> str:
    """``42s``, ``5m07s``, ``3h02m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def declined(exc: RestoreDeclined) -> int:
    """The exit code of a declined step, after saying what to do (if there is anything)."""
    if str(exc):
        print(f"glacier-backup: {exc}", file=sys.stderr)
    return USAGE

"""The restore commands' side of :class:`uploader.restore.RestoreUI`: print, input, stderr.

Messages go to stdout; problems and the download and restore progress to stderr (the progress
only on a terminal: a rich bar with bytes, files and the time left); questions are asked with
``input`` when stdin is a terminal.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from localbackup.configkit import format_size
from uploader.restore import RestoreDeclined
from watcher.exitcodes import USAGE
from watcher.humanize import count


class TerminalUI:
    """A :class:`uploader.restore.RestoreUI` on the process's terminal (or pipes)."""

    def __init__(self, unit: str = "ranges", out: TextIO | None = None) -> None:
        self._status_shown = False  # a status line waits for its end of line
        self._unit = unit  # what progress() counts down: "ranges", "archives"
        self._started: tuple[float, int] | None = None  # (monotonic time, bytes) of the first
        self._out = out  # None: sys.stdout (stderr when stdout carries JSON)
        self._bar: Any = None  # the restore's rich progress bar, while it is shown
        self._task: Any = None
        self._lock = threading.Lock()  # restoring() is called from the restore's thread

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
        print(text, flush=now, file=self._out or sys.stdout)

    def warn(self, text: str) -> None:
        """Print ``glacier-backup: text`` on stderr."""
        print(f"glacier-backup: {text}", file=sys.stderr)

    def status(self, text: str) -> None:
        """Rewrite the current stdout line with ``text``."""
        self._status_shown = True
        print(f"\r{text}", end="", flush=True, file=self._out or sys.stdout)

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

    def restoring(self, files: int, done: int, total: int) -> None:
        """Show (on a terminal) the restore's bar: bytes applied of the total, files, ETA."""
        if not sys.stderr.isatty():
            return
        with self._lock:
            if self._bar is None:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                )

                self._bar = Progress(
                    TextColumn("[bold]restore[/] {task.fields[files]}"),
                    BarColumn(),
                    DownloadColumn(binary_units=True),
                    TimeRemainingColumn(),
                    console=Console(stderr=True),
                    transient=True,
                )
                self._bar.start()
                self._task = self._bar.add_task(
                    "restore", total=total or None, files=count(0, "file")
                )
            self._bar.update(
                self._task, completed=done, total=total or None, files=count(files, "file")
            )

    def restoring_done(self) -> None:
        """Remove the restore's bar, if one is shown."""
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None


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

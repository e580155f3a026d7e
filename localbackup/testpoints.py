"""Named points where a test may freeze this process, to kill it there with a real SIGKILL.

Outside tests nothing happens: the environment is read once, at import, and :func:`pause` is a
single comparison. A test that runs ``glacier-backup`` as a child process sets::

    GLACIER_BACKUP_TEST_PAUSE=upload.after_complete     # or POINT:N for the N-th arrival
    GLACIER_BACKUP_TEST_PAUSE_FILE=/tmp/.../paused      # where the child says it got there

The child writes ``POINT PID`` to that file when it reaches the point, then stops itself
(SIGSTOP: this thread at once, the others with it), and the test sends SIGKILL: a crash at exactly
that instant. The points, where they are and what is on disk then, are listed in
docs/reliability.md ("Pause points").
"""

from __future__ import annotations

import itertools
import os
import signal
import threading

_ENV, _FILE_ENV = "GLACIER_BACKUP_TEST_PAUSE", "GLACIER_BACKUP_TEST_PAUSE_FILE"


def _wanted() -> tuple[str, int] | None:
    spec = os.environ.get(_ENV, "").strip()
    if not spec:
        return None
    point, _, nth = spec.partition(":")
    return point, int(nth) if nth else 1


_WANTED = _wanted()
_lock = threading.Lock()
_arrivals = itertools.count(1)  # arrivals at the wanted point


def pause(point: str) -> None:
    """Freeze the process here if a test asked for ``point`` (see the module docstring)."""
    if _WANTED is None or point != _WANTED[0]:
        return
    _arrive(point, _WANTED[1])


def _arrive(point: str, nth: int) -> None:
    with _lock:
        if next(_arrivals) != nth:
            return
        where = os.environ.get(_FILE_ENV)
        if where:
            tmp = f"{where}.tmp"
            with open(tmp, "w", encoding="ascii") as f:
                f.write(f"{point} {os.getpid()}\n")
            os.replace(tmp, where)
        # Sent to this thread, not the process: the kernel then stops this very thread before
        # it returns to Python (a process-directed SIGSTOP may be taken by another thread while
        # this one runs on for a moment); every other thread stops with it.
        signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)

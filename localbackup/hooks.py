"""``[backup] before`` / ``after``: commands run around each backup step.

Each entry is one command line, split with shlex into an argv and run without a shell, in its
own process group (a timeout ends the hook and whatever it started), with the environment of
the backup plus variables naming what is being backed up:

=============================  ==========================================================
``GLACIER_BACKUP_HOOK``        ``before`` or ``after``
``GLACIER_BACKUP_HOST``        the host name in archive names
``GLACIER_BACKUP_CYCLE``       the cycle the increment goes into
``GLACIER_BACKUP_INCREMENT``   the increment's number in its cycle (0: the full)
``GLACIER_BACKUP_KIND``        ``full``, ``incremental`` or ``differential``
``GLACIER_BACKUP_SPOOL_DIR``   the spool directory
``GLACIER_BACKUP_RESULT``      after hooks only: ``success``, ``warnings`` or ``failure``
=============================  ==========================================================

``before`` hooks run in order and stop at the first that fails (exit status not 0, a timeout,
a program that cannot be started): the step then writes nothing and fails
(:class:`HookFailed`), unless ``before_failure = "warn"``. ``after`` hooks all run, whatever
happened (a failed ``before`` hook included, so that they can undo what it started); a failing
one is a warning. Hook output is logged (its tail), never printed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from localbackup.logevents import get_logger

log = get_logger(__name__)

OUTPUT_TAIL = 8000  # characters of a hook's output kept in the log
Phase = Literal["before", "after"]


class HookFailed(Exception):
    """A ``before`` hook failed: the backup step stops before writing anything."""


@dataclass(frozen=True, slots=True)
class HookRun:
    """What one hook did."""

    phase: Phase
    index: int  # its position in the configured list
    program: str
    returncode: int | None  # None: timed out or could not be started
    seconds: float
    output: str
    problem: str | None  # why it failed, None when it succeeded

    @property
    def ok(self) -> bool:
        """Whether the hook succeeded (exit status 0 within the timeout)."""
        return self.problem is None


def run_hook(
    phase: Phase, index: int, line: str, env: Mapping[str, str], timeout: float
) -> HookRun:
    """Run one hook command line (see the module docstring) and log what it did."""
    argv = shlex.split(line)
    program = argv[0]
    started = time.monotonic()
    code: int | None = None
    output = ""
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env, "GLACIER_BACKUP_HOOK": phase},
            start_new_session=True,  # a timeout ends the hook's whole process group
        )
    except OSError as exc:
        problem: str | None = f"cannot be started: {exc.strerror or exc}"
    else:
        try:
            out, _ = proc.communicate(timeout=timeout)
            code = proc.returncode
            problem = None if code == 0 else f"exit status {code}"
        except subprocess.TimeoutExpired:
            out = _kill(proc)
            problem = f"did not end within {timeout:g} s (ended)"
        output = out.decode(errors="replace")[-OUTPUT_TAIL:]
    run = HookRun(phase, index, program, code, time.monotonic() - started, output, problem)
    fields = {
        "hook": phase,
        "index": index,
        "program": program,
        "exit_code": code,
        "seconds": round(run.seconds, 3),
        "output": output,
    }
    if run.ok:
        log.info("backup.hook_done", **fields)
    else:
        log.warning("backup.hook_failed", problem=problem, **fields)
    return run


def _kill(proc: subprocess.Popen[bytes]) -> bytes:
    """End a hook that outlived its timeout, and its children: TERM, then KILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            continue
        return out
    out, _ = proc.communicate()
    return out


def describe(run: HookRun) -> str:
    """``before hook 1 (pg_dump): exit status 2``, for messages to the user: the position and
    the program, never the arguments (they may hold a password)."""
    return f"{run.phase} hook {run.index + 1} ({Path(run.program).name}): {run.problem}"


def run_before(
    commands: Sequence[str], env: Mapping[str, str], timeout: float, *, warn: bool
) -> list[str]:
    """Run the ``before`` hooks in order; the first failure raises :class:`HookFailed`, or with
    ``warn`` ends the hooks and is returned as a warning."""
    for i, line in enumerate(commands):
        run = run_hook("before", i, line, env, timeout)
        if not run.ok:
            text = describe(run)
            if not warn:
                raise HookFailed(f"{text}; nothing was backed up")
            return [text]
    return []


def run_after(
    commands: Sequence[str], env: Mapping[str, str], timeout: float, result: str
) -> list[str]:
    """Run every ``after`` hook; returns the failures as warnings."""
    env = {**env, "GLACIER_BACKUP_RESULT": result}
    problems = []
    for i, line in enumerate(commands):
        run = run_hook("after", i, line, env, timeout)
        if not run.ok:
            problems.append(describe(run))
    return problems

"""Kill ``glacier-backup`` for real at a named point (``localbackup/testpoints.py``).

A test starts the real command as a child process with ``GLACIER_BACKUP_TEST_PAUSE=POINT[:N]``;
the child freezes itself (SIGSTOP) when it reaches the point, and the test kills it with SIGKILL::

    config = write_config(tmp_path / "config.toml", {...})
    with PausedChild(glacier_backup(config, "upload"), "upload.after_complete", tmp_path) as child:
        child.kill_when_paused()
    # ... the state a kill -9 at that instant leaves; run the command again and check

Pause points: see docs/reliability.md. The child's stdout and stderr go to files next to the
pause file (``child.output()``), so a test can show them when the child did not get there.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.support.waiting import wait_for

PAUSE_ENV = "GLACIER_BACKUP_TEST_PAUSE"
PAUSE_FILE_ENV = "GLACIER_BACKUP_TEST_PAUSE_FILE"
_ids = itertools.count(1)


def glacier_backup(config: Path | None, *args: str) -> list[str]:
    """The argv of the installed ``glacier-backup`` command (JSON logs on stderr)."""
    script = Path(sys.executable).with_name("glacier-backup")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "watcher"]
    if config is not None:
        argv += ["--config", str(config)]
    return [*argv, "--log-format", "json", *args]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write a configuration dict (top-level keys, then one table per section) as TOML."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for section, table in config.items():
        if isinstance(table, dict):
            lines.append(f"\n[{section}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def uploaded_config(tmp_path: Path, src: Path, store: dict[str, Any]) -> Path:
    """A configuration (host ``h``, no encryption) backing up ``src`` into ``store``, whose open
    cycle is sealed and uploaded through the real command; its path."""
    config = write_config(
        tmp_path / "config.toml",
        {
            "state_dir": tmp_path / "state",
            "backup": {"sources": [str(src)], "spool_dir": tmp_path / "spool", "host": "h"},
            "encryption": {"mode": "none"},
            "store": store,
        },
    )
    for command in ("seal", "upload"):
        r = subprocess.run(glacier_backup(config, command), capture_output=True, check=False)
        assert r.returncode == 0, r.stderr.decode()
    return config


def _stopped(pid: int) -> bool:
    """Whether ``pid`` is stopped (Linux: /proc; elsewhere the pause file has to do)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    return stat.rsplit(")", 1)[1].split()[0] in ("T", "t")


class PausedChild:
    """``argv`` run until it reaches ``point`` (its ``nth`` arrival there), then killed."""

    def __init__(
        self,
        argv: list[str],
        point: str,
        workdir: Path,
        *,
        nth: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        n = next(_ids)
        self.point = point
        self.pause_file = workdir / f"paused-{n}"
        self._out = workdir / f"child-{n}.out"
        self._err = workdir / f"child-{n}.err"
        child_env = {**(env if env is not None else os.environ)}
        child_env[PAUSE_ENV] = f"{point}:{nth}"
        child_env[PAUSE_FILE_ENV] = str(self.pause_file)
        with open(self._out, "wb") as out, open(self._err, "wb") as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err, env=child_env)

    def output(self) -> str:
        """What the child printed so far (stdout, then stderr)."""
        return self._out.read_text(errors="replace") + self._err.read_text(errors="replace")

    def wait_paused(self, timeout: float = 120) -> None:
        """Block until the child is frozen at the point; fail (with its output) if it ended."""

        def paused() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the child exited {self.proc.returncode} before reaching {self.point}:\n"
                    + self.output()
                )
            return self.pause_file.exists() and _stopped(self.proc.pid)

        wait_for(paused, timeout, f"the child to pause at {self.point}")
        assert self.pause_file.read_text().split() == [self.point, str(self.proc.pid)]

    def resume(self, timeout: float = 300) -> int:
        """Let a paused child go on (SIGCONT) and wait for its exit code: the pause was then
        just a slow moment of a live process."""
        self.proc.send_signal(signal.SIGCONT)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL (a no-op if it already ended) and reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def kill_when_paused(self, timeout: float = 120) -> None:
        """:meth:`wait_paused`, then a real ``kill -9`` at exactly that point."""
        self.wait_paused(timeout)
        self.kill()
        assert self.proc.returncode == -signal.SIGKILL

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()


def run_until_killed(
    argv: list[str], point: str, workdir: Path, *, nth: int = 1, env: dict[str, str] | None = None
) -> PausedChild:
    """Run ``argv`` and SIGKILL it at ``point``; returns the (dead) child for its output."""
    with PausedChild(argv, point, workdir, nth=nth, env=env) as child:
        child.kill_when_paused()
    return child

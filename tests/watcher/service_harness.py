"""Run ``glacier-backup`` commands and the ``watch`` service as real processes for tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.waiting import WaitTimeout, wait_for

Event = dict[str, Any]

#: The installed console script, as a user runs it (next to the interpreter of the venv).
GLACIER_BACKUP = str(Path(sys.executable).with_name("glacier-backup"))


class Project:
    """A user's set-up in a temp dir: a source tree, a config, an age identity."""

    def __init__(
        self,
        root: Path,
        *,
        increments: int = 2,
        store: str | None = None,
        upload: str = "",
        level: int = 1,
    ) -> None:
        self.root = root
        self.src = root / "src"
        self.src.mkdir()
        self.spool = root / "spool"
        self.markers = self.spool / "markers"
        self.vault = root / "vault"
        self.identity = root / "identity.txt"
        subprocess.run(["age-keygen", "-o", str(self.identity)], check=True, capture_output=True)
        recipient = next(
            line.split(": ")[1]
            for line in self.identity.read_text().splitlines()
            if line.startswith("# public key: ")
        )
        store = store or f'type = "local"\npath = "{self.vault}"'
        self.config = root / "config.toml"
        self.config.write_text(
            f'state_dir = "{root / "state"}"\n'
            f'[backup]\nsources = ["{self.src}"]\nspool_dir = "{self.spool}"\n'
            f"increments_per_cycle = {increments}\ncompression_level = {level}\n"
            f'[watch]\nstop_timeout = "10s"\n'
            f'[encryption]\nrecipients = ["{recipient}"]\nidentity_file = "{self.identity}"\n'
            f"[store]\n{store}\n[upload]\n{upload}\n"
        )

    def cmd(self, *args: str) -> list[str]:
        return [
            GLACIER_BACKUP,
            "--config",
            str(self.config),
            "--log-format",
            "json",
            *args,
        ]

    def run(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.cmd(*args),
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
            env=env,
            input=input,
        )

    def backup(self) -> subprocess.CompletedProcess[str]:
        r = self.run("backup")
        assert r.returncode == 0, r.stderr
        return r

    def status(self) -> dict[str, Any]:
        r = self.run("status", "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    def start_service(self) -> Service:
        return Service(self.cmd("watch"))


class Service:
    """The ``watch`` service as a child process; its JSON log events are collected live."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str] | None = None,
        started: str | None = "watch.started",
    ) -> None:
        self.proc = subprocess.Popen(
            argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
        )
        self.events: list[Event] = []
        self.raw: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if started is not None:
            self.wait_for(lambda e: e["event"] == started, timeout=30)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._lock:
                self.raw.append(line)
                with contextlib.suppress(json.JSONDecodeError):
                    self.events.append(json.loads(line))

    def matching(self, pred: Callable[[Event], bool]) -> list[Event]:
        with self._lock:
            return [e for e in self.events if pred(e)]

    def wait_for(self, pred: Callable[[Event], bool], timeout: float = 60, count: int = 1) -> Event:
        """The ``count``-th event matching ``pred``; fails at once if the service exits first."""

        def found() -> list[Event]:
            hits = self.matching(pred)
            if len(hits) < count and self.proc.poll() is not None:
                self._reader.join(timeout=10)  # the pipe is at EOF: every line has been read
                hits = self.matching(pred)
                if len(hits) < count:
                    raise AssertionError(
                        f"service exited {self.proc.returncode}:\n{''.join(self.raw)}"
                    )
            return hits if len(hits) >= count else []

        try:
            return wait_for(found, timeout, f"{count} matching event(s)")[count - 1]
        except WaitTimeout as exc:
            raise AssertionError(f"{exc}; events so far:\n{''.join(self.raw)}") from None

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return rc

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=5)

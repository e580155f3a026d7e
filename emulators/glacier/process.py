"""Run the emulator as a real subprocess for tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .control_client import ControlClient

STARTUP_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class Emulator:
    """A running emulator process."""

    endpoint_url: str
    control: ControlClient
    process: subprocess.Popen[str]
    data_dir: Path

    @property
    def pid(self) -> int:
        """Process id (e.g. to read /proc/PID/status)."""
        return self.process.pid


def _wait_for_banner(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    result: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("listening on "):
                result.append(line.removeprefix("listening on ").strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(STARTUP_TIMEOUT)
    if not result:
        process.kill()
        raise RuntimeError("the Glacier emulator did not start")
    return result[0]


def _wait_until_answering(control: ControlClient) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            control.state()
            return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def run_emulator(
    data_dir: Path,
    *,
    tier_delays: Mapping[str, float] | None = None,
    output_ttl: float | None = None,
    freeze_clock: bool = False,
    python: str = sys.executable,
) -> Iterator[Emulator]:
    """Start ``python -m emulators.glacier`` on a free 127.0.0.1 port; stop it on exit.

    ``tier_delays`` maps ``Expedited`` / ``Standard`` / ``Bulk`` to seconds of (virtual)
    time between InitiateJob and completion; ``output_ttl`` is how long finished jobs last.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [python, "-m", "emulators.glacier", "--host", "127.0.0.1", "--port", "0"]
    argv += ["--data", str(data_dir), "--tier-delays", json.dumps(dict(tier_delays or {}))]
    if output_ttl is not None:
        argv += ["--output-ttl", str(output_ttl)]
    if freeze_clock:
        argv.append("--freeze-clock")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    try:
        endpoint_url = _wait_for_banner(process)
        control = ControlClient(endpoint_url)
        _wait_until_answering(control)
        yield Emulator(endpoint_url, control, process, data_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

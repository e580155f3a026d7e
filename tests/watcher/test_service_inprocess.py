"""The service run in-process: its stop deadline and its configuration reload."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.support.waiting import async_wait_for
from watcher import service as service_mod
from watcher.config import AppConfig, config_from_dict
from watcher.service import Service


def _config(root: Path, markers: str = "markers", stop_timeout: str = "1s") -> AppConfig:
    (root / "src").mkdir(exist_ok=True)
    return config_from_dict(
        {
            "state_dir": str(root / "state"),
            "backup": {"sources": [str(root / "src")], "spool_dir": str(root / "spool")},
            "watch": {
                "marker_dir": str(root / markers),
                "stop_timeout": stop_timeout,
                "maintenance_every": "1h",
            },
            "encryption": {"mode": "none"},
            "store": {"type": "local", "path": str(root / "vault")},
        },
        root / "config.toml",
    )


def _armed(loop: asyncio.AbstractEventLoop, callback: object) -> list[asyncio.TimerHandle]:
    """The timers still due to call ``callback`` on ``loop`` (asyncio keeps them in a heap)."""
    scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
    return [h for h in scheduled if h._callback is callback and not h.cancelled()]  # type: ignore[attr-defined]


async def _started(logs: list[dict[str, object]]) -> None:
    await async_wait_for(
        lambda: any(e["event"] == "watch.started" for e in logs), 30, "watch.started"
    )


def test_a_clean_stop_cancels_the_stop_timeout_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a clean stop the deadline must not fire (it calls os._exit) while the loop lives on:
    no timer for it is left armed (checked directly rather than by waiting past it)."""
    fired: list[bool] = []

    def stop_now() -> None:
        fired.append(True)

    monkeypatch.setattr(service_mod, "_stop_now", stop_now)
    svc = Service(_config(tmp_path, stop_timeout="30s"))

    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        with capture_logs() as logs:
            runner = asyncio.create_task(svc.run())
            await _started(logs)
            svc.request_stop("test")
            assert len(_armed(loop, stop_now)) == 1  # the deadline is armed by the stop ...
            rc = await asyncio.wait_for(runner, 10)
        assert _armed(loop, stop_now) == []  # ... and disarmed by the clean end
        return rc

    assert asyncio.run(scenario()) == 0
    assert fired == []


def test_reload_keeps_the_watched_marker_dir_until_a_restart(tmp_path: Path) -> None:
    """Seals and filing must keep using the directory the observer watches."""
    old = _config(tmp_path)
    new = _config(tmp_path, markers="elsewhere", stop_timeout="5s")
    svc = Service(old, reload=lambda: new)
    svc.reload()
    assert svc.config.watch.marker_dir == tmp_path / "markers"
    assert svc.config.watch.stop_timeout == 5.0  # the rest of the new config applies


def test_watch_keeps_the_deadline_for_the_wait_on_worker_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``watch`` (serve) still bounds what runs after the service stopped (asyncio.run waits for
    worker threads then) by the rest of stop_timeout."""
    fired: list[bool] = []
    monkeypatch.setattr(service_mod, "_stop_now", lambda: fired.append(True))

    async def scenario() -> int:
        with capture_logs() as logs:
            runner = asyncio.create_task(service_mod.serve(_config(tmp_path, stop_timeout="0.3s")))
            await _started(logs)
            os.kill(os.getpid(), signal.SIGTERM)  # the service's own handler: request_stop
            rc = await asyncio.wait_for(runner, 10)
        # the loop lives on, as it does while asyncio.run waits for a worker thread
        await async_wait_for(lambda: fired, 10, "the re-armed stop deadline to fire")
        return rc

    assert asyncio.run(scenario()) == 0
    assert fired == [True]

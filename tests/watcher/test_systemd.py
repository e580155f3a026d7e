"""systemd integration: the notify protocol over a real socket, and the units we install."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.waiting import wait_for
from tests.watcher.service_harness import Project, Service

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def test_service_notifies_ready_status_watchdog_and_stopping(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0)
    addr = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(addr)
    sock.settimeout(0.2)
    env = {"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "400000"}  # ping every 0.2 s
    messages: list[str] = []

    def count(what: str) -> int:
        return sum(what in m for m in messages)

    def drain(until: str, at_least: int = 1, timeout: float = 30) -> None:
        """Receive notifications until ``at_least`` of them contain ``until``."""

        def enough() -> bool:
            if count(until) >= at_least:
                return True
            with contextlib.suppress(TimeoutError):
                messages.append(sock.recv(4096).decode())
            return count(until) >= at_least

        wait_for(enough, timeout, f"{at_least} x {until!r} among {messages}", interval=0)

    svc = Service(p.cmd("watch"), env={**os.environ, **env})
    try:
        drain("READY=1")
        ready = next(m for m in messages if "READY=1" in m)
        assert "STATUS=watching" in ready
        drain("WATCHDOG=1", at_least=count("WATCHDOG=1") + 2)  # it keeps pinging
        (p.src / "f").write_text("x")
        p.backup()
        drain("STATUS=handling cycle-")
    finally:
        assert svc.stop() == 0
    drain("STOPPING=1")
    sock.close()


def test_service_install_writes_units_and_dry_run_prints_them(tmp_path: Path) -> None:
    p = Project(tmp_path)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    dry = subprocess.run(
        p.cmd("service", "install", "--dry-run"),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert dry.returncode == 0, dry.stderr
    assert "Type=notify" in dry.stdout and "OnCalendar=daily" in dry.stdout
    assert f"--config {p.config}" in dry.stdout
    assert not (tmp_path / "xdg").exists()
    r = subprocess.run(
        p.cmd("service", "install", "--timer", "hourly"),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    units = tmp_path / "xdg" / "systemd" / "user"
    service = (units / "glacier-backup.service").read_text()
    assert "ExecStart=" in service and " watch" in service and "WatchdogSec=" in service
    assert "OnCalendar=hourly" in (units / "glacier-backup-backup.timer").read_text()
    assert "SuccessExitStatus=3" in (units / "glacier-backup-backup.service").read_text()
    assert "systemctl --user enable --now" in r.stdout and "loginctl enable-linger" in r.stdout
    exe = service.split("ExecStart=")[1].split()[0]
    assert Path(exe).is_absolute()
    assert subprocess.run([exe, "--help"], capture_output=True, check=False).returncode == 0


def test_installed_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze not installed: the units are not verified by systemd")
    p = Project(tmp_path)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    r = subprocess.run(
        p.cmd("service", "install", "--timer", "hourly"),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    units = sorted((tmp_path / "xdg" / "systemd" / "user").glob("*.*"))
    assert {u.suffix for u in units} == {".service", ".timer"}
    verify = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stderr.strip() == "", verify.stderr


def test_built_in_schedule_runs_backups_inside_the_service(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0)
    p.config.write_text(p.config.read_text().replace("[watch]\n", '[watch]\nbackup_every = "1s"\n'))
    (p.src / "f").write_text("scheduled")
    svc = p.start_service()
    try:
        svc.wait_for(lambda e: e["event"] == "watch.scheduled_backup_done", count=2)
        svc.wait_for(lambda e: e["event"] == "watch.uploaded", count=2)
    finally:
        assert svc.stop() == 0
    assert p.status()["store_usage"]["archives"] >= 2

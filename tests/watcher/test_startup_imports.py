"""Start-up cost: ``backup`` and ``status`` load only what their work needs.

A backup run by a timer every hour and a ``status`` typed by a user must not pay for the cloud
SDKs, the file watcher or, when nothing is logged, the log renderer. Each case runs the real
command in a fresh interpreter with ``-X importtime`` and reads which modules it imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.watcher.service_harness import Project

CLOUD_AND_WATCHER = ("aiobotocore", "botocore", "aiohttp", "boto3", "watchdog")
RENDERING = ("structlog", "rich")


def imported(p: Project, *args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The top-level packages a fresh ``glacier-backup ARGS`` imported, and its result."""
    argv = [sys.executable, "-X", "importtime", *p.cmd(*args)[1:]]
    r = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 0, r.stderr
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in r.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "watcher" in names  # the run did import through the real entry point
    return names, r


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path)
    (p.src / "a.txt").write_text("alpha\n")
    return p


@pytest.mark.parametrize("command", [("backup",), ("status",), ("status", "--json")])
def test_backup_and_status_import_no_cloud_sdk_and_no_file_watcher(
    project: Project, command: tuple[str, ...]
) -> None:
    names, _ = imported(project, *command)
    assert not names & set(CLOUD_AND_WATCHER), sorted(names & set(CLOUD_AND_WATCHER))


@pytest.mark.parametrize("command", [("backup",), ("status",)])
def test_nothing_logged_means_no_log_renderer_imported(
    project: Project, command: tuple[str, ...]
) -> None:
    names, r = imported(project, "--log-level", "warning", *command)
    assert not names & set(RENDERING), sorted(names & set(RENDERING))
    assert not [line for line in r.stderr.splitlines() if not line.startswith("import time:")]


def test_logged_events_still_reach_structlog_with_their_fields(project: Project) -> None:
    names, r = imported(project, "backup")
    assert "structlog" in names
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    planned = next(e for e in events if e["event"] == "backup.planned")
    assert planned["level"] == "info" and planned["kind"] == "full"
    done = [e for e in events if e.get("cycle") and e["event"] != "backup.planned"]
    assert done, events  # events inside the step carry the bound cycle id

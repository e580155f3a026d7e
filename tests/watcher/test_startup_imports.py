"""Start-up cost: ``backup`` and ``status`` load only what their work needs.

A backup run by a timer every hour and a ``status`` typed by a user must not pay for the cloud
SDKs, the file watcher, the cipher library (no key is used), rich (no progress bar off a
terminal), the package metadata (only ``--version`` reads it) or, when nothing is logged, the
log library. Each case runs the command's real entry point (what the ``glacier-backup`` script
calls) in a fresh interpreter, on a local-store configuration, and reads the modules it had
loaded when it exited. No timing is asserted: the modules loaded are what decides the time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.watcher.service_harness import Project

# What neither command needs on a local store, with the issue that once pulled it in:
UNNEEDED = (
    "aiobotocore",  # uploader.maintenance / stores.glacier / restore fronts (issue 11)
    "botocore",
    "aiohttp",
    "boto3",
    "watchdog",  # watcher.markers, for the service only
    "cryptography",  # the recipient check of the configuration needs bech32 alone
    "rich",  # progress bars on a terminal; structlog is loaded without it
    "importlib.metadata",  # the version, for --version only
)
LOG_LIBRARY = "structlog"

# Writes the loaded module names at exit (after the command's own sys.exit), then runs the
# entry point of the console script with the rest of the command line.
_DRIVER = """
import atexit, sys
out = sys.argv.pop(1)
def dump():
    with open(out, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
atexit.register(dump)
from watcher.cli import run
run()
"""


def loaded(p: Project, *args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The modules a fresh ``glacier-backup ARGS`` had loaded at exit, and its result."""
    out = p.root / "modules.txt"
    argv = [sys.executable, "-c", _DRIVER, str(out), *p.cmd(*args)[1:]]
    r = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 0, r.stderr
    modules = set(out.read_text().split())
    assert "watcher.cli" in modules  # the run did go through the real entry point
    return modules, r


def among(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The ``names`` (packages with their submodules) that are in ``modules``."""
    return sorted(n for n in names if any(m == n or m.startswith(n + ".") for m in modules))


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path)  # a local store, an age recipient
    (p.src / "a.txt").write_text("alpha\n")
    return p


@pytest.mark.parametrize("command", [("backup",), ("status",), ("status", "--json")])
def test_backup_and_status_load_no_sdk_watcher_cipher_or_rich(
    project: Project, command: tuple[str, ...]
) -> None:
    if command[0] == "status":
        assert project.backup().returncode == 0  # something to report on
    modules, _ = loaded(project, *command)
    assert among(modules, UNNEEDED) == []
    assert "localbackup" in modules and "uploader.config" in modules  # the config was read


@pytest.mark.parametrize("command", [("backup",), ("status",)])
def test_nothing_logged_means_no_log_library_loaded(
    project: Project, command: tuple[str, ...]
) -> None:
    modules, r = loaded(project, "--log-level", "warning", *command)
    assert among(modules, (LOG_LIBRARY, *UNNEEDED)) == []
    assert r.stderr == ""  # nothing to say, and nothing said


def test_logged_events_still_reach_structlog_with_their_fields(project: Project) -> None:
    modules, r = loaded(project, "backup")
    assert LOG_LIBRARY in modules and "rich" not in modules
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    planned = next(e for e in events if e["event"] == "backup.planned")
    assert planned["level"] == "info" and planned["kind"] == "full"
    done = [e for e in events if e.get("cycle") and e["event"] != "backup.planned"]
    assert done, events  # events inside the step carry the bound cycle id


def test_a_progress_bar_still_gets_rich_after_the_log_library(project: Project) -> None:
    code = (
        "from localbackup.logevents import import_structlog\n"
        "import_structlog()\n"
        "from rich.progress import Progress\n"
        "import structlog, sys\n"
        "print(structlog.get_config()['processors'] is not None, 'rich' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["True", "True"]

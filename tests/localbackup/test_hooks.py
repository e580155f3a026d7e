"""``[backup] before`` / ``after`` hooks through the real ``glacier-backup backup`` process."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from localbackup.config import backup_config
from localbackup.configkit import ConfigError, Section
from tests.watcher.service_harness import Project

DUMP = """\
import json, os, sys, pathlib
out = pathlib.Path(sys.argv[1])
env = {k: v for k, v in os.environ.items() if k.startswith("GLACIER_BACKUP_")}
with out.open("a") as f:
    f.write(json.dumps(env) + "\\n")
print("hook says hello")
sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
"""


def _hooks(p: Project, **keys: object) -> Path:
    """Put ``keys`` into [backup]; returns the file the dump hook appends to."""
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    p.config.write_text(p.config.read_text().replace("[backup]\n", "[backup]\n" + lines, 1))
    return p.root / "hook-calls.jsonl"


def _dump(p: Project, code: int = 0) -> str:
    script = p.root / "dump.py"
    script.write_text(DUMP)
    return f"{sys.executable} {script} {p.root / 'hook-calls.jsonl'} {code}"


def _calls(p: Project) -> list[dict[str, str]]:
    f = p.root / "hook-calls.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []


def _cycles(p: Project) -> list[Path]:
    d = p.spool / "cycles"
    return sorted(c for c in d.iterdir() if not c.name.startswith(".")) if d.is_dir() else []


def _events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_hooks_run_around_the_step_and_name_cycle_and_increment(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=2)
    (p.src / "a.txt").write_text("alpha\n")
    _hooks(p, before=[_dump(p)], after=[_dump(p)])
    r = p.run("backup")
    assert r.returncode == 0, r.stderr
    r2 = p.run("backup")
    assert r2.returncode == 0, r2.stderr
    (cycle,) = _cycles(p)
    before0, after0, before1, after1 = _calls(p)
    assert before0["GLACIER_BACKUP_HOOK"] == "before" and after0["GLACIER_BACKUP_HOOK"] == "after"
    assert before0["GLACIER_BACKUP_CYCLE"] == after0["GLACIER_BACKUP_CYCLE"] == cycle.name
    assert (before0["GLACIER_BACKUP_INCREMENT"], before0["GLACIER_BACKUP_KIND"]) == ("0", "full")
    assert (before1["GLACIER_BACKUP_INCREMENT"], before1["GLACIER_BACKUP_KIND"]) == (
        "1",
        "incremental",
    )
    assert after1["GLACIER_BACKUP_RESULT"] == "success"
    assert "GLACIER_BACKUP_RESULT" not in before1
    assert before0["GLACIER_BACKUP_SPOOL_DIR"] == str(p.spool)
    # the output is logged, not printed
    done = [e for e in _events(r.stderr) if e["event"] == "backup.hook_done"]
    assert [e["hook"] for e in done] == ["before", "after"]
    assert "hook says hello" in str(done[0]["output"])
    assert "hook says hello" not in r.stdout


def test_a_failing_before_hook_fails_the_step_and_writes_nothing(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=2)
    (p.src / "a.txt").write_text("alpha\n")
    _hooks(p, before=["true", _dump(p, 3)], after=[_dump(p)])
    r = p.run("backup")
    assert r.returncode == 1
    assert "before hook 2" in r.stderr and "exit status 3" in r.stderr
    assert "nothing was backed up" in r.stderr
    assert _cycles(p) == []  # no cycle, no increment
    _, after = _calls(p)
    assert after["GLACIER_BACKUP_RESULT"] == "failure"  # after hooks may undo what before did


def test_before_failure_warn_backs_up_and_exits_3(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=2)
    (p.src / "a.txt").write_text("alpha\n")
    _hooks(p, before=[_dump(p, 1)], after=[_dump(p)], before_failure="warn")
    r = p.run("backup")
    assert r.returncode == 3, r.stderr
    assert "hook: before hook 1" in r.stdout
    (cycle,) = _cycles(p)
    assert (cycle / "inc-0000.tar.zst").is_file()
    assert _calls(p)[-1]["GLACIER_BACKUP_RESULT"] == "warnings"


def test_a_hook_that_outlives_its_timeout_is_ended_with_what_it_started(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=2)
    (p.src / "a.txt").write_text("alpha\n")
    pid_file = p.root / "grandchild.pid"
    script = p.root / "slow.py"
    script.write_text(
        "import subprocess, sys, time, pathlib\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))\n"
        "time.sleep(600)\n"
    )
    _hooks(p, before=[f"{sys.executable} {script}"], hook_timeout="2s")
    r = p.run("backup")
    assert r.returncode == 1
    assert "did not end within 2 s" in r.stderr
    assert _cycles(p) == []
    grandchild = int(pid_file.read_text())
    _wait_until(lambda: _ended(grandchild))  # ended with the hook's whole process group


def _ended(pid: int) -> bool:
    """Gone, or a zombie waiting for whoever inherited it to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_failing_after_hook_is_a_warning(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=2)
    (p.src / "a.txt").write_text("alpha\n")
    _hooks(p, after=["/no/such/program --flag"])
    r = p.run("backup")
    assert r.returncode == 3
    assert "after hook 1 (program): cannot be started" in r.stdout
    assert "--flag" not in r.stdout + r.stderr  # the arguments may hold a secret
    assert len(_cycles(p)) == 1


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ({"before": ["pg_dump 'unclosed"]}, "backup.before[0]", "cannot be split"),
        ({"after": ["  "]}, "backup.after[0]", "is empty"),
        ({"before_failure": "ignore"}, "backup.before_failure", "must be one of"),
        ({"hook_timeout": "0s"}, "backup.hook_timeout", "positive"),
    ],
)
def test_bad_hook_config_names_the_key(table: dict[str, object], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        backup_config(Section({"sources": ["/x"], **table}, "backup", Path("/c.toml")))
    assert err.value.key == key and message in err.value.message

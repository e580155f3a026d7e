"""README.md's examples run exactly as written (issue 13), in a fresh home directory, in order.

Every indented code line of the README is a command a reader may paste. The two set-up commands
(``./scripts/demo``, ``./scripts/test``: this suite is the second) and the systemd commands (no
systemd user session here) are the only ones not run; each of the others must succeed.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUP = ("./scripts/demo", "./scripts/test")
NEEDS_SYSTEMD = ("systemctl ", "loginctl ")


def code_lines(markdown: str) -> list[str]:
    """The lines of the indented code blocks, in order."""
    lines, previous_blank, in_block = [], True, False
    for line in markdown.splitlines():
        if line.startswith("    ") and (previous_blank or in_block) and line.strip():
            lines.append(line.strip())
            in_block = True
        elif line.strip():
            in_block = False
        previous_blank = not line.strip()
    return lines


def test_the_readme_keeps_two_setup_commands_and_no_link_outside() -> None:
    text = (ROOT / "README.md").read_text()
    lines = code_lines(text)
    assert [c for c in lines if c.startswith("./")] == list(SETUP)
    assert "http://" not in text and "https://" not in text and "](../" not in text


def test_the_readme_examples_work_as_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    docs = home / "Documents" / "docs"
    docs.mkdir(parents=True)
    (docs / "a.txt").write_text("a\n")
    (docs / "b.md").write_text("b\n")
    (home / "Documents" / "report-2026.txt").write_text("the report\n")
    commands = [
        c for c in code_lines((ROOT / "README.md").read_text())
        if c not in SETUP and not c.startswith(NEEDS_SYSTEMD)
    ]  # fmt: skip
    assert any(c.startswith("glacier-backup restore") for c in commands)
    script = "\n".join(
        # The command on a line of its own: a trailing comment must not swallow the check.
        f"echo {shlex.quote('$ ' + c)}\n{c}\n"
        f"if [ $? -ne 0 ]; then echo {shlex.quote('FAILED: ' + c)}; exit 1; fi"
        for c in commands
    )
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "USER": "reader"}
    assert (ROOT / ".venv/bin/glacier-backup").exists()  # what the README's export finds
    r = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "report-2026.txt" in r.stdout  # files 'report*.txt' found it
    in_home = str(home).lstrip("/")
    restored_docs = home / "restored-docs" / in_home / "Documents" / "docs"
    assert sorted(p.name for p in restored_docs.iterdir()) == ["a.txt", "b.md"]
    assert not (home / "restored-docs" / in_home / "Documents" / "report-2026.txt").exists()
    assert (home / "restored" / in_home / "Documents" / "report-2026.txt").read_text() == (
        "the report\n"
    )
    assert (home / "restored" / "etc" / "hosts").read_bytes() == Path("/etc/hosts").read_bytes()
    assert (home / "key.txt").stat().st_mode & 0o777 == 0o600
    assert os.path.isdir(home / "restored-spool") and os.path.isdir(home / "restored-first")

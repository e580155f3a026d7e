"""No silent skips: every skip reason must match an entry of a reviewed allow-list.

``scripts/test`` runs pytest with ``--skip-allowlist tests/skip-allowlist.txt``; a test skipped
for a reason no entry matches fails the run (after it finished, with the list of offenders).
The allow-list file holds one regular expression per line (matched with ``re.search`` against
the skip reason), each under a ``#`` comment saying why that skip is acceptable; blank lines are
ignored. Expected failures (xfail) are not skips and need no entry.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def load_allowlist(path: Path) -> list[re.Pattern[str]]:
    """The entries of an allow-list file; an entry without a comment above it is an error."""
    patterns: list[re.Pattern[str]] = []
    explained = False
    for n, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text:
            explained = False
        elif text.startswith("#"):
            explained = True
        elif not explained:
            raise pytest.UsageError(f"{path}:{n}: every entry needs a '# why' comment above it")
        else:
            patterns.append(re.compile(text))
    return patterns


def skip_reason(report: pytest.TestReport) -> str:
    """The reason a skipped test report gives (``pytest.skip("...")`` / ``skipif(reason=...)``)."""
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


@dataclass(eq=False)  # a plugin object: hashed by identity
class SkipAudit:
    """A pytest plugin: collects the session's skips and fails the run for unlisted ones."""

    allowed: list[re.Pattern[str]]
    skips: list[tuple[str, str]] = field(default_factory=list)  # (nodeid, reason)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            self.skips.append((report.nodeid, skip_reason(report)))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.unlisted() and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.skips:
            terminalreporter.section("skips by reason (checked against the allow-list)")
            for line in self.summary():
                terminalreporter.write_line(line)

    def unlisted(self) -> list[tuple[str, str]]:
        return [(n, r) for n, r in self.skips if not any(p.search(r) for p in self.allowed)]

    def summary(self) -> list[str]:
        counts = Counter(r for _, r in self.skips)
        lines = [f"{n:4d} x {r}" for r, n in sorted(counts.items(), key=lambda x: -x[1])]
        bad = self.unlisted()
        if bad:
            lines.append("")
            lines.append(
                f"{len(bad)} skip(s) for a reason not on the allow-list (failing the run):"
            )
            lines += [f"  {nodeid}: {reason}" for nodeid, reason in bad]
        return lines

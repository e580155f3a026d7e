"""Numbers and times as a person reads them: sizes in binary units, local times with their zone,
counts with the right plural. ``--json`` output never goes through here (ISO times in UTC,
bytes as integers)."""

from __future__ import annotations

from datetime import UTC, datetime

from localbackup.configkit import format_duration, format_size

__all__ = ["ago", "count", "iso", "size", "when"]

size = format_size


def count(n: int, word: str, plural: str | None = None) -> str:
    """``1 archive``, ``2 archives``, ``0 archives`` (with ``plural`` for irregular words)."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def when(t: datetime) -> str:
    """A moment in local time with its zone: ``2026-11-26 05:00 CET``."""
    return t.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def ago(t: datetime, now: datetime) -> str:
    """How long before ``now``: ``3h ago``, ``2d ago``, ``just now``."""
    seconds = (now - t).total_seconds()
    if seconds < 60:
        return "just now" if seconds >= 0 else f"in {format_duration(-seconds)}"
    for unit in (7 * 86400, 86400, 3600, 60):  # the largest whole unit
        if seconds >= unit:
            return f"{format_duration(seconds // unit * unit)} ago"
    raise AssertionError("unreachable")  # pragma: no cover


def iso(t: datetime | None) -> str | None:
    """A time for JSON output: ISO 8601 in UTC (None stays None)."""
    return None if t is None else t.astimezone(UTC).isoformat()

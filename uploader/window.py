"""``[upload] window = "01:00-07:00"``: the hours of the day in which uploads may run.

Local time, start inclusive, end exclusive; a window may cross midnight ("22:00-06:00"). An
upload starts only inside the window and pauses at its end at the next part boundary (its parts
are kept in the catalogue and in the store); the next window resumes it. Pure: every question
takes ``now`` (an aware datetime: the local time zone is the one of ``now``); :func:`local_now`
is the clock the program passes (a time zone with its daylight-saving rules, so that the next
window is right across a change of offset).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def local_zone() -> tzinfo:
    """The machine's time zone with its rules (``TZ``, else /etc/localtime), else its offset."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only where a window is used

    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError, ZoneInfoNotFoundError):
        fixed = datetime.now().astimezone().tzinfo
        assert fixed is not None
        return fixed


def local_now() -> datetime:
    """Now, in the machine's local time zone."""
    return datetime.now(local_zone())


class WindowError(ValueError):
    """A window that cannot be parsed or is empty."""


@dataclass(frozen=True, slots=True)
class UploadWindow:
    """Daily hours ``start``..``end`` (local time) in which uploads may run."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> UploadWindow:
        """``"HH:MM-HH:MM"``; raises :class:`WindowError` naming the problem."""
        m = _WINDOW.match(text)
        if m is None:
            raise WindowError(f'not a window: {text!r} (use "HH:MM-HH:MM", e.g. "01:00-07:00")')
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        for h, mi in ((h1, m1), (h2, m2)):
            if h > 24 or mi > 59 or (h == 24 and mi):
                raise WindowError(f"not a time of day in {text!r}: {h:02d}:{mi:02d}")
        start, end = time(h1 % 24, m1), time(h2 % 24, m2)
        if start == end:
            raise WindowError(
                f"{text!r} is empty (start equals end); to upload at any time, leave window out"
            )
        return cls(start, end)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def is_open(self, now: datetime) -> bool:
        """Whether uploads may run at ``now`` (its own, local, time of day)."""
        t = now.time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def _at(self, now: datetime, t: time, days: int) -> datetime:
        day = now.date() + timedelta(days=days)
        return datetime.combine(day, t, tzinfo=now.tzinfo)

    def next_open(self, now: datetime) -> datetime:
        """When uploads may next run: ``now`` itself inside the window, else the next start."""
        if self.is_open(now):
            return now
        today = self._at(now, self.start, 0)
        return today if today > now else self._at(now, self.start, 1)

    def closes_at(self, now: datetime) -> datetime | None:
        """When the window that is open at ``now`` ends (None when it is closed)."""
        if not self.is_open(now):
            return None
        today = self._at(now, self.end, 0)
        return today if today > now else self._at(now, self.end, 1)

    def seconds_until_open(self, now: datetime) -> float:
        """Seconds from ``now`` until uploads may run (0 inside the window)."""
        # in UTC: two times of one zone subtract as wall clocks, blind to a change of offset
        return max(0.0, (self.next_open(now) - now.astimezone(UTC)).total_seconds())

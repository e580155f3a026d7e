"""A virtual clock so tests can move time forward instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class VirtualClock:
    """Wall-clock time plus an offset that tests advance; it can also be frozen."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = 0.0
        self._frozen_at: float | None = None

    def now(self) -> float:
        """Current virtual time, seconds since the epoch."""
        if self._frozen_at is not None:
            return self._frozen_at
        return self._source() + self._offset

    def advance(self, seconds: float) -> float:
        """Move virtual time forward (never backward) and return the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        if self._frozen_at is not None:
            self._frozen_at += seconds
        else:
            self._offset += seconds
        return self.now()

    def freeze(self) -> float:
        """Stop time at its current value."""
        self._frozen_at = self.now()
        return self._frozen_at

    def unfreeze(self) -> float:
        """Let time run again from where it was frozen."""
        if self._frozen_at is not None:
            self._offset = self._frozen_at - self._source()
            self._frozen_at = None
        return self.now()

    @property
    def frozen(self) -> bool:
        """Whether time is currently stopped."""
        return self._frozen_at is not None


def iso8601(ts: float, *, millis: bool = True) -> str:
    """AWS's JSON timestamp form, e.g. ``2013-03-20T17:03:43.221Z``."""
    dt = datetime.fromtimestamp(ts, UTC)
    if millis:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso8601(text: str) -> float:
    """Parse an ISO 8601 UTC timestamp (with or without fractions) to epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

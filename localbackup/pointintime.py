"""Which cycle and which increment a restore brings back, and which increments it applies.

Pure functions over cycle ids and increment manifests: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Protocol, TypeVar

from localbackup.formats import IncrementKind, IncrementManifest

__all__ = [
    "LATEST",
    "PointInTimeError",
    "choose_cycle",
    "choose_increment",
    "increment_chain",
    "parse_at",
]

LATEST = "latest"
_NUMBER = re.compile(r"^\d{1,6}$")


class PointInTimeError(ValueError):
    """The requested cycle or point in time does not exist; the message says what does."""


class PointInTime(Protocol):
    """An increment as far as choosing one goes: an increment manifest, or the hot copy of an
    increment's index in the catalogue."""

    @property
    def number(self) -> int:
        """The increment's number in its cycle (0: the full)."""
        ...

    @property
    def finished_at(self) -> datetime:
        """When the increment was finished (aware)."""
        ...


P = TypeVar("P", bound=PointInTime)


def parse_at(text: str, local_tz: tzinfo | None = None) -> int | datetime:
    """``--at``: an increment number (``3``) or an ISO 8601 date/time.

    A time without an offset is local time (``local_tz``, or the system's zone when None); a
    date alone means midnight at the start of that day; ``Z`` means UTC.
    """
    text = text.strip()
    if _NUMBER.match(text):
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise PointInTimeError(
            f"--at {text!r} is neither an increment number nor an ISO date/time "
            "(e.g. 3, 2026-11-26, 2026-11-26T04:30, 2026-11-26T04:30:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=local_tz) if local_tz is not None else when.astimezone()
    return when


def choose_cycle(cycle_ids: Sequence[str], wanted: str | None) -> str:
    """``CYCLE`` or ``latest`` (also when None) among the available cycle ids."""
    if not cycle_ids:
        raise PointInTimeError("there is no cycle to restore from")
    if wanted is None or wanted == LATEST:
        return max(cycle_ids)
    if wanted in cycle_ids:
        return wanted
    shown = ", ".join(sorted(cycle_ids)[-5:])
    raise PointInTimeError(f"no cycle {wanted!r} (the newest are: {shown})")


def choose_increment(increments: Sequence[P], at: int | datetime | None) -> P:
    """The increment for ``--at``: its number, the newest finished at or before a time (naive:
    local time), or (None) the last one."""
    if not increments:
        raise PointInTimeError("the cycle has no complete increment")
    if at is None:
        return increments[-1]
    if isinstance(at, int):
        for inc in increments:
            if inc.number == at:
                return inc
        raise PointInTimeError(
            f"no increment {at} in this cycle (it has {increments[0].number}.."
            f"{increments[-1].number})"
        )
    if at.tzinfo is None:
        at = at.astimezone()  # naive means local time, as in parse_at
    done = [inc for inc in increments if inc.finished_at <= at]
    if not done:
        first = increments[0].finished_at.isoformat()
        raise PointInTimeError(
            f"no increment finished at or before {at.isoformat()} (the first finished at {first})"
        )
    return max(done, key=lambda inc: (inc.finished_at, inc.number))


def increment_chain(increments: Sequence[IncrementManifest], number: int) -> tuple[int, ...]:
    """The increments to apply, in order, to rebuild increment ``number``.

    Follows each manifest's ``base`` back to the full: ``0, 1, ..., N`` for incremental
    cycles, ``0, N`` for differential ones.
    """
    by_number = {inc.number: inc for inc in increments}
    chain: list[int] = []
    current: int | None = number
    while current is not None:
        inc = by_number.get(current)
        if inc is None:
            raise PointInTimeError(f"increment {current} is missing from the cycle")
        if chain and current >= chain[-1]:
            raise PointInTimeError(f"increment {chain[-1]} has an invalid base {current}")
        chain.append(current)
        if inc.base is None and inc.kind != IncrementKind.FULL:
            raise PointInTimeError(f"increment {current} ({inc.kind}) names no base")
        current = inc.base
    return tuple(reversed(chain))

"""Choosing the cycle, the increment and the increments to apply: table tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from localbackup.formats import CycleFile, IncrementManifest
from localbackup.pointintime import (
    PointInTimeError,
    choose_cycle,
    choose_increment,
    increment_chain,
    parse_at,
)

T0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


def inc(number: int, kind: str, base: int | None, hours: float) -> IncrementManifest:
    f = CycleFile(f"inc-{number:04d}.tar.zst", 1, "0" * 64)
    return IncrementManifest(
        number,
        kind,
        base,
        T0 + timedelta(hours=hours),
        T0 + timedelta(hours=hours, minutes=5),
        f,
        f,
    )


CHAINED = [inc(0, "full", None, 0), inc(1, "incremental", 0, 24), inc(2, "incremental", 1, 48)]
DIFFERENTIAL = [
    inc(0, "full", None, 0),
    inc(1, "differential", 0, 24),
    inc(2, "differential", 0, 48),
]
CET = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3),
        ("0", 0),
        ("2026-11-27T04:05:00Z", datetime(2026, 11, 27, 4, 5, tzinfo=UTC)),
        ("2026-11-27T05:05+01:00", datetime(2026, 11, 27, 4, 5, tzinfo=UTC)),
        ("2026-11-27T05:05", datetime(2026, 11, 27, 5, 5, tzinfo=CET)),
        ("2026-11-27", datetime(2026, 11, 27, tzinfo=CET)),
        ("2026-11-27 05:05:00", datetime(2026, 11, 27, 5, 5, tzinfo=CET)),
    ],
)
def test_parse_at(text: str, expected: int | datetime) -> None:
    assert parse_at(text, CET) == expected


@pytest.mark.parametrize("text", ["yesterday", "-1", "2026-13-01", "3.5", ""])
def test_parse_at_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(PointInTimeError, match=r"neither an increment number"):
        parse_at(text, CET)


@pytest.mark.parametrize(
    ("at", "number"),
    [
        (None, 2),
        (0, 0),
        (2, 2),
        (T0 + timedelta(minutes=5), 0),  # exactly when the full finished
        (T0 + timedelta(hours=24, minutes=4), 0),  # increment 1 not finished yet
        (T0 + timedelta(hours=24, minutes=5), 1),
        (T0 + timedelta(days=30), 2),
    ],
)
def test_choose_increment(at: int | datetime | None, number: int) -> None:
    assert choose_increment(CHAINED, at).number == number


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (7, r"no increment 7 in this cycle \(it has 0..2\)"),
        (T0, "no increment finished at or before"),
    ],
)
def test_choose_increment_explains_what_exists(at: int | datetime, message: str) -> None:
    with pytest.raises(PointInTimeError, match=message):
        choose_increment(CHAINED, at)


def test_an_empty_cycle_has_no_point_in_time() -> None:
    with pytest.raises(PointInTimeError, match=r"no complete increment"):
        choose_increment([], None)


@pytest.mark.parametrize(
    ("increments", "number", "chain"),
    [
        (CHAINED, 0, (0,)),
        (CHAINED, 1, (0, 1)),
        (CHAINED, 2, (0, 1, 2)),
        (DIFFERENTIAL, 1, (0, 1)),
        (DIFFERENTIAL, 2, (0, 2)),
    ],
)
def test_increment_chain(
    increments: list[IncrementManifest], number: int, chain: tuple[int, ...]
) -> None:
    assert increment_chain(increments, number) == chain


def test_a_broken_chain_is_reported() -> None:
    broken = [inc(0, "full", None, 0), inc(2, "incremental", 1, 48)]
    with pytest.raises(PointInTimeError, match=r"increment 1 is missing"):
        increment_chain(broken, 2)
    looping = [inc(0, "full", None, 0), inc(1, "incremental", 1, 24)]
    with pytest.raises(PointInTimeError, match=r"invalid base"):
        increment_chain(looping, 1)


IDS = ["20260101T000000Z", "20260108T000000Z", "20260108T000000Z-2"]


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [(None, "20260108T000000Z-2"), ("latest", "20260108T000000Z-2"), (IDS[0], IDS[0])],
)
def test_choose_cycle(wanted: str | None, chosen: str) -> None:
    assert choose_cycle(IDS, wanted) == chosen


def test_choose_cycle_names_the_cycles_that_exist() -> None:
    with pytest.raises(PointInTimeError, match=r"no cycle '2025'.*20260101T000000Z"):
        choose_cycle(IDS, "2025")
    with pytest.raises(PointInTimeError, match=r"no cycle to restore"):
        choose_cycle([], None)


def test_choose_increment_reads_a_naive_time_as_local_time() -> None:
    """A naive datetime (an API caller that skipped parse_at) is local time, as in parse_at,
    instead of a TypeError from comparing it with the manifests' UTC times."""
    local = (T0 + timedelta(hours=30)).astimezone().replace(tzinfo=None)
    assert choose_increment(CHAINED, local).number == 1
    with pytest.raises(PointInTimeError, match="no increment finished"):
        choose_increment(CHAINED, (T0 - timedelta(days=1)).astimezone().replace(tzinfo=None))

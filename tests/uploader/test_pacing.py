"""``[upload] max_rate``, ``[restore] max_rate`` and ``[upload] window``.

The rates are measured on real transfers to and from a moto S3 server (30 MiB each): what is
asserted is the ratio of the measured rate to the limit, never a duration.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from uploader import catalogue as cr
from uploader.archive import parse_metadata_key
from uploader.catalogue import Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.pacing import RateLimiter, UploadPaused, paced, upload_pace
from uploader.restore.download import download
from uploader.stores.base import MiB, PartInfo
from uploader.stores.s3 import S3Store
from uploader.upload import upload_cycle
from uploader.window import UploadWindow, WindowError

from .conftest import MOTO_CAPABILITIES, build_cycle, make_bucket, s3_store

PLAIN = EncryptionConfig(mode="none")
TOTAL = 30 * MiB
LIMIT = 12 * MiB  # bytes per second: the machine easily does more, so the limit is what shows
TZ = timezone(timedelta(hours=1))


async def test_one_limiter_paces_concurrent_transfers_together() -> None:
    now = [100.0]
    waits: list[tuple[str, float]] = []

    async def sleep(seconds: float) -> None:
        waits.append((asyncio.current_task().get_name(), seconds))  # type: ignore[union-attr]

    limiter = RateLimiter(10.0, slack=1.0, clock=lambda: now[0], sleep=sleep)
    async with asyncio.TaskGroup() as tg:
        for name in "abc":
            tg.create_task(limiter.acquire(20), name=name)
    # three transfers of 20 bytes at 10 B/s: each books the next two seconds of one budget
    assert sorted(w for _, w in waits) == [2.0, 4.0, 6.0]
    now[0] = 106.5  # a pause of half a second after the bookings: made up
    await limiter.acquire(10)
    assert waits[-1][1] == 0.5
    now[0] = 200.0  # a long idle time is not saved up beyond the slack
    await limiter.acquire(20)
    assert waits[-1][1] == 1.0


async def test_an_upload_never_goes_faster_than_max_rate(
    tmp_path: Path, aws_env: None, moto_server: str
) -> None:
    cycle = build_cycle(tmp_path / "spool", [TOTAL])
    progress: list[tuple[float, int]] = []  # the driver reports 0 bytes first, then each part
    async with s3_store(moto_server, make_bucket(moto_server)) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            record = await upload_cycle(
                cycle,
                store,
                cat,
                PLAIN,
                UploadConfig(part_size=MiB, concurrency=4),
                lambda done, total: progress.append((time.monotonic(), done)),
                pace=upload_pace(LIMIT, None),
            )
    (t0, first), (t1, last) = progress[0], progress[-1]
    assert first == 0 and last == record.size
    # the rate of the transfer itself (setting up and completing the upload take what they take)
    ratio = last / (t1 - t0) / LIMIT
    # Only the ceiling: a busy machine can make any transfer slower than the limit, never
    # faster. That the limiter lets the full rate through is shown with a fake clock above.
    assert ratio <= 1.15, f"measured {ratio:.3f} x max_rate"


async def test_a_restore_download_never_goes_faster_than_max_rate(
    tmp_path: Path, aws_env: None, moto_server: str
) -> None:
    cycle = build_cycle(tmp_path / "spool", [TOTAL])
    async with s3_store(moto_server, make_bucket(moto_server)) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            archive = await upload_cycle(cycle, store, cat, PLAIN, UploadConfig(part_size=MiB))
            record = cr.record_request(
                cat,
                store=store.name,
                key=archive.key,
                archive_id=None,
                size=archive.size,
                storage_class="GLACIER",
                tier="Bulk",
                days=1,
                job_id=None,
            )
            started = time.monotonic()
            await download(
                store,
                cat,
                record,
                tmp_path / "dl" / "a.part",
                range_size=MiB,
                parallel=4,
                max_rate=LIMIT,
            )
            ranged = time.monotonic() - started
            # the direct read of a restore from a hot class goes through the same limiter
            started = time.monotonic()
            got = 0
            async for chunk in paced(store.read(archive.key), RateLimiter(LIMIT)):
                got += len(chunk)
            direct = time.monotonic() - started
    assert (tmp_path / "dl" / "a.part").stat().st_size == archive.size == got
    for elapsed in (ranged, direct):
        ratio = archive.size / elapsed / LIMIT
        # Only the ceiling: a busy machine can make any transfer slower than the limit, never
    # faster. That the limiter lets the full rate through is shown with a fake clock above.
    assert ratio <= 1.15, f"measured {ratio:.3f} x max_rate"


def test_window_hours_including_across_midnight() -> None:
    night = UploadWindow.parse("22:00-06:00")
    early = UploadWindow.parse("01:00-07:00")

    def at(h: int, m: int = 0, day: int = 2) -> datetime:
        return datetime(2026, 3, day, h, m, tzinfo=TZ)

    assert [night.is_open(at(h)) for h in (21, 22, 23, 0, 5, 6, 12)] == [
        False,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    assert early.next_open(at(12)) == at(1, day=3)
    assert early.next_open(at(0, 30)) == at(1)
    assert early.next_open(at(3)) == at(3)  # open now
    assert early.closes_at(at(3)) == at(7)
    assert early.closes_at(at(8)) is None
    assert night.closes_at(at(23)) == at(6, day=3)
    assert early.seconds_until_open(at(23)) == 2 * 3600
    assert str(night) == "22:00-06:00"


def test_the_next_window_is_right_across_a_change_of_clocks() -> None:
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")  # 29 March 2026: 02:00 becomes 03:00
    window = UploadWindow.parse("04:00-05:00")
    before = datetime(2026, 3, 28, 12, 0, tzinfo=paris)
    opens = window.next_open(before)
    assert opens.hour == 4 and opens.utcoffset() == timedelta(hours=2)
    assert opens.astimezone(UTC) - before.astimezone(UTC) == timedelta(hours=15)
    assert window.seconds_until_open(before) == 15 * 3600  # one hour less than on other days


@pytest.mark.parametrize("text", ["7-9", "01:00-01:00", "25:00-02:00", "01:60-02:00", ""])
def test_a_bad_window_is_refused(text: str) -> None:
    with pytest.raises(WindowError):
        UploadWindow.parse(text)


class CountingS3(S3Store):
    """An S3 store that remembers which parts of the archive it was asked to send (not those of
    its metadata object, sent after the archive)."""

    sent: list[int]

    async def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes | bytearray, checksum: str
    ) -> PartInfo:
        if parse_metadata_key(key) is None:
            self.sent.append(number)
        return await super().upload_part(key, upload_id, number, data, checksum)


async def test_an_upload_pauses_when_the_window_closes_and_resumes_in_the_next(
    tmp_path: Path, aws_env: None, moto_server: str
) -> None:
    window = UploadWindow.parse("01:00-07:00")
    cycle = build_cycle(tmp_path / "spool", [12 * MiB])
    # The driver asks the clock before each part: three parts go, then it is 07:00.
    before, after = datetime(2026, 3, 2, 6, 59, tzinfo=TZ), datetime(2026, 3, 2, 7, 0, tzinfo=TZ)
    times = iter([before] * 3 + [after] * 99)
    config = UploadConfig(part_size=MiB, concurrency=2)
    store = CountingS3(
        make_bucket(moto_server),
        "pfx/",
        "STANDARD",
        region="us-east-1",
        endpoint_url=moto_server,
        capabilities=MOTO_CAPABILITIES,
    )
    store.sent = []
    async with store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            pace = upload_pace(None, window, clock=lambda: next(times))
            with capture_logs() as first, pytest.raises(UploadPaused) as paused:
                await upload_cycle(cycle, store, cat, PLAIN, config, pace=pace)
            assert paused.value.resumes_at == datetime(2026, 3, 3, 1, 0, tzinfo=TZ)
            assert any(e["event"] == "upload.paused" for e in first)
            (upload,) = cat.uploads()  # kept for the next window, with its parts
            held = await store.list_parts(upload.key, upload.upload_id)
            assert sorted(p.number for p in held) == sorted(store.sent)
            parts = -(-upload.total_size // MiB)
            assert 3 <= len(held) < parts  # stopped at a part boundary
            assert len(cat.parts(upload.id)) == len(held)  # and every part sent is recorded

            inside = datetime(2026, 3, 3, 1, 30, tzinfo=TZ)
            pace = upload_pace(None, window, clock=lambda: inside)
            record = await upload_cycle(cycle, store, cat, PLAIN, config, pace=pace)
    assert sorted(store.sent) == list(range(1, parts + 1))  # each part once, over two windows
    assert record.size == upload.total_size

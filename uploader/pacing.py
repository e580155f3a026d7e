"""Staying out of the way of the household's connection: a shared rate limit and the window.

:class:`RateLimiter` paces every transfer of one upload (all its concurrent parts) or of one
restore download (all its parallel ranges, or the chunks of a direct read: :func:`paced`) to
``[upload] max_rate`` / ``[restore] max_rate`` on average. The multipart driver awaits a
:data:`Pace` before sending each part: :func:`upload_pace` combines the limiter with
``[upload] window``, raising :class:`UploadPaused` once the window has closed, so that an upload
stops at a part boundary and is resumed in the next window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

from localbackup.logevents import get_logger
from uploader.window import UploadWindow, local_now

log = get_logger(__name__)

Pace = Callable[[int], Awaitable[None]]  # awaited with a part's size before it is sent


class UploadPaused(Exception):
    """The upload window closed: the upload stops at a part boundary, its parts are kept, and
    it resumes when the window opens again (``resumes_at``). A decision of ours, not a store
    failure."""

    def __init__(self, window: UploadWindow, resumes_at: datetime) -> None:
        self.window, self.resumes_at = window, resumes_at
        super().__init__(
            f"the upload window {window} has closed; the upload resumes when it opens again "
            f"at {resumes_at:%Y-%m-%d %H:%M %Z} (upload --now uploads outside the window)"
        )


class RateLimiter:
    """At most ``rate`` bytes per second on average, shared by every concurrent transfer.

    Each :meth:`acquire` books the next ``nbytes / rate`` seconds of the shared budget and
    waits until its booking ends; bookings follow each other, so N transfers running at once
    share the rate, and a transfer goes out only once the time its bytes are worth has passed
    (from the first booking on: the average never exceeds the rate). Up to ``slack`` seconds
    of a pause between bookings (a disk flush, a busy machine) are made up afterwards; longer
    idle time is not saved up.
    """

    def __init__(
        self,
        rate: float,
        *,
        slack: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate, self.slack = rate, slack
        self._clock, self._sleep = clock, sleep
        self._free_at: float | None = None  # when the bookings made so far end

    async def acquire(self, nbytes: int) -> None:
        """Wait until ``nbytes`` more may go out without exceeding the rate."""
        now = self._clock()
        start = now if self._free_at is None else max(now - self.slack, self._free_at)
        end = start + nbytes / self.rate
        self._free_at = end
        if end > now:
            await self._sleep(end - now)


async def paced(chunks: AsyncIterator[bytes], limiter: RateLimiter) -> AsyncIterator[bytes]:
    """``chunks`` (a store's read), each one let through only when the limiter allows it."""
    try:
        async for chunk in chunks:
            await limiter.acquire(len(chunk))
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def upload_pace(
    max_rate: int | None,
    window: UploadWindow | None,
    *,
    clock: Callable[[], datetime] = local_now,
) -> Pace | None:
    """What the driver awaits before each part: the rate limit, then the window (which raises
    :class:`UploadPaused` once it is closed). None when neither is configured."""
    if max_rate is None and window is None:
        return None
    limiter = RateLimiter(max_rate) if max_rate else None

    async def pace(nbytes: int) -> None:
        if limiter is not None:
            await limiter.acquire(nbytes)
        if window is not None:
            now = clock()
            if not window.is_open(now):
                raise UploadPaused(window, window.next_open(now))

    return pace

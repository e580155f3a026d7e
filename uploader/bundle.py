"""The bundle: the deterministic, uncompressed tar of one sealed cycle that is uploaded.

Members, in order: ``<cycle_id>/cycle.json`` (the canonical rendering of the sealed cycle), then
every file of :attr:`SealedCycle.files` as ``<cycle_id>/<name>``. Every header is fixed: mtime is
the sealing time, uid/gid 0, mode 0644, no user or group names; pax headers appear only where
ustar cannot hold a name. The stream ends like Python's and GNU tar's: two zero blocks, padded to
a 10 KiB record. Its exact size is known up front, and any byte range can be regenerated, which
is what lets an interrupted upload resume from the middle.

``cycle.json`` pins every file (size and SHA-256), so the bundle is identified before it is read
by :func:`cycle_sha256`; an upload checks the files while it streams them
(:class:`VerifyingBundle`) instead of reading the bundle once more beforehand.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from localbackup.formats import CYCLE_JSON, SealedCycle, load_sealed_cycle
from uploader.closing import Closing

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
_READ = 1024 * 1024


class BundleError(Exception):
    """The cycle on disk does not match its ``cycle.json`` (or cannot be bundled)."""


@dataclass(frozen=True, slots=True)
class _Segment:
    offset: int
    size: int
    data: bytes | None = None  # headers, padding and cycle.json are held in memory
    name: str | None = None  # otherwise a data file of the cycle
    sha256: str | None = None


def _header(cycle: SealedCycle, name: str, size: int) -> bytes:
    info = tarfile.TarInfo(f"{cycle.cycle_id}/{name}")
    info.size = size
    info.mtime = int(cycle.sealed_at.timestamp())
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _check_name(name: str) -> None:
    p = PurePosixPath(name)
    if name == CYCLE_JSON or len(p.parts) != 1 or name in ("", ".", ".."):
        raise BundleError(f"cycle.json lists an invalid file name {name!r}")


def _layout(cycle: SealedCycle) -> tuple[list[_Segment], int]:
    segments: list[_Segment] = []
    offset = 0

    def add(
        size: int, data: bytes | None = None, name: str | None = None, sha: str | None = None
    ) -> None:
        nonlocal offset
        if size:
            segments.append(_Segment(offset, size, data, name, sha))
            offset += size

    def member(name: str, size: int, data: bytes | None, sha: str | None) -> None:
        add(len(h := _header(cycle, name, size)), h)
        add(size, data, None if data is not None else name, sha)
        add(-size % BLOCK, bytes(-size % BLOCK))

    member(CYCLE_JSON, len(rendered := cycle.render()), rendered, None)
    for f in cycle.files:
        _check_name(f.name)
        member(f.name, f.size, None, f.sha256)
    end = offset + 2 * BLOCK
    add(2 * BLOCK + (-end % RECORD), bytes(2 * BLOCK + (-end % RECORD)))
    return segments, offset


def bundle_size(cycle: SealedCycle) -> int:
    """The exact number of bytes of the bundle of ``cycle``."""
    return _layout(cycle)[1]


def cycle_sha256(cycle: SealedCycle) -> str:
    """SHA-256 of the bundle's first member, ``cycle.json``: it pins every byte of the bundle."""
    return hashlib.sha256(cycle.render()).hexdigest()


class BundleReader(Closing):
    """Random access to the bundle of a sealed cycle directory.

    Use as a context manager (it keeps data files open) from one thread at a time. Each file's
    size is checked against ``cycle.json`` when it is first opened; :meth:`verify` also checks
    every SHA-256 by reading the files whole, :class:`VerifyingBundle` while they stream.
    """

    def __init__(self, cycle_dir: Path, cycle: SealedCycle | None = None) -> None:
        self.cycle_dir = cycle_dir
        self.cycle = cycle if cycle is not None else load_sealed_cycle(cycle_dir)
        self._segments, self.size = _layout(self.cycle)
        self._fds: dict[str, int] = {}

    def close(self) -> None:
        """Close the data files opened so far."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _fd(self, seg: _Segment) -> int:
        assert seg.name is not None
        fd = self._fds.get(seg.name)
        if fd is None:
            path = self.cycle_dir / seg.name
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as exc:
                raise BundleError(f"cannot open {path}: {exc.strerror}") from None
            actual = os.fstat(fd).st_size
            if actual != seg.size:
                os.close(fd)
                raise BundleError(f"{path} has {actual} bytes, cycle.json says {seg.size}")
            self._fds[seg.name] = fd
        return fd

    def readinto(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` with the bundle bytes starting at ``offset`` (must lie inside)."""
        if offset < 0 or offset + len(view) > self.size:
            raise ValueError(f"range {offset}+{len(view)} is outside the bundle ({self.size})")
        pos, filled = offset, 0
        for seg in self._segments[self._find(offset) :]:
            if filled == len(view):
                break
            inner = pos - seg.offset
            n = min(seg.size - inner, len(view) - filled)
            if seg.data is not None:
                view[filled : filled + n] = seg.data[inner : inner + n]
            else:
                got = os.preadv(self._fd(seg), [view[filled : filled + n]], inner)
                if got != n:
                    raise BundleError(f"{self.cycle_dir / str(seg.name)} shrank while reading")
            pos += n
            filled += n

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes of the bundle from ``offset``."""
        buf = bytearray(size)
        self.readinto(offset, memoryview(buf))
        return bytes(buf)

    @property
    def segments(self) -> Sequence[_Segment]:
        """The bundle's layout: each tar header, data file and padding, in order."""
        return self._segments

    def _find(self, offset: int) -> int:
        lo, hi = 0, len(self._segments) - 1
        while lo < hi:  # last segment starting at or before offset
            mid = (lo + hi + 1) // 2
            if self._segments[mid].offset <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def verify(self) -> str:
        """Read the whole bundle once: check every file against cycle.json, return its SHA-256."""
        whole = hashlib.sha256()
        bufs = (bytearray(_READ), bytearray(_READ))
        # The bundle digest runs in a second thread (hashlib releases the GIL) while this one
        # hashes the file; two buffers alternate so that neither is overwritten while in use.
        with ThreadPoolExecutor(1) as pool:
            pending: Future[None] | None = None

            def feed(data: bytes | memoryview) -> None:
                nonlocal pending
                if pending is not None:
                    pending.result()
                pending = pool.submit(whole.update, data)

            k = 0
            for seg in self._segments:
                if seg.data is not None:
                    feed(seg.data)
                    continue
                part = hashlib.sha256()
                done = 0
                while done < seg.size:
                    view = memoryview(bufs[k])[: min(_READ, seg.size - done)]
                    k ^= 1
                    self.readinto(seg.offset + done, view)
                    feed(view)
                    part.update(view)
                    done += len(view)
                if part.hexdigest() != seg.sha256:
                    raise BundleError(
                        f"{self.cycle_dir / str(seg.name)}: SHA-256 does not match cycle.json"
                    )
            if pending is not None:
                pending.result()
        return whole.hexdigest()


class VerifyingBundle(Closing):
    """The bundle as an upload reads it, front to back: every file is checked on the way.

    A :class:`PayloadSource` over a :class:`BundleReader` that hashes each data file and the
    whole bundle as the bytes pass and raises :class:`BundleError` as soon as a file's last byte
    shows that it does not match ``cycle.json``, so a bad file fails the upload before it can
    complete. Reads must move forward; a read that starts past the bytes seen so far (a resumed
    upload skipping acknowledged parts) first reads the gap without returning it, so the check
    and the bundle SHA-256 always cover every byte. :meth:`finish` reads what is left and
    returns the bundle SHA-256. Use as a context manager: the bundle SHA-256 runs on a helper
    thread, alongside the file SHA-256 (hashlib releases the GIL), so that reading keeps pace.
    """

    def __init__(self, reader: BundleReader) -> None:
        empty = hashlib.sha256().hexdigest()
        for f in reader.cycle.files:  # an empty file has no bytes to check as they pass
            if f.size == 0 and f.sha256 != empty:
                raise BundleError(f"cycle.json gives the empty file {f.name} a wrong SHA-256")
        self._reader = reader
        self._pos = 0
        self._seg = 0  # index of the segment holding byte self._pos
        self._whole = hashlib.sha256()
        self._file = hashlib.sha256()
        self._sha256: str | None = None
        self._helper = ThreadPoolExecutor(1, thread_name_prefix="bundle-sha256")

    def close(self) -> None:
        """Stop the thread that hashes the files."""
        self._helper.shutdown()

    @property
    def size(self) -> int:
        """The bundle's size in bytes."""
        return self._reader.size

    @property
    def sha256(self) -> str:
        """The bundle SHA-256, once :meth:`finish` has run."""
        if self._sha256 is None:
            raise BundleError("the bundle has not been read to the end yet")
        return self._sha256

    def readinto(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` from ``offset``, hashing the files on the way; reads must come in order."""
        if offset < self._pos:
            raise BundleError(f"bundle read out of order: {offset} after {self._pos} bytes")
        self._skip_to(offset)
        self._reader.readinto(offset, view)
        self._feed(view)

    def finish(self) -> str:
        """Read the rest (without returning it), check every file, return the bundle SHA-256."""
        self._skip_to(self.size)
        self._sha256 = self._whole.hexdigest()
        return self._sha256

    def _skip_to(self, offset: int) -> None:
        if offset <= self._pos:
            return
        scratch = memoryview(bytearray(min(_READ, offset - self._pos)))
        while self._pos < offset:
            view = scratch[: min(len(scratch), offset - self._pos)]
            self._reader.readinto(self._pos, view)
            self._feed(view)

    def _feed(self, view: memoryview) -> None:
        whole = self._helper.submit(self._whole.update, view)
        try:
            self._check_files(view)
        finally:
            whole.result()  # the caller reuses the buffer behind ``view`` once this returns

    def _check_files(self, view: memoryview) -> None:
        segments = self._reader.segments
        done = 0
        while done < len(view):
            seg = segments[self._seg]
            n = min(seg.offset + seg.size - self._pos, len(view) - done)
            if seg.sha256 is not None:
                self._file.update(view[done : done + n])
            done += n
            self._pos += n
            if self._pos < seg.offset + seg.size:
                continue
            self._seg += 1
            if seg.sha256 is not None:
                if self._file.hexdigest() != seg.sha256:
                    path = self._reader.cycle_dir / str(seg.name)
                    raise BundleError(f"{path}: SHA-256 does not match cycle.json")
                self._file = hashlib.sha256()

"""A fast POSIX.1-2001 (pax) tar writer for regular files, dirs, links and devices.

Why not ``tarfile``: its per-member cost (TarInfo objects, header encoding, buffered copies)
dominates backups of many small files. Here each member is one cached pax block header, a few
pax records and one ``struct.pack`` (:mod:`localbackup.paxheader` makes those bytes); file data
is read with ``os.readv`` straight into a preallocated buffer that is handed to the (zstd)
output in large pieces. Files with holes are written in GNU sparse format 1.0.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from localbackup.fileio import CHUNK_SIZE
from localbackup.paxheader import (
    BLOCK,
    CHECKSUM_AT,
    RECORD,
    HeaderEncoder,
    NameLookup,
    checksum_field,
    sparse_map,
    sparse_name,
    sparse_records,
    with_checksum,
)

__all__ = ["FileCopy", "Sink", "TarWriter", "data_regions"]

_NUL_BLOCK = bytes(BLOCK)


class Sink(Protocol):
    """Where the archive's bytes go (the zstd stream writer)."""

    def write(self, data: memoryview | bytes, /) -> object:
        """Take all of ``data`` (it may be a view of the writer's buffer: copy it or use it now)."""
        ...


def data_regions(fd: int, size: int) -> list[tuple[int, int]]:
    """(offset, length) of the data extents of a file, via SEEK_DATA/SEEK_HOLE."""
    regions: list[tuple[int, int]] = []
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # only a hole remains
                break
            raise
        if start >= size:
            break
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        regions.append((start, end - start))
        pos = end
    os.lseek(fd, 0, os.SEEK_SET)
    return regions


@dataclass(frozen=True, slots=True)
class FileCopy:
    """Outcome of copying one regular file into the archive."""

    changed: bool  # size differed from the header while reading (padded or truncated)
    sparse: bool
    error: OSError | None = None  # a read error; the rest of the member is zeros


_CLEAN_COPY = FileCopy(changed=False, sparse=False)


class TarWriter:
    """Appends members to ``out``; call :meth:`close` to write the end-of-archive blocks."""

    def __init__(
        self,
        out: Sink,
        *,
        buffer_size: int = 4 << 20,
        uname: NameLookup | None = None,
        gname: NameLookup | None = None,
        on_flush: Callable[[int], object] | None = None,
    ) -> None:
        """``on_flush`` is called with :attr:`offset` after each write to ``out`` (every few
        MiB: progress inside large files)."""
        self._out = out
        self._on_flush = on_flush
        self._cap = buffer_size
        self._buf = bytearray(buffer_size)
        self._mv = memoryview(self._buf)
        self._pos = 0
        self.offset = 0  # bytes flushed so far (uncompressed)
        self.content = 0  # file content bytes read so far (progress inside large files)
        headers = HeaderEncoder(uname, gname)
        self._encode, self._pax_block = headers.encode, headers.pax_block
        self.read_error: OSError | None = None  # set by a copy that hit an I/O error

    # -- buffer -----------------------------------------------------------------------------
    def _flush(self) -> None:
        if self._pos:
            self._out.write(self._mv[: self._pos])
            self.offset += self._pos
            self._pos = 0
            if self._on_flush is not None:
                self._on_flush(self.offset)

    def _put(self, data: bytes) -> None:
        n = len(data)
        if self._pos + n > self._cap:
            self._flush()
            if n > self._cap:
                self._out.write(data)
                self.offset += n
                return
        self._buf[self._pos : self._pos + n] = data
        self._pos += n

    def _zeros(self, n: int) -> None:
        while n > 0:
            if self._pos == self._cap:
                self._flush()
            k = min(n, self._cap - self._pos)
            self._buf[self._pos : self._pos + k] = bytes(k)
            self._pos += k
            n -= k

    # -- headers ----------------------------------------------------------------------------
    def _header(
        self,
        name: bytes,
        st: os.stat_result,
        typeflag: bytes,
        size: int,
        *,
        linkname: bytes = b"",
        records: bytes = b"",
    ) -> None:
        """Write the pax extended header and the ustar header of one member."""
        body, hdr = self._encode(name, st, typeflag, size, linkname=linkname, records=records)
        n = len(body)
        pad = -n % BLOCK
        need = BLOCK + n + pad + BLOCK
        if self._pos + need > self._cap:
            self._flush()
        if need > self._cap:  # absurdly many xattrs: slow path
            self._put(self._pax_block(n) + body + bytes(pad))
            self._put(with_checksum(hdr))
            return
        buf, p = self._buf, self._pos
        buf[p : p + BLOCK] = self._pax_block(n)
        p += BLOCK
        buf[p : p + n] = body
        p += n
        if pad:
            buf[p : p + pad] = _NUL_BLOCK[:pad]
            p += pad
        buf[p : p + BLOCK] = hdr
        buf[p + CHECKSUM_AT : p + CHECKSUM_AT + 8] = checksum_field(hdr)
        self._pos = p + BLOCK

    # -- members ----------------------------------------------------------------------------
    def add_dir(self, name: bytes, st: os.stat_result, records: bytes = b"") -> None:
        """A directory member (its name gets a trailing ``/``)."""
        self._header(name if name.endswith(b"/") else name + b"/", st, b"5", 0, records=records)

    def add_symlink(self, name: bytes, st: os.stat_result, target: bytes) -> None:
        """A symlink member pointing at ``target``."""
        self._header(name, st, b"2", 0, linkname=target)

    def add_hardlink(self, name: bytes, st: os.stat_result, target_name: bytes) -> None:
        """A hardlink member: another name of the member ``target_name``."""
        self._header(name, st, b"1", 0, linkname=target_name)

    def add_device(self, name: bytes, st: os.stat_result, records: bytes = b"") -> None:
        """A character or block device member."""
        typeflag = b"3" if stat.S_ISCHR(st.st_mode) else b"4"
        self._header(name, st, typeflag, 0, records=records)

    def add_file(
        self,
        name: bytes,
        st: os.stat_result,
        fd: int,
        records: bytes = b"",
        update: Callable[[memoryview], object] | None = None,
    ) -> FileCopy:
        """Write a regular file read from ``fd``: exactly ``st.st_size`` bytes of content.

        A file that shrank while being read is padded with zeros, one that grew is cut at the
        recorded size; both report ``changed``. ``update`` (a hash's ``update``) sees the bytes
        archived. Files with holes are written as GNU sparse 1.0 members.
        """
        size = st.st_size
        self.read_error = None
        if size > 0 and st.st_blocks * 512 < size:
            try:
                regions = data_regions(fd, size)
            except OSError:
                regions = [(0, size)]
            if not (len(regions) == 1 and regions[0] == (0, size)):
                return self._add_sparse(name, st, fd, regions, records=records, update=update)
        self._header(name, st, b"0", size, records=records)
        got = self._copy(fd, size, update, check_growth=True)
        if got < size:
            self._zeros(size - got)
        pad = -size % BLOCK
        if pad:
            p = self._pos
            if p + pad <= self._cap:
                self._buf[p : p + pad] = _NUL_BLOCK[:pad]
                self._pos = p + pad
            else:
                self._zeros(pad)
        if got == size and self.read_error is None:
            return _CLEAN_COPY
        return FileCopy(changed=got != size, sparse=False, error=self.read_error)

    def _add_sparse(
        self,
        name: bytes,
        st: os.stat_result,
        fd: int,
        regions: list[tuple[int, int]],
        *,
        records: bytes,
        update: Callable[[memoryview], object] | None,
    ) -> FileCopy:
        size = st.st_size
        if not regions or regions[-1][0] + regions[-1][1] < size:
            regions.append((size, 0))  # a trailing hole: GNU tar ends the map like this
        smap = sparse_map(regions)
        stored = len(smap) + sum(length for _, length in regions)
        records = sparse_records(name, size) + records
        self._header(sparse_name(name), st, b"0", stored, records=records)
        self._put(smap)
        changed = False
        pos = 0
        for offset, length in regions:
            if update is not None and offset > pos:
                _feed_zeros(update, offset - pos)
            got = 0
            if self.read_error is None:
                try:
                    os.lseek(fd, offset, os.SEEK_SET)
                except OSError as e:
                    self.read_error = e
                else:
                    got = self._copy(fd, length, update, check_growth=False)
            if got < length:
                changed = True
                self._zeros(length - got)
                if update is not None:
                    _feed_zeros(update, length - got)
            pos = offset + length
        pad = -stored % BLOCK
        if pad:
            self._zeros(pad)
        after = os.fstat(fd)
        if after.st_size != size or after.st_mtime_ns != st.st_mtime_ns:
            changed = True
        return FileCopy(changed=changed, sparse=True, error=self.read_error)

    def _copy(
        self,
        fd: int,
        size: int,
        update: Callable[[memoryview], object] | None,
        check_growth: bool,
    ) -> int:
        """Read up to ``size`` bytes of ``fd`` into the buffer; return the count read.

        With ``check_growth``, returns ``size + 1`` if the file holds more than ``size`` bytes
        (only ``size`` are kept). The last read asks for one byte more than needed, so growth
        is seen without an extra system call. A read error ends the copy early and is kept in
        ``self.read_error``.
        """
        remaining = size
        mv, cap, readv = self._mv, self._cap, os.readv
        extra = 1 if check_growth else 0
        try:
            while remaining > 0:
                if cap - self._pos < min(remaining + extra, 1 << 16):
                    self._flush()
                want = min(remaining + extra, cap - self._pos)
                p = self._pos
                n = readv(fd, [mv[p : p + want]])
                if n == 0:
                    return size - remaining
                if n > remaining:  # grew: drop the surplus byte
                    if update is not None:
                        update(mv[p : p + remaining])
                    self._pos = p + remaining
                    self.content += remaining
                    return size + 1
                if update is not None:
                    update(mv[p : p + n])
                self._pos = p + n
                self.content += n
                remaining -= n
                if remaining == 0 and want == n and check_growth:
                    # the read was limited by buffer space, not by EOF: probe one more byte
                    return size + 1 if os.read(fd, 1) else size
            if size == 0 and check_growth and os.read(fd, 1):
                return 1
        except OSError as e:
            self.read_error = e
            return size - remaining
        return size

    def close(self) -> None:
        """End of archive: two zero blocks, padded to a whole 10 KiB record; flush."""
        self._zeros(2 * BLOCK)
        total = self.offset + self._pos
        self._zeros(-total % RECORD)
        self._flush()


def _feed_zeros(update: Callable[[memoryview], object], n: int) -> None:
    chunk = memoryview(bytes(min(n, CHUNK_SIZE)))
    while n > 0:
        k = min(n, len(chunk))
        update(chunk[:k])
        n -= k

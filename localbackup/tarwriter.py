"""A fast POSIX.1-2001 (pax) tar writer for regular files, dirs, links and devices.

Why not ``tarfile``: its per-member cost (TarInfo objects, header encoding, buffered copies)
dominates backups of many small files. Here each member is one cached pax block header, a few
pax records and one ``struct.pack``; file data is read with ``os.readv`` straight into a
preallocated buffer that is handed to the (zstd) output in large pieces.

Every member gets a pax header because ``mtime`` carries nanoseconds. Other pax records appear
only when the ustar fields cannot hold the value: names longer than the ustar
fields (raw bytes, also when not UTF-8), sizes above 4 GiB, large ids, xattrs
(``SCHILY.xattr.*``) and GNU sparse format 1.0 (``GNU.sparse.*``).
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["BLOCK", "FileCopy", "TarWriter", "data_regions", "pax_record", "read_xattrs"]

BLOCK = 512
RECORD = 20 * BLOCK  # GNU tar's default blocking factor
_NUL_BLOCK = bytes(BLOCK)
_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")
_MAGIC = b"ustar\x0000"
_CHK_BLANK = b"        "
_MAX_OCTAL_11 = 0o77777777777
_MAX_OCTAL_7 = 0o7777777
_PAX_SIZE_LIMIT = 0xFFFFFFFF  # above 4 GiB the size also goes in a pax record


class Sink(Protocol):
    def write(self, data: memoryview | bytes, /) -> object: ...


def pax_record(key: bytes, value: bytes) -> bytes:
    """One ``"<len> key=value\\n"`` record; ``len`` counts itself."""
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + len(str(len(body)))
    n = len(body) + len(str(n))
    return b"%d" % n + body


def _mtime_record(mtime_ns: int) -> bytes:
    s, ns = divmod(mtime_ns, 1_000_000_000)
    if 1_000_000_000 <= s < 10_000_000_000:  # 2001..2286: fixed length, the common case
        return b"30 mtime=%d.%09d\n" % (s, ns)
    sign = b"-" if mtime_ns < 0 else b""
    s, ns = divmod(abs(mtime_ns), 1_000_000_000)
    return pax_record(b"mtime", b"%s%d.%09d" % (sign, s, ns))


def _checksum_field(header: bytes) -> bytes:
    return b"%06o\0 " % sum(header)


def read_xattrs(target: int | bytes) -> list[tuple[bytes, bytes]]:
    """Extended attributes of an fd or (not followed) path; [] where unsupported."""
    try:
        names = (
            os.listxattr(target, follow_symlinks=False)
            if isinstance(target, bytes)
            else (os.listxattr(target))
        )
        if not names:
            return []
        out: list[tuple[bytes, bytes]] = []
        for name in sorted(names):
            value = (
                os.getxattr(target, name, follow_symlinks=False)
                if isinstance(target, bytes)
                else os.getxattr(target, name)
            )
            out.append((name.encode("utf-8", "surrogateescape"), value))
        return out
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.ENODATA, errno.EPERM, errno.EACCES):
            return []
        raise


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
        uname: Callable[[int], str | None] | None = None,
        gname: Callable[[int], str | None] | None = None,
    ) -> None:
        self._out = out
        self._cap = buffer_size
        self._buf = bytearray(buffer_size)
        self._mv = memoryview(self._buf)
        self._pos = 0
        self.offset = 0  # bytes flushed so far (uncompressed)
        self._uname = uname or _lookup_user
        self._gname = gname or _lookup_group
        self._owner_cache: dict[tuple[int, bool], tuple[bytes, bytes, bytes]] = {}
        self._pax_block_cache: dict[int, bytes] = {}
        self._mode_cache: dict[int, bytes] = {}
        self.read_error: OSError | None = None  # set by a copy that hit an I/O error

    # -- buffer -----------------------------------------------------------------------------
    def _flush(self) -> None:
        if self._pos:
            self._out.write(self._mv[: self._pos])
            self.offset += self._pos
            self._pos = 0

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
    def _owner(self, ident: int, group: bool) -> tuple[bytes, bytes, bytes]:
        """(octal id field, name field, extra pax records) for a uid/gid, cached."""
        key = (ident, group)
        hit = self._owner_cache.get(key)
        if hit is not None:
            return hit
        name = (self._gname if group else self._uname)(ident)
        raw = name.encode("utf-8", "surrogateescape") if name else b""
        extra = b""
        if ident > _MAX_OCTAL_7:
            field = bytes(8)
            extra += pax_record(b"gid" if group else b"uid", b"%d" % ident)
        else:
            field = b"%07o\0" % ident
        if len(raw) > 32:
            extra += pax_record(b"gname" if group else b"uname", raw)
            raw = raw[:32]
        hit = (field, raw, extra)
        self._owner_cache[key] = hit
        return hit

    def _pax_block(self, size: int) -> bytes:
        hit = self._pax_block_cache.get(size)
        if hit is None:
            hdr = _USTAR.pack(
                b"././@PaxHeader", b"0000644\0", b"0000000\0", b"0000000\0",
                b"%011o\0" % size, b"00000000000\0", _CHK_BLANK, b"x", b"", _MAGIC,
                b"", b"", b"", b"", b"",
            )  # fmt: skip
            hit = hdr[:148] + _checksum_field(hdr) + hdr[156:]
            self._pax_block_cache[size] = hit
        return hit

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
        # ustar name fields hold raw bytes; pax path records only for what does not fit.
        # Raw bytes, never re-encoded: GNU tar extracts them as they are, Python's tarfile
        # falls back to surrogateescape. (hdrcharset=BINARY would be the pedantic marker, but
        # GNU tar 1.34 warns about it on every member.)
        pax = []
        if len(name) > 100:
            pax.append(pax_record(b"path", name))
            name = name[:100]
        if len(linkname) > 100:
            pax.append(pax_record(b"linkpath", linkname))
            linkname = linkname[:100]
        pax.append(_mtime_record(st.st_mtime_ns))
        if size > _PAX_SIZE_LIMIT:
            pax.append(pax_record(b"size", b"%d" % size))
        uid_f, uname, uid_x = self._owner(st.st_uid, False)
        gid_f, gname, gid_x = self._owner(st.st_gid, True)
        body = b"".join(pax) + uid_x + gid_x + records
        mode = st.st_mode
        mode_f = self._mode_cache.get(mode)
        if mode_f is None:
            mode_f = self._mode_cache[mode] = b"%07o\0" % stat.S_IMODE(mode)
        if typeflag in b"34":
            dmaj = b"%07o\0" % os.major(st.st_rdev)
            dmin = b"%07o\0" % os.minor(st.st_rdev)
        else:
            dmaj = dmin = b""
        mtime = st.st_mtime_ns // 1_000_000_000
        hdr = _USTAR.pack(
            name, mode_f, uid_f, gid_f,
            b"%011o\0" % size if size <= _MAX_OCTAL_11 else bytes(12),
            b"%011o\0" % mtime if 0 <= mtime <= _MAX_OCTAL_11 else bytes(12),
            _CHK_BLANK, typeflag, linkname, _MAGIC, uname, gname, dmaj, dmin, b"",
        )  # fmt: skip
        n = len(body)
        pad = -n % BLOCK
        need = BLOCK + n + pad + BLOCK
        if self._pos + need > self._cap:
            self._flush()
        if need > self._cap:  # absurdly many xattrs: slow path
            self._put(self._pax_block(n) + body + bytes(pad))
            self._put(hdr[:148] + _checksum_field(hdr) + hdr[156:])
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
        buf[p + 148 : p + 156] = _checksum_field(hdr)
        self._pos = p + BLOCK

    # -- members ----------------------------------------------------------------------------
    def add_dir(self, name: bytes, st: os.stat_result, records: bytes = b"") -> None:
        self._header(name if name.endswith(b"/") else name + b"/", st, b"5", 0, records=records)

    def add_symlink(self, name: bytes, st: os.stat_result, target: bytes) -> None:
        self._header(name, st, b"2", 0, linkname=target)

    def add_hardlink(self, name: bytes, st: os.stat_result, target_name: bytes) -> None:
        self._header(name, st, b"1", 0, linkname=target_name)

    def add_device(self, name: bytes, st: os.stat_result, records: bytes = b"") -> None:
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
        smap = b"%d\n" % len(regions) + b"".join(b"%d\n%d\n" % r for r in regions)
        smap += bytes(-len(smap) % BLOCK)
        stored = len(smap) + sum(length for _, length in regions)
        slash = name.rfind(b"/")
        fake = name[: slash + 1] + b"GNUSparseFile.0/" + name[slash + 1 :]
        sparse_records = (
            pax_record(b"GNU.sparse.major", b"1")
            + pax_record(b"GNU.sparse.minor", b"0")
            + pax_record(b"GNU.sparse.name", name)
            + pax_record(b"GNU.sparse.realsize", b"%d" % size)
        )
        self._header(fake[:100], st, b"0", stored, records=sparse_records + records)
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
                    return size + 1
                if update is not None:
                    update(mv[p : p + n])
                self._pos = p + n
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
    chunk = memoryview(bytes(min(n, 1 << 20)))
    while n > 0:
        k = min(n, len(chunk))
        update(chunk[:k])
        n -= k


def _lookup_user(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _lookup_group(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None

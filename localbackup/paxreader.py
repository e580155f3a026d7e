"""A streaming reader of the increments' pax tar (the reverse of :mod:`localbackup.paxheader`).

Python's :mod:`tarfile` spends most of a restore parsing headers (two checksums, a regex per pax
record, a ``TarInfo`` of a dozen attributes) and keeps every ``TarInfo`` it read, also in stream
mode: ~850 bytes a member, 165 MiB for 200k files. This reader parses what docs/formats.md
(``## Increment``) describes, into one small :class:`Member` per member that nothing keeps:
ustar headers (name prefix, octal and base-256 numbers), pax extended headers (``path``,
``linkpath``, ``size``, ``uid``, ``gid``, ``mtime`` with nanoseconds, ``SCHILY.xattr.*``, GNU
sparse 1.0), GNU long names (``L``/``K``) for good measure. A bad checksum, a truncated member or
a malformed record is a :class:`TarFormatError`. The original tool's bzip2 tars still go through
:mod:`tarfile` (``uploader/restore/legacy.py``).

Reading is buffered: headers and small files are sliced out of 1 MiB of decompressed data;
large files are handed over in chunks.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from localbackup.integrity import Readable
from localbackup.paxheader import header_sum

__all__ = [
    "BLOCKDEV",
    "CHARDEV",
    "DIRECTORY",
    "FIFO",
    "HARDLINK",
    "REGULAR",
    "SYMLINK",
    "Member",
    "MemberData",
    "PaxReader",
    "TarFormatError",
    "member_from_tarinfo",
]

BLOCK = 512
_READ = 1 << 20
_NS = 1_000_000_000
_ZERO_BLOCK = bytes(BLOCK)
_XATTR = b"SCHILY.xattr."
_EXTENSIONS = frozenset((b"x", b"g", b"L", b"K"))  # headers that describe the next member
_LINKS = frozenset((b"1", b"2"))
_CACHED = 256  # distinct header blocks / owner fields remembered
#: Member types (the ustar type flag)
REGULAR, HARDLINK, SYMLINK, CHARDEV, BLOCKDEV, DIRECTORY, FIFO = (
    b"0", b"1", b"2", b"3", b"4", b"5", b"6"
)  # fmt: skip


class MemberData(Protocol):
    """Where a member's stored data is read from, in order."""

    def read_data(self, n: int) -> bytes:
        """Up to ``n`` more bytes of the member's data; b"" at its end."""
        ...


class TarFormatError(ValueError):
    """The stream is not a tar this reader understands (damaged or truncated)."""


@dataclass(slots=True)
class Member:
    """One member's header: what a restore needs, nothing kept after it."""

    name: bytes
    type: bytes  # the ustar type flag: REGULAR, HARDLINK, SYMLINK, ... DIRECTORY, FIFO
    mode: int
    uid: int
    gid: int
    size: int  # the file's size (for a sparse file: its real size)
    mtime_ns: int
    linkname: bytes = b""
    devmajor: int = 0
    devminor: int = 0
    xattrs: list[tuple[str, bytes]] | None = None  # (attribute name, raw value)
    sparse: list[tuple[int, int]] | None = None  # data regions (offset, length)


_TARINFO_TYPE = {
    tarfile.REGTYPE: b"0",
    tarfile.AREGTYPE: b"0",
    tarfile.CONTTYPE: b"0",
    tarfile.LNKTYPE: b"1",
    tarfile.SYMTYPE: b"2",
    tarfile.CHRTYPE: b"3",
    tarfile.BLKTYPE: b"4",
    tarfile.DIRTYPE: b"5",
    tarfile.FIFOTYPE: b"6",
}


def member_from_tarinfo(m: tarfile.TarInfo) -> Member:
    """The :class:`Member` of a :mod:`tarfile` member (read with ``surrogateescape``)."""
    raw = m.pax_headers.get("mtime")
    mtime_ns = _pax_time_ns(raw.encode()) if raw is not None else int(m.mtime) * _NS
    xattrs = [
        (k[len(_XATTR) :], v.encode("utf-8", "surrogateescape"))
        for k, v in m.pax_headers.items()
        if k.startswith("SCHILY.xattr.")
    ]
    sparse: list[tuple[int, int]] | None = m.sparse  # type: ignore[assignment]
    return Member(
        m.name.encode("utf-8", "surrogateescape"),
        _TARINFO_TYPE.get(m.type, m.type),
        m.mode,
        m.uid,
        m.gid,
        m.size,
        mtime_ns,
        m.linkname.encode("utf-8", "surrogateescape"),
        m.devmajor,
        m.devminor,
        xattrs or None,
        sparse,
    )


def _pax_time_ns(raw: bytes) -> int:
    if raw[-10:-9] == b"." and raw[:1] != b"-" and raw.replace(b".", b"", 1).isdigit():
        return int(raw.replace(b".", b"", 1))  # the common "<seconds>.<9 digits>"
    neg = raw.startswith(b"-")
    whole, _, frac = raw.lstrip(b"-").partition(b".")
    if not (whole or frac) or not (whole.isdigit() or not whole) or (frac and not frac.isdigit()):
        raise TarFormatError(f"bad pax time {raw!r}")
    ns = int(whole or b"0") * _NS + int((frac + b"000000000")[:9])
    return -ns if neg else ns


def _checksum(hdr: bytes) -> int:
    """The unsigned ustar checksum of ``hdr``: its bytes summed with the checksum field
    counted as eight spaces."""
    return header_sum(hdr) - sum(hdr[148:156]) + 256


def _number(field: bytes) -> int:
    """An octal ustar number field, or a base-256 one (leading 0x80 or 0xff)."""
    if field and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        if field[0] == 0xFF:
            value -= 1 << (8 * (len(field) - 1))
        return value
    try:
        return int(field.strip(b"\0 ") or b"0", 8)  # "0000644\0", "644 \0", "  644\0\0"
    except ValueError:
        digits = field.split(b"\0", 1)[0].strip()  # NULs after the digits, then garbage
        try:
            return int(digits or b"0", 8)
        except ValueError:
            raise TarFormatError(f"bad number field {field!r}") from None


def _cstr(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _pax_records(data: bytes) -> dict[bytes, bytes]:
    if len(data) == 30 and data.startswith(b"30 mtime=") and data[29] == 0x0A:
        return {b"mtime": data[9:29]}  # most members: the one mtime record
    records: dict[bytes, bytes] = {}
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] == 0:  # padding after the last record
            break
        sp = data.find(b" ", pos, pos + 24)
        try:
            length = int(data[pos:sp]) if sp > pos else 0
        except ValueError:
            length = 0
        stop = pos + length
        if length <= sp - pos + 1 or stop > end or data[stop - 1] != 0x0A:
            raise TarFormatError("malformed pax record")
        key, eq, value = data[sp + 1 : stop - 1].partition(b"=")
        if not eq:
            raise TarFormatError("malformed pax record")
        records[key] = value
        pos = stop
    return records


class PaxReader:
    """Iterates the members of a tar stream; each member's data must be read (or skipped) with
    :meth:`read_data` / :meth:`data_chunks` before the next member, or it is skipped for you."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._buf = b""
        self._pos = 0
        self._data_left = 0  # bytes of the current member's data not read yet
        # Fields that repeat from member to member, parsed once: the block that introduces a
        # pax header (-> its size), the mode, uid and gid fields (-> their values).
        self._extensions: dict[bytes, int] = {}
        self._owners: dict[bytes, tuple[int, int, int]] = {}
        self._pad = 0  # then this many bytes of padding

    # -- buffered input ----------------------------------------------------------------------
    def _fill(self, n: int) -> bool:
        """Make ``n`` bytes available at ``_pos``; False at a clean end of the stream."""
        have = len(self._buf) - self._pos
        parts = [self._buf[self._pos :]] if have else []
        while have < n:
            chunk = self._raw.read(max(_READ, n - have))
            if not chunk:
                if have == 0:
                    self._buf, self._pos = b"", 0
                    return False
                raise TarFormatError("the tar stream ends inside a member")
            parts.append(chunk)
            have += len(chunk)
        self._buf = parts[0] if len(parts) == 1 else b"".join(parts)
        self._pos = 0
        return True

    def _take(self, n: int) -> bytes:
        if len(self._buf) - self._pos < n and not self._fill(n):
            raise TarFormatError("the tar stream ends inside a member")
        start = self._pos
        self._pos = start + n
        return self._buf[start : self._pos]

    def _skip(self, n: int) -> None:
        while n:
            have = len(self._buf) - self._pos
            if have >= n:
                self._pos += n
                return
            n -= have
            self._buf, self._pos = b"", 0
            if not self._fill(min(n, _READ)):
                raise TarFormatError("the tar stream ends inside a member")

    # -- data of the current member ----------------------------------------------------------
    def read_data(self, n: int) -> bytes:
        """Up to ``n`` bytes of the current member's stored data (b"" at its end)."""
        n = min(n, self._data_left)
        if n <= 0:
            return b""
        have = len(self._buf) - self._pos
        if have == 0:
            if not self._fill(1):
                raise TarFormatError("the tar stream ends inside a member")
            have = len(self._buf) - self._pos
        n = min(n, have)
        start = self._pos
        self._pos = start + n
        self._data_left -= n
        if start == 0 and n == len(self._buf):
            return self._buf
        return self._buf[start : self._pos]

    def _finish_member(self) -> None:
        self._skip(self._data_left + self._pad)
        self._data_left = self._pad = 0

    # -- members -----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Member]:
        while True:
            m = self._next()
            if m is None:
                return
            yield m

    def _next(self) -> Member | None:
        self._finish_member()
        pax: dict[bytes, bytes] = {}
        while True:
            pos = self._pos
            if len(self._buf) - pos < BLOCK:
                if not self._fill(BLOCK):
                    raise TarFormatError("the tar stream ends without its end-of-archive blocks")
                pos = 0
            hdr = self._buf[pos : pos + BLOCK]
            self._pos = pos + BLOCK
            known = self._extensions.get(hdr)
            if known is not None:  # the same pax header block as before: already checked
                kind, size = b"x", known
            else:
                if hdr == _ZERO_BLOCK:
                    return None  # the end (the second zero block and padding are not read)
                if _number(hdr[148:156]) != _checksum(hdr):
                    raise TarFormatError("header checksum mismatch")
                kind = hdr[156:157]
                size = _number(hdr[124:136])
                if kind == b"x" and len(self._extensions) < _CACHED:
                    self._extensions[hdr] = size
            if kind in _EXTENSIONS:
                body = self._take(size)
                self._skip(-size % BLOCK)
                if kind == b"x":
                    pax.update(_pax_records(body))
                elif kind == b"L":
                    pax[b"path"] = body.rstrip(b"\0")
                elif kind == b"K":
                    pax[b"linkpath"] = body.rstrip(b"\0")
                continue  # a global header (b"g") is ignored: we never write one
            return self._member(hdr, kind, size, pax)

    def _member(self, hdr: bytes, kind: bytes, size: int, pax: dict[bytes, bytes]) -> Member:
        if kind in {b"\0", b"7"}:
            kind = b"0"
        name = pax.get(b"path")
        if name is None:
            name = _cstr(hdr[0:100])
            if hdr[345] and hdr[257:262] == b"ustar":  # a name prefix
                name = _cstr(hdr[345:500]) + b"/" + name
        if kind == b"5" and name.endswith(b"/"):
            name = name.rstrip(b"/") or name  # as tarfile gives it
        if b"size" in pax:
            size = _int_record(pax[b"size"])
        raw_mtime = pax.get(b"mtime")
        owner = self._owners.get(hdr[100:124])
        if owner is None:
            owner = (_number(hdr[100:108]), _number(hdr[108:116]), _number(hdr[116:124]))
            if len(self._owners) < _CACHED:
                self._owners[hdr[100:124]] = owner
        m = Member(
            name,
            kind,
            owner[0],
            _int_record(pax[b"uid"]) if b"uid" in pax else owner[1],
            _int_record(pax[b"gid"]) if b"gid" in pax else owner[2],
            size,
            _pax_time_ns(raw_mtime) if raw_mtime is not None else _number(hdr[136:148]) * _NS,
            (pax.get(b"linkpath") or _cstr(hdr[157:257])) if kind in _LINKS else b"",
            _number(hdr[329:337]) if kind in (b"3", b"4") else 0,
            _number(hdr[337:345]) if kind in (b"3", b"4") else 0,
        )
        if len(pax) > 1 or raw_mtime is None:
            xattrs = [
                (k[len(_XATTR) :].decode("utf-8", "surrogateescape"), v)
                for k, v in pax.items()
                if k.startswith(_XATTR)
            ]
            m.xattrs = xattrs or None
        stored = size if kind == b"0" else 0
        if kind == b"0" and pax.get(b"GNU.sparse.major") == b"1":
            m.name = pax.get(b"GNU.sparse.name", name)
            m.size = _int_record(pax.get(b"GNU.sparse.realsize", b""))
            self._data_left, self._pad = stored, -stored % BLOCK
            m.sparse = self._sparse_map()
            return m
        self._data_left, self._pad = stored, -stored % BLOCK
        return m

    def _sparse_map(self) -> list[tuple[int, int]]:
        """Read the GNU sparse 1.0 map at the start of the member's data."""
        numbers: list[int] = []
        text = b""
        while True:
            if self._data_left < BLOCK:
                raise TarFormatError("truncated sparse map")
            text += self._take(BLOCK)
            self._data_left -= BLOCK
            lines = text.split(b"\n")
            complete = lines[:-1]
            if complete:
                count = _int_record(complete[0])
                if len(complete) >= 1 + 2 * count:
                    numbers = [_int_record(x) for x in complete[1 : 1 + 2 * count]]
                    return list(zip(numbers[0::2], numbers[1::2], strict=True))
            if len(text) > 64 * BLOCK * 1024:
                raise TarFormatError("sparse map too large")


def _int_record(value: bytes) -> int:
    if not value.isdigit():
        raise TarFormatError(f"bad number {value!r} in a pax record")
    return int(value)

"""The bytes of tar member headers: pax extended headers and ustar header blocks.

Every member gets a pax header because ``mtime`` carries nanoseconds. Other pax records appear
only when the ustar fields cannot hold the value: names longer than the ustar fields (raw bytes,
also when not UTF-8), sizes above 4 GiB, large ids, long user or group names, xattrs
(``SCHILY.xattr.*``) and GNU sparse format 1.0 (``GNU.sparse.*``). docs/formats.md
(``## Increment``) is the contract.

:class:`HeaderEncoder` makes the bytes of one member's headers;
:class:`localbackup.tarwriter.TarWriter` places them in its output. :func:`member_mtime_ns` is
the reverse of :func:`mtime_record`, for the restore side.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING
from zlib import adler32

if TYPE_CHECKING:
    import tarfile

__all__ = [
    "BLOCK",
    "CHECKSUM_AT",
    "RECORD",
    "XATTR_PREFIX",
    "HeaderEncoder",
    "NameLookup",
    "checksum_field",
    "header_sum",
    "member_mtime_ns",
    "mtime_record",
    "pax_record",
    "sparse_map",
    "sparse_name",
    "sparse_records",
    "with_checksum",
    "xattr_records",
]

BLOCK = 512
RECORD = 20 * BLOCK  # GNU tar's default blocking factor
CHECKSUM_AT = 148  # the 8-byte checksum field of a ustar header starts here
_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")
_MAGIC = b"ustar\x0000"
_CHK_BLANK = b"        "
_MAX_OCTAL_11 = 0o77777777777
_MAX_OCTAL_7 = 0o7777777
_PAX_SIZE_LIMIT = 0xFFFFFFFF  # above 4 GiB the size also goes in a pax record
_USTAR_NAME = 100  # bytes of the ustar name and linkname fields
_USTAR_OWNER = 32  # bytes of the ustar uname and gname fields
_NS = 1_000_000_000  # nanoseconds a second
XATTR_PREFIX = "SCHILY.xattr."  # + the attribute's name: the key of an xattr record

#: Maps a uid or gid to its name (None: no name known).
NameLookup = Callable[[int], str | None]


def pax_record(key: bytes, value: bytes) -> bytes:
    """One ``"<len> key=value\\n"`` record; ``len`` counts itself."""
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + len(str(len(body)))
    n = len(body) + len(str(n))
    return b"%d" % n + body


def mtime_record(mtime_ns: int) -> bytes:
    """The ``mtime`` pax record with nanoseconds (negative times allowed)."""
    s, ns = divmod(mtime_ns, _NS)
    if 1_000_000_000 <= s < 10_000_000_000:  # 2001..2286: fixed length, the common case
        return b"30 mtime=%d.%09d\n" % (s, ns)
    sign = b"-" if mtime_ns < 0 else b""
    s, ns = divmod(abs(mtime_ns), _NS)
    return pax_record(b"mtime", b"%s%d.%09d" % (sign, s, ns))


def member_mtime_ns(m: tarfile.TarInfo) -> int:
    """The exact mtime of a member read back: the pax record carries nanoseconds that
    ``TarInfo.mtime`` rounds."""
    raw = m.pax_headers.get("mtime")
    if raw is None:
        return int(m.mtime) * _NS
    neg = raw.startswith("-")
    whole, _, frac = raw.lstrip("-").partition(".")
    ns = int(whole or "0") * _NS + int((frac + "000000000")[:9])
    return -ns if neg else ns


def xattr_records(attrs: list[tuple[bytes, bytes]]) -> bytes:
    """``SCHILY.xattr.<name>`` records for (name, raw value) pairs."""
    prefix = XATTR_PREFIX.encode()
    return b"".join(pax_record(prefix + k, v) for k, v in attrs)


def sparse_name(name: bytes) -> bytes:
    """The ustar name field of a GNU sparse 1.0 member: ``<dir>/GNUSparseFile.0/<base>``, cut to
    the field's 100 bytes (the real name is in :func:`sparse_records`)."""
    slash = name.rfind(b"/")
    return (name[: slash + 1] + b"GNUSparseFile.0/" + name[slash + 1 :])[:_USTAR_NAME]


def sparse_records(name: bytes, size: int) -> bytes:
    """The pax records of a GNU sparse 1.0 member: its real name and size."""
    return (
        pax_record(b"GNU.sparse.major", b"1")
        + pax_record(b"GNU.sparse.minor", b"0")
        + pax_record(b"GNU.sparse.name", name)
        + pax_record(b"GNU.sparse.realsize", b"%d" % size)
    )


def sparse_map(regions: list[tuple[int, int]]) -> bytes:
    """The map that starts a sparse member's data: the region count, then the offset and length
    of each data region, one decimal number a line, padded to a whole block."""
    smap = b"%d\n" % len(regions) + b"".join(b"%d\n%d\n" % r for r in regions)
    return smap + bytes(-len(smap) % BLOCK)


def header_sum(header: bytes | bytearray | memoryview) -> int:
    """The sum of a 512-byte header's bytes, added up by C: the low 16 bits of an Adler-32
    are 1 + the sum modulo 65521, exact for 256 bytes (at most 65280)."""
    return (adler32(header[:256]) & 0xFFFF) + (adler32(header[256:512]) & 0xFFFF) - 2


def checksum_field(header: bytes | bytearray | memoryview) -> bytes:
    """The checksum field of a ustar header encoded with a blank one."""
    return b"%06o\0 " % header_sum(header)


def with_checksum(header: bytes) -> bytes:
    """A ustar header encoded with a blank checksum field, with the real one in place."""
    return header[:CHECKSUM_AT] + checksum_field(header) + header[CHECKSUM_AT + 8 :]


class HeaderEncoder:
    """Encodes the headers of one archive's members; caches what repeats from member to member
    (owner fields, mode fields, the ustar blocks that introduce pax headers)."""

    def __init__(self, uname: NameLookup | None = None, gname: NameLookup | None = None) -> None:
        self._uname = uname or _lookup_user
        self._gname = gname or _lookup_group
        self._owner_cache: dict[tuple[int, bool], tuple[bytes, bytes, bytes]] = {}
        self._pax_block_cache: dict[int, bytes] = {}
        self._mode_cache: dict[int, bytes] = {}

    def owner(self, ident: int, group: bool) -> tuple[bytes, bytes, bytes]:
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
        if len(raw) > _USTAR_OWNER:
            extra += pax_record(b"gname" if group else b"uname", raw)
            raw = raw[:_USTAR_OWNER]
        hit = (field, raw, extra)
        self._owner_cache[key] = hit
        return hit

    def pax_block(self, size: int) -> bytes:
        """The ustar block (checksum included) that introduces a pax header of ``size`` bytes."""
        hit = self._pax_block_cache.get(size)
        if hit is None:
            hdr = _USTAR.pack(
                b"././@PaxHeader", b"0000644\0", b"0000000\0", b"0000000\0",
                b"%011o\0" % size, b"00000000000\0", _CHK_BLANK, b"x", b"", _MAGIC,
                b"", b"", b"", b"", b"",
            )  # fmt: skip
            hit = with_checksum(hdr)
            self._pax_block_cache[size] = hit
        return hit

    def encode(
        self,
        name: bytes,
        st: os.stat_result,
        typeflag: bytes,
        size: int,
        *,
        linkname: bytes,
        records: bytes,
    ) -> tuple[bytes, bytes]:
        """One member's (pax header body, ustar header with a blank checksum field).

        ``records`` are further pax records (xattrs, sparse) appended to the body.
        """
        # ustar name fields hold raw bytes; pax path records only for what does not fit.
        # Raw bytes, never re-encoded: GNU tar extracts them as they are, Python's tarfile
        # falls back to surrogateescape. (hdrcharset=BINARY would be the pedantic marker, but
        # GNU tar 1.34 warns about it on every member.)
        pax = []
        if len(name) > _USTAR_NAME:
            pax.append(pax_record(b"path", name))
            name = name[:_USTAR_NAME]
        if len(linkname) > _USTAR_NAME:
            pax.append(pax_record(b"linkpath", linkname))
            linkname = linkname[:_USTAR_NAME]
        pax.append(mtime_record(st.st_mtime_ns))
        if size > _PAX_SIZE_LIMIT:
            pax.append(pax_record(b"size", b"%d" % size))
        uid_f, uname, uid_x = self.owner(st.st_uid, False)
        gid_f, gname, gid_x = self.owner(st.st_gid, True)
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
        mtime = st.st_mtime_ns // _NS
        hdr = _USTAR.pack(
            name, mode_f, uid_f, gid_f,
            b"%011o\0" % size if size <= _MAX_OCTAL_11 else bytes(12),
            b"%011o\0" % mtime if 0 <= mtime <= _MAX_OCTAL_11 else bytes(12),
            _CHK_BLANK, typeflag, linkname, _MAGIC, uname, gname, dmaj, dmin, b"",
        )  # fmt: skip
        return body, hdr


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

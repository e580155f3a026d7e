"""The age v1 header: stanza parsing and formatting, strict base64, header MAC."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import BinaryIO

from uploader.crypto.errors import HeaderError, HeaderMacError
from uploader.crypto.primitives import hkdf_sha256

__all__ = [
    "MAX_HEADER_SIZE",
    "VERSION_LINE",
    "Header",
    "Stanza",
    "b64decode_canonical",
    "b64encode_raw",
    "format_header",
    "parse_header",
    "read_header",
    "verify_header_mac",
]

VERSION_LINE = b"age-encryption.org/v1\n"
MAX_HEADER_SIZE = 1 << 20  # a megabyte of stanzas is thousands of recipients
_COLUMNS = 64
_MAC_LINE_MAX = len(b"--- ") + 43 + 1
_ARG_RE = re.compile(rb"[\x21-\x7e]+")
_B64_RE = re.compile(rb"[A-Za-z0-9+/]*")


@dataclass(frozen=True, slots=True)
class Stanza:
    """One recipient stanza: a type, its arguments and a binary body."""

    type: str
    args: tuple[str, ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Header:
    """A parsed header: its stanzas, the exact bytes read and the MAC they carry."""

    stanzas: tuple[Stanza, ...]
    raw: bytes  # the full header, version line to the MAC line's newline
    mac: bytes

    @property
    def mac_input(self) -> bytes:
        """The bytes covered by the MAC: everything up to and including the final ``---``."""
        return self.raw[: self.raw.rindex(b"\n---") + 4]


def b64encode_raw(data: bytes) -> str:
    """Standard base64 without padding, as every age header field uses."""
    return base64.b64encode(data).rstrip(b"=").decode("ascii")


def b64decode_canonical(text: str | bytes, what: str) -> bytes:
    """Decode unpadded base64, rejecting padding, stray characters and non-canonical forms."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    if len(raw) % 4 == 1 or not _B64_RE.fullmatch(raw):
        raise HeaderError(f"{what} is not valid unpadded base64")
    try:
        decoded = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except binascii.Error:
        raise HeaderError(f"{what} is not valid unpadded base64") from None
    if b64encode_raw(decoded).encode("ascii") != raw:
        raise HeaderError(f"{what} is not canonical base64")
    return decoded


def _mac_key(file_key: bytes) -> bytes:
    return hkdf_sha256(file_key, b"", b"header")


def format_header(stanzas: Sequence[Stanza], file_key: bytes) -> bytes:
    """Serialize stanzas into a complete header, MAC line and final newline included."""
    out = bytearray(VERSION_LINE)
    for stanza in stanzas:
        fields = (stanza.type, *stanza.args)
        if not all(_ARG_RE.fullmatch(f.encode("ascii", "replace")) for f in fields):
            raise HeaderError("stanza arguments must be non-empty printable ASCII")
        out += b"-> " + " ".join(fields).encode("ascii") + b"\n"
        encoded = b64encode_raw(stanza.body).encode("ascii")
        for start in range(0, len(encoded), _COLUMNS):
            out += encoded[start : start + _COLUMNS] + b"\n"
        if len(encoded) % _COLUMNS == 0:
            out += b"\n"  # the last body line is always short, possibly empty
    out += b"---"
    mac = hmac.new(_mac_key(file_key), bytes(out), sha256).digest()
    out += b" " + b64encode_raw(mac).encode("ascii") + b"\n"
    return bytes(out)


def verify_header_mac(header: Header, file_key: bytes) -> None:
    """Raise :class:`HeaderMacError` unless the header MAC matches ``file_key``."""
    expected = hmac.new(_mac_key(file_key), header.mac_input, sha256).digest()
    if not hmac.compare_digest(expected, header.mac):
        raise HeaderMacError("header MAC mismatch: the header was modified")


def _parse_args(line: bytes) -> list[str]:
    args = line[3:].split(b" ")
    if not all(_ARG_RE.fullmatch(arg) for arg in args):
        raise HeaderError("stanza arguments must be non-empty printable ASCII")
    return [arg.decode("ascii") for arg in args]


def parse_header(raw: bytes) -> Header:
    """Parse a complete header (``raw`` ends with the MAC line's newline)."""
    if not raw.startswith(VERSION_LINE):
        raise HeaderError("not an age v1 file: bad version line")
    lines = raw[len(VERSION_LINE) : -1].split(b"\n")
    if not raw.endswith(b"\n") or not lines[-1].startswith(b"---"):
        raise HeaderError("header does not end with a MAC line")
    stanzas: list[Stanza] = []
    index = 0
    while not lines[index].startswith(b"---"):
        line = lines[index]
        if not line.startswith(b"-> "):
            raise HeaderError("malformed header line: expected a stanza or the MAC line")
        args = _parse_args(line)
        body = bytearray()
        while True:
            index += 1
            body_line = lines[index]
            if len(body_line) > _COLUMNS:
                raise HeaderError("stanza body line longer than 64 columns")
            body += b64decode_canonical(body_line, "stanza body")
            if len(body_line) < _COLUMNS:
                break
        index += 1
        stanzas.append(Stanza(args[0], tuple(args[1:]), bytes(body)))
    mac_line = lines[index]
    if index != len(lines) - 1 or not mac_line.startswith(b"--- "):
        raise HeaderError("malformed MAC line")
    mac = b64decode_canonical(mac_line[4:], "header MAC")
    if len(mac) != 32:
        raise HeaderError("header MAC must be 32 bytes")
    if not stanzas:
        raise HeaderError("header has no recipient stanzas")
    return Header(tuple(stanzas), raw, mac)


def _check_prefix(buf: bytes) -> None:
    probe = buf[: len(VERSION_LINE)]
    if VERSION_LINE.startswith(probe):
        return
    if probe.startswith(b"Salted__"):
        raise HeaderError("not an age file: this is a legacy 'openssl enc' file")
    if probe.startswith(b"-----BEGIN AGE"):
        raise HeaderError("ASCII-armored age files are not supported")
    if probe.startswith(b"age-encryption.org/"):
        raise HeaderError("unsupported age format version")
    raise HeaderError("not an age v1 file: bad version line")


def read_header(src: BinaryIO, block_size: int = 4096) -> tuple[Header, bytes]:
    """Read and parse the header from ``src``.

    Returns the header and the bytes read past it (the start of the payload).
    """
    buf = bytearray()
    search_from = 0
    while True:
        block = src.read(block_size)
        if block:
            buf += block
        _check_prefix(bytes(buf))
        end = buf.find(b"\n---", max(0, search_from - 3))
        if end >= 0:
            newline = buf.find(b"\n", end + 1)
            if newline >= 0:
                return parse_header(bytes(buf[: newline + 1])), bytes(buf[newline + 1 :])
            if len(buf) - end > _MAC_LINE_MAX:
                raise HeaderError("malformed MAC line")
        search_from = len(buf)
        if not block:
            raise HeaderError("file ends inside the header")
        if len(buf) > MAX_HEADER_SIZE:
            raise HeaderError("header is too large")

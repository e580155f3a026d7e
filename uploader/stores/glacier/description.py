"""The archive description: how an archive in a vault says it is ours, and what it holds.

Glacier has no keys and no user metadata; an archive is an ArchiveId plus a description of at
most 1,024 printable ASCII characters, fixed at upload and listed by inventories. Ours is compact
JSON with the same names as the object metadata of the other stores::

    {"format":"glacier-backup-archive","format-version":1,"key":"host/20260101T000000Z.tar.age",
     "host":"host","cycle-id":"20260101T000000Z","cycle-sha256":"..","plaintext-size":123,
     "encryption":"age"}

A cycle's metadata object is a small archive of its own whose description says
``"format":"glacier-backup-metadata"`` (:attr:`ArchiveDescription.kind`), with the key
``host/20260101T000000Z.meta.age``.

:func:`parse_description` tells our archives apart from anything else in a vault (other tools,
hand uploads, malformed or future formats) without raising.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from uploader.archive import FORMAT_VERSION, ArchiveMetadata, ObjectKind

MAX_DESCRIPTION = 1024
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Dropped in this order if a description would exceed 1,024 characters (never with our keys).
_OPTIONAL = ("encryption", "plaintext-size", "cycle-id", "host", "plaintext-sha256", "cycle-sha256")


class DescriptionError(ValueError):
    """No valid description can be made for this archive."""


@dataclass(frozen=True, slots=True)
class ArchiveDescription:
    """What an archive of ours says about itself. Only ``key`` is required."""

    key: str
    host: str | None = None
    cycle_id: str | None = None
    plaintext_size: int | None = None
    plaintext_sha256: str | None = None
    cycle_sha256: str | None = None  # SHA-256 of the cycle.json, what resume compares
    encryption: str | None = None
    format_version: int = FORMAT_VERSION
    kind: ObjectKind = ObjectKind.ARCHIVE  # an archive, or a cycle's metadata object

    def __post_init__(self) -> None:
        if not self.key:
            raise DescriptionError("an archive description needs a key")
        for sha in (self.plaintext_sha256, self.cycle_sha256):
            if sha is not None and not _SHA256.match(sha):
                raise DescriptionError(f"not a hex SHA-256: {sha[:80]!r}")
        if self.plaintext_size is not None and self.plaintext_size < 0:
            raise DescriptionError(f"negative plaintext size {self.plaintext_size}")

    @classmethod
    def from_metadata(cls, key: str, metadata: Mapping[str, str]) -> ArchiveDescription:
        """From the object metadata ``upload_cycle`` passes to a store (unknown keys dropped;
        :class:`DescriptionError` for a malformed ``cycle-sha256`` or, in the descriptions of
        older archives, ``plaintext-sha256``)."""
        m = ArchiveMetadata.read(metadata)
        return cls(
            key=key,
            host=m.host,
            cycle_id=m.cycle_id,
            plaintext_size=m.plaintext_size,
            plaintext_sha256=m.plaintext_sha256,
            cycle_sha256=m.cycle_sha256,
            encryption=m.encryption,
            kind=m.kind,
        )

    def metadata(self) -> dict[str, str]:
        """The object metadata this description carries (the other stores' names)."""
        return ArchiveMetadata(
            host=self.host,
            cycle_id=self.cycle_id,
            cycle_sha256=self.cycle_sha256,
            plaintext_size=self.plaintext_size,
            encryption=self.encryption,
            plaintext_sha256=self.plaintext_sha256,
            kind=self.kind,
        ).as_metadata(self.format_version)

    def _fields(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "host": self.host,
            "cycle-id": self.cycle_id,
            "plaintext-size": self.plaintext_size,
            "plaintext-sha256": self.plaintext_sha256,
            "cycle-sha256": self.cycle_sha256,
            "encryption": self.encryption,
        }

    def render(self) -> str:
        """The description text: at most 1,024 printable ASCII characters, or
        :class:`DescriptionError`. Optional fields are dropped if (ever) needed to fit."""
        fields = {k: v for k, v in self._fields().items() if v is not None}
        for drop in (None, *_OPTIONAL):
            fields.pop(drop or "", None)
            body = {"format": str(self.kind), "format-version": self.format_version, **fields}
            # ensure_ascii escapes everything outside 0x20-0x7E, so the text is always printable.
            text = json.dumps(body, separators=(",", ":"), ensure_ascii=True)
            if len(text) <= MAX_DESCRIPTION:
                return text
        raise DescriptionError(f"key {self.key[:60]!r}... is too long for an archive description")


def parse_description(text: str | None) -> ArchiveDescription | None:
    """Our description of an archive, or None for anything else. Never raises."""
    try:
        return _parse(text)
    except (ValueError, RecursionError):  # DescriptionError and JSON errors are ValueErrors
        return None


def _check(condition: bool) -> None:
    if not condition:
        raise DescriptionError("not one of our archive descriptions")


def _parse(text: str | None) -> ArchiveDescription:
    _check(bool(text) and len(text or "") <= MAX_DESCRIPTION and bool(_PRINTABLE.match(text or "")))
    data = json.loads(text or "")
    _check(isinstance(data, dict) and data.get("format") in tuple(ObjectKind))
    version = data.get("format-version")
    # A version we do not know (a newer one) is not something this program can restore.
    _check(type(version) is int and version == FORMAT_VERSION)
    names = ("key", "host", "cycle-id", "encryption", "plaintext-sha256", "cycle-sha256")
    strings = {k: data.get(k) for k in names}
    _check(all(v is None or isinstance(v, str) for v in strings.values()))
    size = data.get("plaintext-size")
    _check(size is None or type(size) is int)
    return ArchiveDescription(  # validates key, size and SHA-256
        key=strings["key"] or "",
        host=strings["host"],
        cycle_id=strings["cycle-id"],
        plaintext_size=size,
        plaintext_sha256=strings["plaintext-sha256"],
        cycle_sha256=strings["cycle-sha256"],
        encryption=strings["encryption"],
        format_version=version,
        kind=ObjectKind(data["format"]),
    )

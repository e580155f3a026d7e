"""The archive format, in one place: what one uploaded cycle is called and says about itself.

One sealed cycle becomes one archive (see docs/stores.md):

- its object key, ``<host>/<cycle_id>.tar.age`` (``.tar`` when ``[encryption] mode = "none"``);
  a store adds its own prefix;
- its object metadata (S3 user metadata, the local store's ``.meta/<key>.json``, the fields of a
  Glacier archive description): ``format``, ``format-version``, ``host``, ``cycle-id``,
  ``cycle-sha256``, ``plaintext-size``, ``encryption``; archives of earlier versions carry
  ``plaintext-sha256`` instead of ``cycle-sha256``;
- the cold storage classes whose archives need a retrieval before they can be read,
  :data:`VAULT`, the pseudo storage class of an archive in a Glacier vault, and each class's
  minimum storage duration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

ARCHIVE_FORMAT = "glacier-backup-archive"
FORMAT_VERSION = 1

VAULT = "GLACIER_VAULT"  # the "storage class" of an archive in a Glacier vault (not an S3 class)
S3_COLD_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})  # S3 classes read only after a restore
COLD_CLASSES = S3_COLD_CLASSES | {VAULT}  # every class whose archives need a retrieval
# Minimum storage duration in days: deleting earlier is billed as if kept that long. It is also
# what ``[store] lock_for = "auto"`` locks an archive for (uploader.object_lock).
MIN_STORAGE_DAYS: dict[str, int] = {
    VAULT: 90,
    "GLACIER": 90,
    "GLACIER_IR": 90,
    "DEEP_ARCHIVE": 180,
    "STANDARD_IA": 30,
    "STANDARD": 0,
}

OBJECT_KEY = re.compile(r"^(?P<host>[^/]+)/(?P<cycle>\d{8}T\d{6}Z(?:-\d+)?)\.tar(?:\.age)?$")


def object_key(host: str, cycle_id: str, encrypted: bool = True) -> str:
    """Where a cycle's archive lives in a store (the store adds its own prefix)."""
    return f"{host}/{cycle_id}.tar.age" if encrypted else f"{host}/{cycle_id}.tar"


@dataclass(frozen=True, slots=True)
class ObjectKey:
    """The parts of an archive's object key."""

    host: str
    cycle_id: str
    encrypted: bool


def parse_object_key(key: str) -> ObjectKey | None:
    """The host and cycle of an archive's key, or None for a key that is not one of ours."""
    m = OBJECT_KEY.match(key)
    if m is None:
        return None
    return ObjectKey(m["host"], m["cycle"], key.endswith(".age"))


@dataclass(frozen=True, slots=True)
class ArchiveMetadata:
    """What an archive says about itself in its object metadata (every field optional)."""

    host: str | None = None
    cycle_id: str | None = None
    cycle_sha256: str | None = None  # SHA-256 of the bundle's cycle.json: pins every file
    plaintext_size: int | None = None  # size of the bundle (the tar before encryption)
    encryption: str | None = None  # "age" or "none"
    plaintext_sha256: str | None = None  # the bundle's SHA-256, in archives of earlier versions

    def as_metadata(self, format_version: int = FORMAT_VERSION) -> dict[str, str]:
        """The object metadata a store keeps with the archive (fields that are None left out)."""
        out = {"format": ARCHIVE_FORMAT, "format-version": str(format_version)}
        fields = {
            "host": self.host,
            "cycle-id": self.cycle_id,
            "cycle-sha256": self.cycle_sha256,
            "plaintext-size": self.plaintext_size,
            "encryption": self.encryption,
            "plaintext-sha256": self.plaintext_sha256,
        }
        out.update({name: str(value) for name, value in fields.items() if value is not None})
        return out

    @classmethod
    def read(cls, metadata: Mapping[str, str]) -> ArchiveMetadata:
        """The fields of ``metadata`` whatever its ``format`` (unknown names are ignored; a
        ``plaintext-size`` that is not a number is left out)."""
        size = metadata.get("plaintext-size")
        return cls(
            host=metadata.get("host"),
            cycle_id=metadata.get("cycle-id"),
            cycle_sha256=metadata.get("cycle-sha256"),
            plaintext_size=int(size)
            if size is not None and size.isascii() and size.isdigit()
            else None,
            encryption=metadata.get("encryption"),
            plaintext_sha256=metadata.get("plaintext-sha256"),
        )

    @classmethod
    def parse(cls, metadata: Mapping[str, str]) -> ArchiveMetadata | None:
        """The metadata of one of our archives (``format`` says so), or None for any other
        object (another tool's, a hand upload)."""
        if metadata.get("format") != ARCHIVE_FORMAT:
            return None
        return cls.read(metadata)

"""What ``verify`` compares, as pure functions: what the catalogue expects of an object against
what the store reports (S3 and local: :class:`StoredChecksums`; a vault: its latest inventory).

Each function returns what it checked and the problems it found, in words a user can act on;
no I/O, nothing is changed anywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from uploader.archive import ArchiveMetadata, ObjectKind
from uploader.catalogue.records import ExpectedObject, InventoryEntry, StoredPart
from uploader.stores.base import PartChecksum, StoredChecksums
from uploader.stores.glacier.treehash import combine_tree_hashes

__all__ = [
    "Check",
    "Outcome",
    "check_inventory",
    "check_stored",
    "composite_sha256",
    "tree_hash_of",
]


class Outcome(StrEnum):
    """One archive's verdict."""

    OK = "ok"
    FAILED = "failed"
    UNVERIFIED = "unverified"  # nothing to compare with yet (a vault inventory older than it)


@dataclass(slots=True)
class Check:
    """What was compared for one object, and what did not match."""

    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unverified: str | None = None

    @property
    def outcome(self) -> Outcome:
        """FAILED on any problem; UNVERIFIED when nothing could be compared."""
        if self.problems:
            return Outcome.FAILED
        return Outcome.UNVERIFIED if self.unverified else Outcome.OK

    def add(self, other: Check, name: str = "") -> None:
        """Take in another check: of the same object, or of another one ``name`` names (its
        metadata object)."""
        if not name:
            self.checked += other.checked
            self.problems += other.problems
        else:
            if other.checked:
                self.checked.append(f"{name} ({', '.join(other.checked)})")
            self.problems += [f"{name}: {p}" for p in other.problems]
        if other.unverified and not self.unverified:
            self.unverified = f"{name}: {other.unverified}" if name else other.unverified


def composite_sha256(parts: Sequence[StoredPart]) -> str | None:
    """S3's COMPOSITE checksum of an object uploaded in ``parts``: base64 of the SHA-256 of the
    parts' SHA-256 digests, then ``-<number of parts>``. None if a part's checksum is unknown."""
    try:
        digests = b"".join(base64.b64decode(p.checksum, validate=True) for p in parts)
    except (binascii.Error, ValueError):
        return None
    if not parts or len(digests) != 32 * len(parts):
        return None
    return f"{base64.b64encode(hashlib.sha256(digests).digest()).decode()}-{len(parts)}"


def tree_hash_of(expected: ExpectedObject) -> str | None:
    """The SHA-256 tree hash of a vault archive, from its parts' tree hashes (None: unknown)."""
    hashes = [p.etag for p in expected.parts]
    if not hashes or any(len(h) != 64 for h in hashes):
        return None
    try:
        return combine_tree_hashes(hashes)
    except ValueError:
        return None


def check_stored(
    expected: ExpectedObject,
    stored: StoredChecksums,
    *,
    kind: ObjectKind = ObjectKind.ARCHIVE,
    cycle_sha256: str | None = None,
) -> Check:
    """An object of an S3 or local store against what the catalogue expects of it."""
    c = Check()
    _size(c, expected.size, stored.size)
    _same(c, "ETag", expected.etag, stored.etag, "another object is under the key")
    _same(c, "version", expected.version_id, stored.version_id, "another object is under the key")
    if expected.parts:
        if stored.parts is not None:
            _parts(c, expected.parts, stored.parts)
        if stored.checksum_sha256:
            _whole(c, expected.parts, stored)
        if stored.parts is None and not stored.checksum_sha256:
            c.checked.append("no checksum kept by the store (size only)")
    else:
        c.checked.append("no part checksums recorded (size only)")
    _metadata(c, stored.metadata, kind, cycle_sha256)
    return c


def check_inventory(
    expected: ExpectedObject, item: InventoryEntry | None, inventory_date: str
) -> Check:
    """A vault archive against the latest inventory (its size and SHA-256 tree hash)."""
    c = Check()
    if item is None:
        c.problems.append(f"not in the vault inventory of {inventory_date}")
        return c
    _size(c, expected.size, item.size)
    tree = tree_hash_of(expected)
    if tree is None:
        c.checked.append("no tree hash recorded for it (size only)")
    elif item.tree_hash is not None:
        c.checked.append("SHA-256 tree hash")
        if item.tree_hash != tree:
            c.problems.append(
                f"tree hash {item.tree_hash[:16]}... in the inventory, {tree[:16]}... uploaded"
            )
    return c


def _size(c: Check, expected: int, found: int) -> None:
    c.checked.append("size")
    if found != expected:
        what = "truncated" if found < expected else "longer than uploaded"
        c.problems.append(f"{found} bytes in the store, {expected} uploaded ({what})")


def _same(c: Check, name: str, expected: str | None, found: str | None, why: str) -> None:
    if expected is None:
        return
    c.checked.append(name)
    if found != expected:
        c.problems.append(f"{name} {found} in the store, {expected} when uploaded: {why}")


def _parts(c: Check, expected: Sequence[StoredPart], found: Sequence[PartChecksum]) -> None:
    sums = all(f.checksum for f in found)
    c.checked.append(f"{len(expected)} part {'SHA-256 checksums' if sums else 'sizes'}")
    if len(found) != len(expected):
        c.problems.append(f"{len(found)} parts in the store, {len(expected)} uploaded")
        return
    sizes = [str(e.number) for e, f in zip(expected, found, strict=True) if e.size != f.size]
    if sizes:
        c.problems.append(f"part(s) {', '.join(sizes[:10])} have another size than uploaded")
    bad = [
        str(e.number)
        for e, f in zip(expected, found, strict=True)
        if e.checksum and f.checksum and f.checksum != e.checksum
    ]
    if bad:
        c.problems.append(f"SHA-256 of part(s) {', '.join(bad[:10])} differ from the upload")


def _whole(c: Check, parts: Sequence[StoredPart], stored: StoredChecksums) -> None:
    value = stored.checksum_sha256 or ""
    if stored.checksum_type == "FULL_OBJECT" and stored.parts is not None:
        return  # a local store: its parts were compared above
    expected = composite_sha256(parts)
    if expected is None:
        return
    c.checked.append("composite SHA-256")
    base, _, count = value.partition("-")
    want_base, _, want_count = expected.partition("-")
    if base != want_base or (count and count != want_count):
        c.problems.append("the object's SHA-256 checksum differs from the upload's parts")


def _metadata(
    c: Check, metadata: Mapping[str, str], kind: ObjectKind, cycle_sha256: str | None
) -> None:
    if not metadata:
        return
    c.checked.append("object metadata")
    ours = ArchiveMetadata.parse(metadata)
    if ours is None or ours.kind is not kind:
        c.problems.append(f"its object metadata does not say it is our {kind.name.lower()}")
    elif cycle_sha256 and ours.cycle_sha256 and ours.cycle_sha256 != cycle_sha256:
        c.problems.append("its cycle-sha256 is not the cycle.json the catalogue has")

"""verify's pure comparisons: what the catalogue expects against what a store reports."""

from __future__ import annotations

import base64
import hashlib

from uploader.archive import ArchiveMetadata, ObjectKind
from uploader.catalogue import ExpectedObject, InventoryEntry, StoredPart
from uploader.stores.base import PartChecksum, StoredChecksums
from uploader.stores.glacier.treehash import tree_hash
from uploader.verify.checks import Outcome, check_inventory, check_stored, composite_sha256


def _b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


PARTS = [b"a" * 100, b"b" * 100, b"c" * 7]
EXPECTED = ExpectedObject(
    "h/c.tar.age",
    207,
    etag='"e-3"',
    part_size=100,
    parts=tuple(StoredPart(i, len(p), _b64(p), "") for i, p in enumerate(PARTS, start=1)),
)
META = ArchiveMetadata(host="h", cycle_id="c", cycle_sha256="f" * 64).as_metadata()


def _s3(**changes: object) -> StoredChecksums:
    value = {
        "size": 207,
        "etag": '"e-3"',
        "checksum_sha256": composite_sha256(EXPECTED.parts),
        "checksum_type": "COMPOSITE",
        "parts": None,
        "metadata": META,
    }
    value.update(changes)
    return StoredChecksums(**value)  # type: ignore[arg-type]


def test_the_composite_checksum_is_s3s() -> None:
    digests = b"".join(hashlib.sha256(p).digest() for p in PARTS)
    expected = base64.b64encode(hashlib.sha256(digests).digest()).decode() + "-3"
    assert composite_sha256(EXPECTED.parts) == expected


def test_a_good_object_passes_and_each_fault_is_named() -> None:
    ok = check_stored(EXPECTED, _s3(), cycle_sha256="f" * 64)
    assert ok.outcome is Outcome.OK and "composite SHA-256" in ok.checked
    cases = {
        "truncated": _s3(size=100),
        "ETag": _s3(etag='"other-3"'),
        "SHA-256 checksum differs": _s3(checksum_sha256=composite_sha256(EXPECTED.parts[:2])),
        "part(s) 2": _s3(
            parts=(
                PartChecksum(1, 100, _b64(PARTS[0])),
                PartChecksum(2, 100, _b64(b"x" * 100)),
                PartChecksum(3, 7, _b64(PARTS[2])),
            )
        ),
        "not the cycle.json": _s3(),
        "does not say it is our archive": _s3(metadata={"format": "something-else"}),
    }
    for needle, stored in cases.items():
        sha = "0" * 64 if needle == "not the cycle.json" else "f" * 64
        c = check_stored(EXPECTED, stored, cycle_sha256=sha)
        assert c.outcome is Outcome.FAILED and needle in " ".join(c.problems), needle
    # a metadata object is judged as one
    meta = ArchiveMetadata(host="h", kind=ObjectKind.METADATA).as_metadata()
    assert check_stored(EXPECTED, _s3(metadata=meta), kind=ObjectKind.METADATA).outcome == "ok"


def test_a_vault_archive_against_its_inventory() -> None:
    data = b"z" * (3 << 20)
    tree = tree_hash(data)
    vault = ExpectedObject(
        "h/c.tar.age", len(data), "id", parts=(StoredPart(1, len(data), "", tree),)
    )
    good = InventoryEntry("id", len(data), "h/c.tar.age", tree)
    assert check_inventory(vault, good, "2026-01-01").outcome is Outcome.OK
    short = InventoryEntry("id", 1000, "h/c.tar.age", tree_hash(data[:1000]))
    c = check_inventory(vault, short, "2026-01-01")
    assert "1000 bytes in the store" in " ".join(c.problems) and "tree hash" in " ".join(c.problems)
    assert "not in the vault inventory" in " ".join(check_inventory(vault, None, "x").problems)

"""Regression: a resumed upload checks the parts an earlier attempt had acknowledged against
the bytes on disk now (review: an attempt that read bad bytes and was interrupted before that
file's end kept its bad part, and the archive was recorded with the good bundle's SHA-256)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from localbackup.formats import load_sealed_cycle
from uploader.bundle import BundleReader
from uploader.catalogue import Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.multipart import MultipartOptions
from uploader.stores.base import Store, TransientStoreError
from uploader.stores.local import LocalStore
from uploader.upload import upload_cycle

from .conftest import build_cycle, read_object
from .test_upload_recovery import Wrapped

MiB = 1024 * 1024
PLAIN = EncryptionConfig(mode="none")


class DieOnPart2(Wrapped):
    """Part 2 fails for good: only part 1 is acknowledged, and (two tokens with concurrency 1)
    the producer never reaches the end of the data file, so the bad read goes unnoticed."""

    def __init__(self, inner: Store, catalogue: Catalogue) -> None:
        super().__init__(inner)
        self.catalogue = catalogue

    async def upload_part(self, key: str, upload_id: str, number: int, *rest: Any) -> Any:
        if number == 2:
            # once part 1 is recorded (the recorder commits it beside the senders)
            for _ in range(500):
                if self.catalogue.uploads() and self.catalogue.parts(
                    self.catalogue.uploads()[0].id
                ):
                    break
                await asyncio.sleep(0.01)
            raise TransientStoreError("connection reset")  # the upload is kept for a resume
        return await super().upload_part(key, upload_id, number, *rest)


async def _bad_then_good(
    tmp_path: Path, encryption: EncryptionConfig
) -> tuple[bytes, bytes, str, list[int], list[dict[str, Any]]]:
    cycle_dir = build_cycle(tmp_path / "spool", [6 * MiB])
    data_file = cycle_dir / "inc-0000.tar.zst"
    good = data_file.read_bytes()
    bad = bytearray(good)
    bad[4096] ^= 0xFF  # a bad read / bit flip the first attempt saw, in part 1
    store = LocalStore(tmp_path / "store")
    cat = Catalogue(tmp_path / "state" / "c.sqlite3")
    up = UploadConfig(part_size=MiB, concurrency=1)
    opts = MultipartOptions(concurrency=1, retries=0)

    data_file.write_bytes(bytes(bad))
    async with store as s:
        with pytest.raises(TransientStoreError):
            await upload_cycle(cycle_dir, DieOnPart2(s, cat), cat, encryption, up, options=opts)  # type: ignore[arg-type]
    assert [p.number for p in cat.parts(cat.uploads()[0].id)] == [1]
    data_file.write_bytes(good)  # the next attempt reads the right bytes
    async with store as s:
        w = Wrapped(s)
        with capture_logs() as logs:
            rec = await upload_cycle(cycle_dir, w, cat, encryption, up, options=opts)  # type: ignore[arg-type]
        stored = b"".join([c async for c in s.read(rec.key)])
    with BundleReader(cycle_dir, load_sealed_cycle(cycle_dir)) as b:
        bundle = b.read(0, b.size)
    assert rec.confirmed_at is not None
    assert rec.plaintext_sha256 == hashlib.sha256(bundle).hexdigest()
    return stored, bundle, rec.key, w.sent, logs


async def test_a_bad_acknowledged_part_is_sent_again(tmp_path: Path) -> None:
    stored, bundle, _, sent, logs = await _bad_then_good(tmp_path, PLAIN)
    assert stored == bundle  # the archive is the bundle it is recorded as
    assert sent[0] == 1 and sorted(sent) == list(range(1, 8))
    resent = [e for e in logs if e["event"] == "upload.part_resent"]
    assert [(e["part"], e["reason"]) for e in resent] == [(1, "checksum_mismatch")]


async def test_a_bad_acknowledged_encrypted_part_is_sent_again(
    tmp_path: Path, age_key: tuple[Path, str]
) -> None:
    enc = EncryptionConfig(recipients=(age_key[1],))
    stored, bundle, _, sent, logs = await _bad_then_good(tmp_path, enc)
    assert read_object(stored, age_key[0]) == bundle
    assert 1 in sent
    assert [e["part"] for e in logs if e["event"] == "upload.part_resent"] == [1]


async def test_good_acknowledged_parts_are_not_sent_again(tmp_path: Path) -> None:
    cycle_dir = build_cycle(tmp_path / "spool", [6 * MiB])
    store = LocalStore(tmp_path / "store")
    cat = Catalogue(tmp_path / "state" / "c.sqlite3")
    up = UploadConfig(part_size=MiB, concurrency=1)
    opts = MultipartOptions(concurrency=1, retries=0)
    async with store as s:
        with pytest.raises(TransientStoreError):
            await upload_cycle(cycle_dir, DieOnPart2(s, cat), cat, PLAIN, up, options=opts)  # type: ignore[arg-type]
        w = Wrapped(s)
        with capture_logs() as logs:
            await upload_cycle(cycle_dir, w, cat, PLAIN, up, options=opts)  # type: ignore[arg-type]
    assert 1 not in w.sent
    assert not [e for e in logs if e["event"] == "upload.part_resent"]

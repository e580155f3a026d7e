"""kill -9 in the middle of an upload, then resume: nothing acknowledged is sent twice. Runs on
every store; a Glacier vault is read and listed through jobs (StoreAccess)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from localbackup.formats import load_sealed_cycle
from tests.support.killpoints import run_until_killed
from tests.support.waiting import async_wait_for
from uploader.bundle import BundleError, BundleReader, cycle_sha256
from uploader.catalogue import CATALOGUE_FILE, Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.crypto import X25519Identity
from uploader.multipart import MultipartOptions
from uploader.stores.base import PartInfo, Store
from uploader.upload import upload_cycle

from .conftest import build_cycle, read_object, store_spec
from .store_access import StoreAccess, part_size_for

PART = 64 * 1024  # or the smallest part the store takes (part_size_for)
CAPABILITY_AWARE = True  # objects are read and listed through StoreAccess
CHILD = Path(__file__).with_name("resume_child.py")


class Counting:
    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.sent: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def upload_part(self, key: str, upload_id: str, number: int, *rest: Any) -> PartInfo:
        self.sent.append(number)
        return await self.inner.upload_part(key, upload_id, number, *rest)


def _recorded(state_dir: Path) -> set[int]:
    db = state_dir / CATALOGUE_FILE
    if not db.exists():
        return set()
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return {n for (n,) in con.execute("SELECT number FROM upload_parts")}
    except sqlite3.OperationalError:  # schema not created yet
        return set()


async def test_an_upload_killed_mid_way_resumes_without_resending_parts(
    store: Store, store_access: StoreAccess, tmp_path: Path, age_key: tuple[Path, str]
) -> None:
    key_file, recipient = age_key
    part = part_size_for(store, PART)
    cycle_dir = build_cycle(tmp_path / "spool", [part * 8 + 123, 4567])
    state_dir = tmp_path / "state"
    argv = [sys.executable, str(CHILD), str(cycle_dir), str(state_dir), store_spec(store)]
    # the child imports this folder's conftest, which imports tests.support
    env = {**os.environ, "PYTHONPATH": str(CHILD.parents[2])}
    # SIGKILL right after the 4th acknowledged part is recorded (others may be in flight)
    run_until_killed([*argv, recipient], "upload.part_recorded", tmp_path, nth=4, env=env)
    acknowledged = _recorded(state_dir)
    assert len(acknowledged) >= 4
    assert len(await store.list_multipart_uploads()) == 1

    counting = Counting(store)
    with Catalogue.in_state_dir(state_dir) as catalogue:
        total = -(-catalogue.uploads()[0].total_size // part)
        assert len(acknowledged) < total
        record = await upload_cycle(
            cycle_dir,
            counting,  # type: ignore[arg-type]
            catalogue,
            EncryptionConfig(recipients=(recipient,)),
            UploadConfig(part_size=part),
            options=MultipartOptions(concurrency=3, retries=0),
        )
        assert catalogue.uploads() == []
    assert not set(counting.sent) & acknowledged
    assert len(counting.sent) <= total - len(acknowledged)
    assert await store_access.keys(store) == [record.key]
    assert await store.list_multipart_uploads() == []
    blob = await store_access.read(store, record.key)
    with BundleReader(cycle_dir) as bundle:
        assert read_object(blob, key_file) == bundle.read(0, bundle.size)


@pytest.mark.parametrize("gone", ["aborted", "completed"])
async def test_resume_copes_with_an_upload_that_vanished_from_the_store(
    store: Store, tmp_path: Path, gone: str
) -> None:
    part = part_size_for(store, PART)
    cycle_dir = build_cycle(tmp_path / "spool", [part * 3])
    opts = MultipartOptions(concurrency=2, retries=0)
    cfg, up = EncryptionConfig(mode="none"), UploadConfig(part_size=part)
    with Catalogue.in_state_dir(tmp_path / "state") as catalogue:
        first = await upload_cycle(cycle_dir, store, catalogue, cfg, up, options=opts)
        # Rewind the catalogue as if the process died just before recording the outcome.
        with catalogue._tx() as db:
            db.execute("DELETE FROM archives")
            db.execute(
                "INSERT INTO uploads (store, key, cycle_id, host, upload_id, part_size, total_size,"
                " plaintext_size, plaintext_sha256, encryption, started_at) VALUES"
                " (?, ?, ?, ?, 'gone', ?, ?, ?, ?, NULL, '2026-01-01T00:00:00+00:00')",
                (
                    store.name,
                    first.key,
                    first.cycle_id,
                    first.host,
                    part,
                    first.size,
                    first.size,
                    # what an upload in progress records: the bundle is identified by cycle.json
                    f"cycle-sha256:{cycle_sha256(load_sealed_cycle(cycle_dir))}",
                ),
            )
        if gone == "aborted":
            await store.delete(first.key)
        counting = Counting(store)
        again = await upload_cycle(cycle_dir, counting, catalogue, cfg, up, options=opts)  # type: ignore[arg-type]
        assert again.key == first.key
        assert (counting.sent == []) == (gone == "completed")
        assert catalogue.uploads() == []
        assert again.plaintext_sha256 == first.plaintext_sha256 == _bundle_sha256(cycle_dir)


def _bundle_sha256(cycle_dir: Path) -> str:
    with BundleReader(cycle_dir) as bundle:
        return hashlib.sha256(bundle.read(0, bundle.size)).hexdigest()


class StopAt(Counting):
    """Acknowledges parts below ``stop``; later parts hang until the upload is cancelled."""

    def __init__(self, inner: Store, stop: int, concurrency: int) -> None:
        super().__init__(inner)
        self.stop, self.concurrency = stop, concurrency
        self.stalled = asyncio.Event()
        self.waiting = 0

    async def upload_part(self, key: str, upload_id: str, number: int, *rest: Any) -> PartInfo:
        if number < self.stop:
            return await super().upload_part(key, upload_id, number, *rest)
        self.waiting += 1
        if self.waiting == self.concurrency:  # every sender is past parts 1..stop-1
            self.stalled.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def _interrupted_upload(
    store: Store, cycle_dir: Path, catalogue: Catalogue, cfg: EncryptionConfig, part: int
) -> set[int]:
    """Upload until parts 1 and 2 are stored and recorded, then cancel (as Ctrl-C would)."""
    stopping = StopAt(store, stop=3, concurrency=2)
    task = asyncio.create_task(
        upload_cycle(
            cycle_dir,
            stopping,  # type: ignore[arg-type]
            catalogue,
            cfg,
            UploadConfig(part_size=part),
            options=MultipartOptions(concurrency=2, retries=0),
        )
    )
    await stopping.stalled.wait()

    def recorded() -> bool:  # parts are recorded by their own task, shortly after the acks
        uploads = catalogue.uploads()
        return bool(uploads) and {p.number for p in catalogue.parts(uploads[0].id)} == {1, 2}

    await async_wait_for(recorded, 30, "parts 1 and 2 to be recorded")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (upload,) = catalogue.uploads()
    return {p.number for p in catalogue.parts(upload.id)}


@pytest.mark.parametrize("corrupt", [False, True], ids=["intact", "changed-before-resume-point"])
async def test_a_resume_that_starts_mid_file_still_verifies_that_file(
    store: Store, store_access: StoreAccess, tmp_path: Path, corrupt: bool
) -> None:
    # One data file over six parts: the resume starts at part 3, in the middle of it.
    part = part_size_for(store, PART)
    cycle_dir = build_cycle(tmp_path / "spool", [part * 6, 100])
    cfg = EncryptionConfig(recipients=(X25519Identity.generate().recipient().to_string(),))
    with Catalogue.in_state_dir(tmp_path / "state") as catalogue:
        assert await _interrupted_upload(store, cycle_dir, catalogue, cfg, part) == {1, 2}
        assert len(await store.list_multipart_uploads()) == 1
        if corrupt:  # bytes that were already sent, so the resume does not send them again
            target = cycle_dir / load_sealed_cycle(cycle_dir).files[0].name
            data = bytearray(target.read_bytes())
            data[100] ^= 1
            target.write_bytes(data)
        counting = Counting(store)
        resume = upload_cycle(
            cycle_dir,
            counting,  # type: ignore[arg-type]
            catalogue,
            cfg,
            UploadConfig(part_size=part),
            options=MultipartOptions(concurrency=2, retries=0),
        )
        if corrupt:
            with pytest.raises(BundleError, match="SHA-256 does not match"):
                await resume
            assert await store.list_multipart_uploads() == []
            assert await store_access.keys(store) == []
            assert catalogue.uploads() == [] and catalogue.archives() == []
            return
        record = await resume
    assert 1 not in counting.sent and 2 not in counting.sent
    assert await store_access.keys(store) == [record.key]
    assert record.plaintext_sha256 == _bundle_sha256(cycle_dir)

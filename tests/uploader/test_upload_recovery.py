"""Regression tests for the upload path: completion, transient failures, pruned cycles,
unrecorded Glacier parts, and a local complete killed half-way.

Every "crash" here is a real SIGKILL of a ``glacier-backup upload`` child process, frozen at a
named pause point (tests/support/killpoints.py); the next run is the code under test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import uploader.stores.local as local_mod
from emulators.glacier.control_client import ControlClient
from tests.support.killpoints import glacier_backup, run_until_killed, write_config
from uploader import catalogue as cm
from uploader.archive import METADATA_FORMAT, parse_object_key
from uploader.catalogue import Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.maintenance import MaintenanceConfig, run_maintenance
from uploader.maintenance.retention import RetentionConfig
from uploader.multipart import MultipartOptions
from uploader.stores.base import PartInfo, Store, TransientStoreError, UploadNotFound
from uploader.stores.local import LocalStore
from uploader.upload import CyclePruned, pending_cycle_dirs, upload_cycle

from .conftest import build_cycle, with_metadata
from .glacier_support import glacier_store, make_vault

MiB = 1024 * 1024
PLAIN = EncryptionConfig(mode="none")


async def _noop(_: float) -> None:
    return None


class Wrapped:
    """A store whose calls can be intercepted; everything else goes to ``inner``. ``sent`` and
    ``completes`` count the archive's parts and completions (its metadata object, sent after
    it, is counted apart: ``metadata_sent``)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.sent: list[int] = []
        self.completes = 0
        self.metadata_sent: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def upload_part(self, key: str, upload_id: str, number: int, *rest: Any) -> PartInfo:
        (self.sent if parse_object_key(key) else self.metadata_sent).append(number)
        return await self.inner.upload_part(key, upload_id, number, *rest)

    async def complete_multipart_upload(self, key: str, upload_id: str, parts: Any) -> None:
        self.completes += parse_object_key(key) is not None
        await self.inner.complete_multipart_upload(key, upload_id, parts)


# -- 1. Glacier: no second archive after a crash or a lost answer at completion ----------------


def _archives(ctl: ControlClient, vault: str) -> int:
    """Archives in the vault, each cycle's metadata object (a small archive) not counted."""
    descriptions = ctl.state()["vaults"][vault]["descriptions"].values()
    return sum(METADATA_FORMAT not in d for d in descriptions)


def _vault(endpoint: str, vault: str) -> dict[str, object]:
    return {"type": "glacier", "vault": vault, "region": "us-east-1", "endpoint_url": endpoint}


def killed_upload(
    tmp_path: Path,
    store: dict[str, object],
    point: str,
    *,
    part_size: str = "1MiB",
    concurrency: int = 2,
) -> Catalogue:
    """``glacier-backup upload`` of the spool's cycle, SIGKILLed at ``point``; its catalogue."""
    config = write_config(
        tmp_path / "config.toml",
        {
            "state_dir": tmp_path / "state",
            "backup": {"sources": [], "spool_dir": tmp_path / "spool", "host": "testhost"},
            "encryption": {"mode": "none"},
            "store": store,
            "upload": {"part_size": part_size, "concurrency": concurrency},
        },
    )
    run_until_killed(glacier_backup(config, "upload"), point, tmp_path)
    return Catalogue.in_state_dir(tmp_path / "state")


async def test_crash_after_glacier_complete_does_not_make_a_second_archive(
    tmp_path: Path, glacier_endpoint: str, aws_env: None
) -> None:
    cycle_dir = build_cycle(tmp_path / "spool", [3 * MiB + 7, 1234])
    vault, ctl = make_vault(glacier_endpoint), ControlClient(glacier_endpoint)
    up = UploadConfig(part_size=MiB, concurrency=2)
    # the process dies right after Glacier completed, before the catalogue knows
    cat = killed_upload(tmp_path, _vault(glacier_endpoint, vault), "upload.after_complete")
    assert _archives(ctl, vault) == 1
    (first_id,) = ctl.state()["vaults"][vault]["archive_ids"]
    (upload,) = cat.uploads()
    assert upload.state == "completing"

    async with glacier_store(glacier_endpoint, vault) as s2:  # a new process
        w = Wrapped(s2)
        rec = await upload_cycle(cycle_dir, w, cat, PLAIN, up)  # type: ignore[arg-type]
    assert w.sent == [] and w.completes == 1
    assert _archives(ctl, vault) == 1
    assert cat.uploads() == []
    assert rec.confirmed_at is not None
    assert cm.archive_id_of(cat, rec.store, rec.key) == first_id


async def test_lost_completion_answer_is_completed_again(
    tmp_path: Path, glacier_endpoint: str, aws_env: None
) -> None:
    cycle_dir = build_cycle(tmp_path / "spool", [2 * MiB + 5])
    vault, ctl = make_vault(glacier_endpoint), ControlClient(glacier_endpoint)
    up = UploadConfig(part_size=MiB)
    cat = Catalogue(tmp_path / "state" / "c.sqlite3")

    class LostAnswer(Wrapped):
        async def complete_multipart_upload(self, key: str, upload_id: str, parts: Any) -> None:
            await self.inner.complete_multipart_upload(key, upload_id, parts)
            raise TransientStoreError("connection reset while reading the answer")

    async with glacier_store(glacier_endpoint, vault) as s1:
        with pytest.raises(TransientStoreError):
            await upload_cycle(cycle_dir, LostAnswer(s1), cat, PLAIN, up)  # type: ignore[arg-type]
    assert _archives(ctl, vault) == 1
    assert [u.state for u in cat.uploads()] == ["completing"]
    async with glacier_store(glacier_endpoint, vault) as s2:
        w = Wrapped(s2)
        rec = await upload_cycle(cycle_dir, w, cat, PLAIN, up)  # type: ignore[arg-type]
    assert w.sent == [] and _archives(ctl, vault) == 1
    assert cm.archive_id_of(cat, rec.store, rec.key) is not None


async def test_completed_glacier_upload_that_is_gone_is_recorded_unconfirmed(
    tmp_path: Path, glacier_endpoint: str, aws_env: None
) -> None:
    cycle_dir = build_cycle(tmp_path / "spool", [2 * MiB + 5])
    vault, ctl = make_vault(glacier_endpoint), ControlClient(glacier_endpoint)
    up = UploadConfig(part_size=MiB)
    cat = killed_upload(tmp_path, _vault(glacier_endpoint, vault), "upload.after_complete")

    class Forgotten(Wrapped):  # days later: Glacier no longer knows the archive's upload id
        async def complete_multipart_upload(self, key: str, upload_id: str, parts: Any) -> None:
            if parse_object_key(key) is None:  # its metadata object's: a new upload
                return await super().complete_multipart_upload(key, upload_id, parts)
            self.completes += 1
            raise UploadNotFound(f"no upload {upload_id}")

    async with glacier_store(glacier_endpoint, vault) as s2:
        w = Forgotten(s2)
        rec = await upload_cycle(cycle_dir, w, cat, PLAIN, up)  # type: ignore[arg-type]
        assert w.sent == [] and w.completes == 1
        assert rec.confirmed_at is None
        assert cm.archive_id_of(cat, rec.store, rec.key) is None
        assert cat.uploads() == []
        # nothing uploads it again
        assert pending_cycle_dirs(tmp_path / "spool", cat, s2.name) == []
        again = await upload_cycle(cycle_dir, w, cat, PLAIN, up)  # type: ignore[arg-type]
        assert again.key == rec.key and w.sent == [] and w.completes == 1
    assert _archives(ctl, vault) == 1


async def test_repeated_complete_on_a_local_store(tmp_path: Path) -> None:
    """S3/local: after a crash between complete and recording, completing again (or finding
    the object) is enough."""
    cycle_dir = build_cycle(tmp_path / "spool", [3 * MiB + 5, 100])
    up = UploadConfig(part_size=MiB)
    local = {"type": "local", "path": str(tmp_path / "vault")}
    cat = killed_upload(tmp_path, local, "upload.after_complete")
    async with LocalStore(tmp_path / "vault") as s:
        w = Wrapped(s)
        rec = await upload_cycle(cycle_dir, w, cat, PLAIN, up)  # type: ignore[arg-type]
        assert w.sent == [] and cat.uploads() == []
        assert [o.key for o in await s.list_objects()] == with_metadata(rec.key)


# -- 2. a transient failure keeps the upload's progress ----------------------------------------


class Flaky(Wrapped):
    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.down = True

    async def upload_part(self, key: str, upload_id: str, number: int, *rest: Any) -> PartInfo:
        if self.down and number == 16:
            raise TransientStoreError("network down")
        return await super().upload_part(key, upload_id, number, *rest)


async def test_a_transient_failure_keeps_the_acknowledged_parts(tmp_path: Path) -> None:
    cat = Catalogue(tmp_path / "state" / "c.sqlite3")
    x = build_cycle(tmp_path / "spool", [20 * 4096, 100], host="h", cycle_id="20250101T000000Z")
    opts = MultipartOptions(concurrency=1, retries=2, sleep=_noop)
    up = UploadConfig(part_size=4096)
    async with LocalStore(tmp_path / "vault") as s:
        f = Flaky(s)
        with pytest.raises(TransientStoreError):
            await upload_cycle(x, f, cat, PLAIN, up, options=opts)  # type: ignore[arg-type]
        first = list(f.sent)
        assert len(first) >= 15
        assert len(await s.list_multipart_uploads()) == 1  # not aborted
        assert len(cat.uploads()) == 1  # not dropped
        f.down = False
        rec = await upload_cycle(x, f, cat, PLAIN, up, options=opts)  # type: ignore[arg-type]
        again = f.sent[len(first) :]
        assert not set(first) & set(again)
        assert 16 in again
        assert [o.key for o in await s.list_objects()] == with_metadata(rec.key)


# -- 3. a pruned cycle is not pending again ------------------------------------------------------


async def test_a_pruned_cycle_is_not_uploaded_again(tmp_path: Path) -> None:
    vault, spool = tmp_path / "vault", tmp_path / "spool"
    up = UploadConfig()
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    clock = {"now": t0}
    cat = Catalogue(tmp_path / "state" / "c.sqlite3", clock=lambda: clock["now"])
    ids = ["20250101T000000Z", "20250201T000000Z", "20250301T000000Z"]
    dirs = []
    async with LocalStore(vault) as s:
        for i, cid in enumerate(ids):
            clock["now"] = t0 + timedelta(days=31 * i)
            dirs.append(build_cycle(spool, [5000, 100], host="h", cycle_id=cid, seed=i))
            await upload_cycle(dirs[-1], s, cat, PLAIN, up)
    cfg = MaintenanceConfig(
        # one cycle (its 10 KiB archive and 10 KiB metadata object) fits, two do not
        retention=RetentionConfig(max_store_size=30_000, min_age=0, keep_last=1),
        storage_class="LOCAL",
        host="h",
    )
    now = t0 + timedelta(days=100)
    async with LocalStore(vault) as s:
        report = await run_maintenance(s, cat, cfg, now)
        pruned = cm.pruned_cycle_ids(cat, s.name)
        assert report.deleted and pruned
        assert pending_cycle_dirs(spool, cat, s.name) == []
        victim = next(d for d in dirs if d.name in pruned)
        with pytest.raises(CyclePruned, match="was pruned from"):
            await upload_cycle(victim, s, cat, PLAIN, up)
        forced = await upload_cycle(victim, s, cat, PLAIN, up, force=True)
        assert forced.cycle_id == victim.name


def test_expected_next_upload_skips_pruned_cycles(tmp_path: Path) -> None:
    from watcher import maintenance_loop

    spool = tmp_path / "spool"
    build_cycle(spool, [5000, 100], host="h", cycle_id="20250101T000000Z")
    cat = Catalogue(tmp_path / "state" / "c.sqlite3")
    with cat.transaction() as db:
        db.execute(
            "INSERT INTO pending_deletions (store, key, archive_id, cycle_id, size, deleted_at)"
            " VALUES ('st', 'h/20250101T000000Z.tar', NULL, '20250101T000000Z', 5100,"
            " '2025-02-01T00:00:00+00:00')"
        )

    class Cfg:
        class backup:
            spool_dir = spool

    assert maintenance_loop.expected_next_upload(Cfg, cat, "st") == 0  # type: ignore[arg-type]
    assert len(pending_cycle_dirs(spool, cat, "other")) == 1


# -- 5. Glacier: an acknowledged, unrecorded part over 1 MiB is not sent again -----------------


async def test_unrecorded_glacier_part_over_one_mib_is_not_sent_again(
    tmp_path: Path, glacier_endpoint: str, aws_env: None
) -> None:
    cycle_dir = build_cycle(tmp_path / "spool", [6 * MiB, 10])
    vault, ctl = make_vault(glacier_endpoint), ControlClient(glacier_endpoint)
    up = UploadConfig(part_size=2 * MiB)
    opts = MultipartOptions(concurrency=1)
    # killed when Glacier has acknowledged part 1 and before the catalogue records it
    cat = killed_upload(
        tmp_path,
        _vault(glacier_endpoint, vault),
        "upload.part_acknowledged",
        part_size="2MiB",
        concurrency=1,
    )
    (upload,) = cat.uploads()
    assert cat.parts(upload.id) == []
    async with glacier_store(glacier_endpoint, vault) as s:
        held = {p.number for p in await s.list_parts(upload.key, upload.upload_id)}
        assert 1 in held  # (part 2 may have been on its way too when the process froze)
        w2 = Wrapped(s)
        await upload_cycle(cycle_dir, w2, cat, PLAIN, up, options=opts)  # type: ignore[arg-type]
    assert sorted(w2.sent) == sorted({1, 2, 3, 4} - held)
    assert _archives(ctl, vault) == 1


# -- 6. local store: kill -9 between os.replace and rmtree in complete -------------------------


async def test_local_complete_killed_before_cleanup_resumes(tmp_path: Path) -> None:
    vault, spool = tmp_path / "vault", tmp_path / "spool"
    up = UploadConfig(part_size=MiB)
    x = build_cycle(spool, [3 * MiB + 5, 100], host="testhost", cycle_id="20250101T000000Z")
    local = {"type": "local", "path": str(vault)}
    cat = killed_upload(tmp_path, local, "store.local.after_replace")
    assert (vault / "testhost" / "20250101T000000Z.tar").exists()  # moved into place ...
    assert list((vault / ".uploads").iterdir())  # ... and the upload not cleaned up yet
    async with LocalStore(vault) as s:
        rec = await upload_cycle(x, s, cat, PLAIN, up)
        assert await s.list_multipart_uploads() == []
        assert [o.key for o in await s.list_objects()] == with_metadata(rec.key)
    assert cat.uploads() == [] and rec.confirmed_at is not None


async def test_local_complete_is_idempotent(tmp_path: Path) -> None:
    async with LocalStore(tmp_path / "vault") as s:
        uid = await s.create_multipart_upload("h/c.tar", 4, {"cycle-sha256": "x"})
        import base64
        import hashlib

        def b64(d: bytes) -> str:
            return base64.b64encode(hashlib.sha256(d).digest()).decode()

        parts = [
            await s.upload_part("h/c.tar", uid, 1, b"abcd", b64(b"abcd")),
            await s.upload_part("h/c.tar", uid, 2, b"ef", b64(b"ef")),
        ]
        real = local_mod.shutil.rmtree
        local_mod.shutil.rmtree = lambda *a, **k: None  # type: ignore[assignment]
        try:
            await s.complete_multipart_upload("h/c.tar", uid, parts)
        finally:
            local_mod.shutil.rmtree = real
        await s.complete_multipart_upload("h/c.tar", uid, parts)  # again: done
        assert (await s.head("h/c.tar")).size == 6
        assert await s.list_multipart_uploads() == []


# -- 4. the ArchiveId is recorded with the archive, in one transaction -------------------------


async def test_archive_id_is_recorded_with_the_archive(
    tmp_path: Path, glacier_endpoint: str, aws_env: None
) -> None:
    cycle_dir = build_cycle(tmp_path / "spool", [MiB + 3])
    cat = Catalogue(tmp_path / "state" / "c.sqlite3")
    real, seen = cat.finish_upload, []

    def finish(*a: Any, **k: Any) -> Any:  # a crash right after this transaction keeps the id
        rec = real(*a, **k)
        seen.append(cm.archive_id_of(cat, rec.store, rec.key))
        return rec

    cat.finish_upload = finish  # type: ignore[method-assign]
    async with glacier_store(glacier_endpoint) as s:
        rec = await upload_cycle(cycle_dir, s, cat, PLAIN, UploadConfig(part_size=MiB))
        info = s._archives[rec.key]
    assert seen == [info.archive_id] and info.archive_id

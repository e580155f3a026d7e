"""Restore from an archive in a store: decrypt, check the bundle, extract every point in time."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from localbackup.extract import ExtractError
from localbackup.seal import seal_cycle
from tests.localbackup.test_extract import T0, History, make_history, restored, snapshot
from uploader.catalogue import Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.crypto import NoIdentityMatchError, PayloadError, load_identities, write_identity_file
from uploader.restore.stream import (
    RestoreError,
    RetrievalRequired,
    find_archives,
    identities_for,
    restore_archive,
    restore_stream,
)
from uploader.stores.base import ObjectInfo
from uploader.stores.local import LocalStore
from uploader.upload import upload_cycle


@dataclass
class Archived:
    history: History
    store: LocalStore
    key: str
    key_file: Path


async def _archive(tmp_path: Path, encrypted: bool = True, mode: str = "incremental") -> Archived:
    h = make_history(tmp_path, mode)
    seal_cycle(h.cycle, "h", mode, tmp_path / "markers", T0 + timedelta(days=1))
    key_file = tmp_path / "key.txt"
    identity = write_identity_file(key_file)
    enc = (
        EncryptionConfig(recipients=(identity.recipient().to_string(),), identity_file=key_file)
        if encrypted
        else EncryptionConfig(mode="none")
    )
    store = LocalStore(tmp_path / "vault")
    with Catalogue.in_state_dir(tmp_path / "state") as cat:
        async with store:
            record = await upload_cycle(h.cycle.path, store, cat, enc, UploadConfig(part_size=None))
    return Archived(h, store, record.key, key_file)


@pytest.mark.parametrize("mode", ["incremental", "differential"])
async def test_every_point_in_time_restores_from_an_encrypted_archive(
    tmp_path: Path, mode: str
) -> None:
    a = await _archive(tmp_path, mode=mode)
    assert a.key.endswith(".tar.age")
    identities = load_identities(a.key_file)
    seen = []
    async with a.store:
        for n, expected in enumerate(a.history.snapshots):
            out = tmp_path / f"out{n}"
            result = await restore_archive(
                a.store, a.key, out, identities=identities, at=n,
                on_plan=lambda c, i: seen.append((c.cycle_id, i.number)),
            )  # fmt: skip
            assert result.increment.number == n
            assert snapshot(restored(out, a.history.src)) == expected, f"increment {n}"
    assert [n for _, n in seen] == [0, 1, 2, 3]


async def test_an_unencrypted_archive_restores(tmp_path: Path) -> None:
    a = await _archive(tmp_path, encrypted=False)
    assert a.key.endswith(".tar") and not a.key.endswith(".age")
    async with a.store:
        await restore_archive(a.store, a.key, tmp_path / "out", identities=None)
    assert snapshot(restored(tmp_path / "out", a.history.src)) == a.history.snapshots[-1]


def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


async def test_a_tampered_archive_fails_authentication_and_leaves_nothing(tmp_path: Path) -> None:
    a = await _archive(tmp_path)
    _flip_middle(tmp_path / "vault" / a.key)
    async with a.store:
        with pytest.raises(PayloadError):
            await restore_archive(
                a.store, a.key, tmp_path / "out", identities=load_identities(a.key_file)
            )
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / ".out.restoring").exists()


async def test_a_corrupted_unencrypted_archive_fails_its_checksums(tmp_path: Path) -> None:
    a = await _archive(tmp_path, encrypted=False)
    _flip_middle(tmp_path / "vault" / a.key)
    async with a.store:
        with pytest.raises((ExtractError, RestoreError)):
            await restore_archive(a.store, a.key, tmp_path / "out", identities=None)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / ".out.restoring").exists()


async def test_a_wrong_key_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    a = await _archive(tmp_path)
    other = write_identity_file(tmp_path / "other.txt")
    async with a.store:
        with pytest.raises(NoIdentityMatchError):
            await restore_archive(a.store, a.key, tmp_path / "out", identities=[other])
    assert not (tmp_path / "out").exists()


class _ColdStore:
    """A local store whose objects report a cold storage class."""

    def __init__(self, inner: LocalStore, storage_class: str) -> None:
        self._inner, self._class = inner, storage_class

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def head(self, key: str) -> ObjectInfo:
        return replace(await self._inner.head(key), storage_class=self._class)


@pytest.mark.parametrize("storage_class", ["DEEP_ARCHIVE", "GLACIER"])
async def test_cold_objects_are_not_read_without_a_retrieval(
    tmp_path: Path, storage_class: str
) -> None:
    a = await _archive(tmp_path)
    cold: Any = _ColdStore(a.store, storage_class)
    async with a.store:
        with pytest.raises(RetrievalRequired, match=rf"{storage_class}.*needs a retrieval"):
            await restore_archive(
                cold, a.key, tmp_path / "out", identities=load_identities(a.key_file)
            )
    assert not (tmp_path / "out").exists()


def test_a_bundle_must_start_with_cycle_json(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("20260101T000000Z/inc-0000.tar.zst")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    raw.seek(0)
    with pytest.raises(RestoreError, match=r"does not start with cycle.json"):
        restore_stream(raw, tmp_path / "out", identities=None)
    assert not (tmp_path / "out").exists()


async def test_archives_are_found_in_the_catalogue_or_else_in_the_store(tmp_path: Path) -> None:
    a = await _archive(tmp_path)
    cycle_id = a.history.cycle.cycle_id
    async with a.store:
        with Catalogue.in_state_dir(tmp_path / "state") as cat:
            assert [x.key for x in await find_archives(a.store, cat, "h")] == [a.key]
        with Catalogue.in_state_dir(tmp_path / "empty-state") as cat:
            listed = await find_archives(a.store, cat, "h")
            assert [(x.cycle_id, x.key) for x in listed] == [(cycle_id, a.key)]
            assert await find_archives(a.store, cat, "otherhost") == []


def test_identities_come_from_the_cli_the_identity_file_or_the_passphrase(tmp_path: Path) -> None:
    key = tmp_path / "k.txt"
    write_identity_file(key)
    assert len(identities_for(EncryptionConfig(identity_file=key))) == 1
    assert len(identities_for(EncryptionConfig(), key)) == 1
    (tmp_path / "pass").write_text("correct horse battery staple\n")
    assert len(identities_for(EncryptionConfig(passphrase_file=tmp_path / "pass"))) == 1
    with pytest.raises(RestoreError, match=r"identity_file"):
        identities_for(EncryptionConfig(recipients=("age1x",)))

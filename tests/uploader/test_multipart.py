"""The multipart driver and the upload use case, against every store (a Glacier vault read and
listed through jobs on the emulator's clock)."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from localbackup.formats import load_sealed_cycle
from uploader.bundle import BundleError, BundleReader
from uploader.catalogue import Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.crypto import X25519Identity, decrypt_file, new_encryption
from uploader.multipart import IncompleteUpload, MultipartOptions, checksum, upload_multipart
from uploader.payload import EncryptedPayload, PartPlan, choose_part_size
from uploader.stores.base import (
    Capabilities,
    MiB,
    PartInfo,
    PermanentStoreError,
    Store,
    TransientStoreError,
)
from uploader.upload import upload_cycle

from .conftest import build_cycle, read_object
from .store_access import StoreAccess, part_size_for

PART = 64 * 1024  # or the smallest part the store takes (part_size_for)
CAPABILITY_AWARE = True  # objects are read and listed through StoreAccess
FAST = MultipartOptions(concurrency=4, retries=3, backoff=lambda n: 0.0)


class Wrapped:
    """Delegates to a store; tests override :meth:`upload_part` to observe or break it."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: list[int] = []
        self.completed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def upload_part(
        self, key: str, upload_id: str, number: int, data: Any, cs: str
    ) -> PartInfo:
        self.calls.append(number)
        return await self.inner.upload_part(key, upload_id, number, data, cs)

    async def complete_multipart_upload(self, *args: Any) -> None:
        self.completed += 1
        await self.inner.complete_multipart_upload(*args)


def _bundle(d: Path) -> bytes:
    with BundleReader(d) as b:
        return b.read(0, b.size)


@pytest.fixture
def catalogue(tmp_path: Path) -> Catalogue:
    return Catalogue.in_state_dir(tmp_path / "state")


async def test_upload_decrypts_with_the_age_cli_to_the_bundle(
    store: Store,
    store_access: StoreAccess,
    tmp_path: Path,
    catalogue: Catalogue,
    age_key: tuple[Path, str],
) -> None:
    part = part_size_for(store, PART)
    key_file, recipient = age_key
    d = build_cycle(tmp_path / "spool", [300_000, 1234, 70_000])
    seen: list[tuple[int, int]] = []
    with capture_logs() as logs:
        record = await upload_cycle(
            d,
            store,
            catalogue,
            EncryptionConfig(recipients=(recipient,)),
            UploadConfig(part_size=part),
            progress=lambda done, total: seen.append((done, total)),
            options=FAST,
        )
    assert record.key == "testhost/20260101T000000Z.tar.age"
    blob = await store_access.read(store, record.key)
    assert len(blob) == record.size
    assert read_object(blob, key_file) == _bundle(d)
    assert seen[-1] == (record.size, record.size)
    events = [e["event"] for e in logs]
    archive = [e["event"] for e in logs if e.get("key") == record.key]
    assert archive[0] == "upload.started" and archive[-1] == "upload.completed"
    assert archive.count("upload.part_done") == -(-record.size // part)
    assert events[-1] == "metadata.uploaded"  # then its metadata object
    info = await store.head(record.key)
    assert info.metadata["cycle-id"] == "20260101T000000Z"
    assert (
        info.metadata["cycle-sha256"] == hashlib.sha256((d / "cycle.json").read_bytes()).hexdigest()
    )
    assert info.metadata["plaintext-size"] == str(len(_bundle(d)))
    assert record.plaintext_sha256 == hashlib.sha256(_bundle(d)).hexdigest()
    assert catalogue.archives()[0].plaintext_sha256 == record.plaintext_sha256
    assert await store.list_multipart_uploads() == []


async def test_parts_are_uploaded_concurrently(
    store: Store, store_access: StoreAccess, tmp_path: Path, catalogue: Catalogue
) -> None:
    part = part_size_for(store, PART)
    in_flight, peak = 0, 0

    class Slow(Wrapped):
        async def upload_part(self, *args: Any) -> PartInfo:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.02)
            try:
                return await super().upload_part(*args)
            finally:
                in_flight -= 1

    d = build_cycle(tmp_path / "spool", [part * 6])
    cfg = EncryptionConfig(mode="none")
    await upload_cycle(d, Slow(store), catalogue, cfg, UploadConfig(part_size=part), options=FAST)  # type: ignore[arg-type]
    assert 1 < peak <= FAST.concurrency


async def test_a_transient_part_failure_is_retried(
    store: Store, store_access: StoreAccess, tmp_path: Path, catalogue: Catalogue
) -> None:
    part = part_size_for(store, PART)

    class Flaky(Wrapped):
        async def upload_part(
            self, key: str, upload_id: str, number: int, data: Any, cs: str
        ) -> PartInfo:
            if number == 2 and self.calls.count(2) < 2:
                self.calls.append(number)
                raise TransientStoreError("connection reset")
            return await super().upload_part(key, upload_id, number, data, cs)

    d = build_cycle(tmp_path / "spool", [part * 3])
    flaky = Flaky(store)
    with capture_logs() as logs:
        record = await upload_cycle(
            d,
            flaky,
            catalogue,
            EncryptionConfig(mode="none"),
            UploadConfig(part_size=part),
            options=FAST,  # type: ignore[arg-type]
        )
    assert flaky.calls.count(2) == 3
    assert [e["attempt"] for e in logs if e["event"] == "upload.part_retry"] == [1, 2]
    assert await store_access.read(store, record.key) == _bundle(d)


async def test_a_fatal_error_aborts_and_leaves_no_multipart_upload(
    store: Store, store_access: StoreAccess, tmp_path: Path, catalogue: Catalogue
) -> None:
    part = part_size_for(store, PART)

    class Broken(Wrapped):
        async def upload_part(
            self, key: str, upload_id: str, number: int, data: Any, cs: str
        ) -> PartInfo:
            if number == 3:
                raise PermanentStoreError("access denied")
            return await super().upload_part(key, upload_id, number, data, cs)

    d = build_cycle(tmp_path / "spool", [part * 6])
    broken = Broken(store)
    with capture_logs() as logs, pytest.raises(PermanentStoreError, match="access denied"):
        await upload_cycle(
            d,
            broken,
            catalogue,
            EncryptionConfig(mode="none"),
            UploadConfig(part_size=part),
            options=FAST,  # type: ignore[arg-type]
        )
    assert "upload.aborted" in [e["event"] for e in logs]
    assert await store.list_multipart_uploads() == []
    assert catalogue.uploads() == []
    assert broken.completed == 0


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "age"])
@pytest.mark.parametrize("bad", [0, 1], ids=["first-file", "last-file"])
async def test_a_file_that_does_not_match_cycle_json_fails_the_upload_while_streaming(
    store: Store,
    store_access: StoreAccess,
    tmp_path: Path,
    catalogue: Catalogue,
    encrypted: bool,
    bad: int,
) -> None:
    part = part_size_for(store, PART)
    d = build_cycle(tmp_path / "spool", [part * 3 + 17, part * 2])
    target = d / load_sealed_cycle(d).files[bad].name
    data = bytearray(target.read_bytes())
    data[-1] ^= 1  # same size, last byte differs: found only once the file has been read
    target.write_bytes(data)
    watched = Wrapped(store)
    cfg = (
        EncryptionConfig(recipients=(X25519Identity.generate().recipient().to_string(),))
        if encrypted
        else EncryptionConfig(mode="none")
    )
    with capture_logs() as logs, pytest.raises(BundleError, match="SHA-256 does not match"):
        await upload_cycle(
            d,
            watched,  # type: ignore[arg-type]
            catalogue,
            cfg,
            UploadConfig(part_size=part),
            options=FAST,
        )
    events = [e["event"] for e in logs]
    assert "upload.started" in events and "upload.aborted" in events  # failed mid-upload
    assert watched.completed == 0
    assert await store.list_multipart_uploads() == []
    assert await store_access.keys(store) == []
    assert catalogue.uploads() == [] and catalogue.archives() == []


async def test_exhausted_retries_keep_the_upload_for_the_next_attempt(
    store: Store, store_access: StoreAccess, tmp_path: Path, catalogue: Catalogue
) -> None:
    part = part_size_for(store, PART)

    class Down(Wrapped):
        async def upload_part(self, *args: Any) -> PartInfo:
            raise TransientStoreError("network unreachable")

    d = build_cycle(tmp_path / "spool", [part * 2])
    with pytest.raises(TransientStoreError):
        await upload_cycle(
            d,
            Down(store),
            catalogue,
            EncryptionConfig(mode="none"),
            UploadConfig(part_size=part),
            options=FAST,  # type: ignore[arg-type]
        )
    # Transient: the multipart upload and its resume state stay, the next attempt resumes them.
    assert len(await store.list_multipart_uploads()) == 1
    assert len(catalogue.uploads()) == 1


async def test_the_byte_count_check_refuses_to_complete_when_short(
    store: Store, store_access: StoreAccess, tmp_path: Path, catalogue: Catalogue
) -> None:
    part = part_size_for(store, PART)

    class Lossy(Wrapped):
        async def upload_part(
            self, key: str, upload_id: str, number: int, data: Any, cs: str
        ) -> PartInfo:
            if number == 2:  # a store (or proxy) that silently loses the last byte
                data = bytes(data[:-1])
                cs = __import__("uploader.multipart").multipart.checksum(data)
            return await super().upload_part(key, upload_id, number, data, cs)

    d = build_cycle(tmp_path / "spool", [part * 3])
    lossy = Lossy(store)
    with pytest.raises(IncompleteUpload):
        await upload_cycle(
            d,
            lossy,
            catalogue,
            EncryptionConfig(mode="none"),
            UploadConfig(part_size=part),
            options=FAST,  # type: ignore[arg-type]
        )
    assert lossy.completed == 0
    assert await store.list_multipart_uploads() == []
    assert await store_access.keys(store) == []


async def test_kept_parts_are_neither_regenerated_nor_sent_again(
    store: Store, store_access: StoreAccess
) -> None:
    """``kept``: parts of an immutable payload (a Glacier job output) acknowledged by an
    earlier attempt; reading them again would mean downloading them again."""
    part = part_size_for(store, PART)
    data = bytes(range(256)) * (3 * part // 256)

    class Counted:
        size = len(data)

        def __init__(self) -> None:
            self.offsets: list[int] = []

        def readinto(self, offset: int, view: memoryview) -> None:
            self.offsets.append(offset)
            view[:] = data[offset : offset + len(view)]

    upload_id = await store.create_multipart_upload("h/kept", part, {})
    first = await store.upload_part("h/kept", upload_id, 1, data[:part], checksum(data[:part]))
    wrapped, source = Wrapped(store), Counted()
    info = await upload_multipart(
        wrapped,  # type: ignore[arg-type]
        "h/kept",
        upload_id,
        source,
        PartPlan(len(data), part),
        kept=[first],
        options=FAST,
    )
    assert info.size == len(data)
    assert sorted(source.offsets) == [part, 2 * part]
    assert sorted(wrapped.calls) == [2, 3]
    assert await store_access.read(store, "h/kept") == data


async def test_an_archived_cycle_is_not_uploaded_again(
    store: Store, store_access: StoreAccess, tmp_path: Path, catalogue: Catalogue
) -> None:
    part = part_size_for(store, PART)
    d = build_cycle(tmp_path / "spool", [part * 2])
    counting = Wrapped(store)
    cfg = EncryptionConfig(mode="none")
    first = await upload_cycle(
        d, counting, catalogue, cfg, UploadConfig(part_size=part), options=FAST
    )  # type: ignore[arg-type]
    n = len(counting.calls)
    again = await upload_cycle(
        d, counting, catalogue, cfg, UploadConfig(part_size=part), options=FAST
    )  # type: ignore[arg-type]
    assert again == first
    assert len(counting.calls) == n
    assert [a.cycle_id for a in catalogue.archives()] == [first.cycle_id]


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 65_537, 3 * 65_536, 200_000])
def test_encrypted_payload_ranges_equal_the_whole_stream(size: int) -> None:
    class Source:
        def __init__(self, data: bytes) -> None:
            self.data, self.size = data, len(data)

        def readinto(self, offset: int, view: memoryview) -> None:
            view[:] = self.data[offset : offset + len(view)]

    identity = X25519Identity.generate()
    plain = bytes(i % 251 for i in range(size))
    payload = EncryptedPayload(Source(plain), new_encryption([identity.recipient()]))
    whole = bytearray(payload.size)
    payload.readinto(0, memoryview(whole))
    out = io.BytesIO()
    decrypt_file(io.BytesIO(bytes(whole)), out, [identity])
    assert out.getvalue() == plain
    for start, step in [(0, 7), (100, 65_552), (5, 65_536), (len(whole) // 2, 1000)]:
        pieces = bytearray()
        pos = start
        while pos < len(whole):
            n = min(step, len(whole) - pos)
            buf = bytearray(n)
            payload.readinto(pos, memoryview(buf))
            pieces += buf
            pos += n
        assert pieces == whole[start:]


def test_part_size_is_chosen_within_the_store_limits() -> None:
    s3 = Capabilities(min_part_size=5 * MiB, max_part_size=5 << 30, max_parts=10_000)
    assert choose_part_size(1, s3) == 16 * MiB
    assert choose_part_size(1 << 40, s3) == 105 * MiB  # 1 TiB / 10,000 rounded up to a MiB
    with pytest.raises(PermanentStoreError):
        choose_part_size(10, s3, configured=1 * MiB)
    with pytest.raises(PermanentStoreError):
        choose_part_size(100 * (5 << 30) * 10_000, s3)
    vault = Capabilities(1 * MiB, 4 << 30, 10_000, power_of_two_parts=True)
    assert choose_part_size(1 << 40, vault) == 128 * MiB
    with pytest.raises(PermanentStoreError):
        choose_part_size(1, vault, configured=3 * MiB)

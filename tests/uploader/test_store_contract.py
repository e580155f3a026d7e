"""The contract every store passes (parametrized over STORE_FACTORIES in conftest)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from uploader.catalogue import StoredPart
from uploader.stores.base import (
    ChecksumReports,
    ObjectNotFound,
    ObjectOptions,
    Store,
    UploadNotFound,
)
from uploader.stores.s3 import S3Store
from uploader.verify.checks import composite_sha256

PART = 64 * 1024
CAPABILITY_AWARE = True  # what a store cannot do (capabilities) is skipped, with the reason


def _part(store: Store) -> int:
    """PART, or the smallest part size the store accepts (Glacier: 1 MiB)."""
    return (
        PART
        if store.capabilities.check_part_size(PART) is None
        else store.capabilities.min_part_size
    )


def _skip_reads(store: Store) -> None:
    if store.capabilities.needs_retrieval:
        pytest.skip("needs_retrieval: reading an object first needs a retrieval job")


def _cs(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


async def _read(store: Store, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, start, end)])


async def _put(
    store: Store,
    key: str,
    data: bytes,
    meta: dict[str, str] | None = None,
    *,
    options: ObjectOptions | None = None,
) -> None:
    part = _part(store)
    upload_id = await store.create_multipart_upload(key, part, meta or {}, options)
    parts = []
    for i in range(0, max(len(data), 1), part):
        chunk = data[i : i + part]
        parts.append(await store.upload_part(key, upload_id, i // part + 1, chunk, _cs(chunk)))
    await store.complete_multipart_upload(key, upload_id, parts)


async def test_capabilities_are_coherent(store: Store) -> None:
    caps = store.capabilities
    assert 0 < caps.min_part_size <= caps.max_part_size
    assert caps.max_parts >= 1
    assert caps.check_part_size(caps.min_part_size) is None


async def test_multipart_upload_round_trips_bytes_and_metadata(store: Store) -> None:
    data = bytes(range(256)) * (PART * 2 // 256) + b"tail"
    await _put(store, "h/c.tar.age", data, {"host": "h", "cycle-id": "c"})
    info = await store.head("h/c.tar.age")
    assert info.size == len(data)
    assert info.metadata["host"] == "h"
    assert info.metadata["cycle-id"] == "c"
    _skip_reads(store)
    assert await _read(store, "h/c.tar.age") == data
    assert await _read(store, "h/c.tar.age", 10, PART + 10) == data[10 : PART + 10]
    assert await _read(store, "h/c.tar.age", PART * 2) == b"tail"


async def test_parts_are_listed_while_in_progress_and_parts_may_arrive_out_of_order(
    store: Store,
) -> None:
    part = _part(store)
    a, b = b"a" * part, b"bb"
    upload_id = await store.create_multipart_upload("h/x", part, {})
    pb = await store.upload_part("h/x", upload_id, 2, b, _cs(b))
    pa = await store.upload_part("h/x", upload_id, 1, a, _cs(a))
    listed = await store.list_parts("h/x", upload_id)
    assert [(p.number, p.size) for p in listed] == [(1, part), (2, 2)]
    assert all(p.checksum in ("", q.checksum) for p, q in zip(listed, [pa, pb], strict=True))
    uploads = await store.list_multipart_uploads("h/")
    assert [(u.key, u.upload_id) for u in uploads] == [("h/x", upload_id)]
    await store.complete_multipart_upload("h/x", upload_id, [pa, pb])
    assert await store.list_multipart_uploads() == []
    _skip_reads(store)
    assert await _read(store, "h/x") == a + b


async def test_abort_drops_the_upload_and_is_idempotent(store: Store) -> None:
    upload_id = await store.create_multipart_upload("h/y", _part(store), {})
    await store.upload_part("h/y", upload_id, 1, b"z", _cs(b"z"))
    await store.abort_multipart_upload("h/y", upload_id)
    assert await store.list_multipart_uploads() == []
    with pytest.raises(UploadNotFound):
        await store.list_parts("h/y", upload_id)
    await store.abort_multipart_upload("h/y", upload_id)
    with pytest.raises(ObjectNotFound):
        await store.head("h/y")


async def test_missing_objects_raise_object_not_found(store: Store) -> None:
    with pytest.raises(ObjectNotFound):
        await store.head("nope/x")
    _skip_reads(store)
    with pytest.raises(ObjectNotFound):
        await _read(store, "nope/x")


async def test_list_objects_filters_by_prefix_and_delete_removes(store: Store) -> None:
    if not store.capabilities.immediate_listing:
        pytest.skip("no immediate_listing: listing needs an inventory job")
    await _put(store, "h1/a", b"1")
    await _put(store, "h2/b", b"22")
    assert [(o.key, o.size) for o in await store.list_objects("h1/")] == [("h1/a", 1)]
    assert sorted(o.key for o in await store.list_objects()) == ["h1/a", "h2/b"]
    await store.delete("h1/a")
    await store.delete("h1/a")
    assert [o.key for o in await store.list_objects()] == ["h2/b"]


async def test_an_empty_object_can_be_uploaded(store: Store) -> None:
    if store.capabilities.power_of_two_parts:
        pytest.skip("power_of_two_parts (Glacier vaults): an archive has at least 1 byte")
    await _put(store, "h/empty", b"")
    assert (await store.head("h/empty")).size == 0
    assert await _read(store, "h/empty") == b""


# -- ChecksumReports: what verify compares without a retrieval ---------------------------------


def _reports(store: Store) -> ChecksumReports:
    if not isinstance(store, ChecksumReports):
        pytest.skip(
            f"{store.name}: a vault reports sizes and tree hashes only in its inventory "
            "(verify compares with the latest one)"
        )
    return store


async def test_stored_checksums_report_what_was_uploaded(store: Store) -> None:
    reports = _reports(store)
    part = _part(store)
    data = bytes(range(256)) * (part * 2 // 256) + b"tail"
    await _put(store, "h/c.tar.age", data, {"format": "glacier-backup-archive", "host": "h"})
    pieces = [data[i : i + part] for i in range(0, len(data), part)]
    stored = await reports.stored_checksums("h/c.tar.age", part)
    assert stored.size == len(data)
    assert stored.metadata["host"] == "h"
    if stored.parts is not None:  # the local store; S3 where it lists ObjectParts
        assert [(p.number, p.size, p.checksum) for p in stored.parts] == [
            (i, len(b), _cs(b)) for i, b in enumerate(pieces, start=1)
        ]
    assert stored.checksum_sha256 is not None
    if stored.checksum_type == "FULL_OBJECT":
        assert stored.checksum_sha256 == _cs(data)
    else:  # S3 keeps the SHA-256 of the parts' SHA-256s for a multipart object
        expected = composite_sha256([StoredPart(i, 0, _cs(b), "") for i, b in enumerate(pieces)])
        assert expected is not None
        assert stored.checksum_sha256.partition("-")[0] == expected.partition("-")[0]
    with pytest.raises(ObjectNotFound):
        await reports.stored_checksums("h/nope", part)


async def test_a_changed_object_reports_other_checksums(store: Store) -> None:
    reports = _reports(store)
    part = _part(store)
    await _put(store, "h/d", b"a" * (part + 10))
    before = await reports.stored_checksums("h/d", part)
    await _put(store, "h/d", b"a" * part + b"b" * 10)  # the same size, one part differs
    after = await reports.stored_checksums("h/d", part)
    assert before.size == after.size
    assert before.checksum_sha256 != after.checksum_sha256
    if before.etag is not None:
        assert before.etag != after.etag


async def test_object_options_choose_the_storage_class(store: Store) -> None:
    await _put(store, "h/m", b"x", options=ObjectOptions(storage_class="STANDARD_IA"))
    info = await store.head("h/m")
    if isinstance(store, S3Store):
        assert info.storage_class == "STANDARD_IA"  # not the store's configured class
    else:
        assert info.size == 1  # no storage classes: the options change nothing

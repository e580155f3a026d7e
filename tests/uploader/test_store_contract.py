"""The contract every store passes (parametrized over STORE_FACTORIES in conftest). Stores that
cannot read or list at once (Glacier vaults) are read and listed through jobs (StoreAccess)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.uploader.store_access import StoreAccess, part_size_for
from uploader.stores.base import ObjectNotFound, Store, UploadNotFound
from uploader.stores.glacier.jobs import InventoryRequired

PART = 64 * 1024
CAPABILITY_AWARE = True  # reads and listings go through StoreAccess


def _part(store: Store) -> int:
    """PART, or the smallest part size the store accepts (Glacier: 1 MiB; SeaweedFS: 5 MiB)."""
    return part_size_for(store, PART)


def _cs(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


async def _put(store: Store, key: str, data: bytes, meta: dict[str, str] | None = None) -> None:
    part = _part(store)
    upload_id = await store.create_multipart_upload(key, part, meta or {})
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


async def test_multipart_upload_round_trips_bytes_and_metadata(
    store: Store, store_access: StoreAccess
) -> None:
    part = _part(store)
    data = bytes(range(256)) * (part * 2 // 256) + b"tail"
    await _put(store, "h/c.tar.age", data, {"host": "h", "cycle-id": "c"})
    info = await store.head("h/c.tar.age")
    assert info.size == len(data)
    assert info.metadata["host"] == "h"
    assert info.metadata["cycle-id"] == "c"
    read = store_access.read
    assert await read(store, "h/c.tar.age") == data
    assert await read(store, "h/c.tar.age", 10, part + 10) == data[10 : part + 10]
    assert await read(store, "h/c.tar.age", part * 2) == b"tail"


async def test_parts_are_listed_while_in_progress_and_parts_may_arrive_out_of_order(
    store: Store, store_access: StoreAccess
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
    assert await store_access.read(store, "h/x") == a + b


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


async def test_missing_objects_raise_object_not_found(
    store: Store, store_access: StoreAccess
) -> None:
    with pytest.raises(ObjectNotFound):
        await store.head("nope/x")
    with pytest.raises(ObjectNotFound):
        await store_access.read(store, "nope/x")


async def test_list_objects_filters_by_prefix_and_delete_removes(
    store: Store, store_access: StoreAccess
) -> None:
    await _put(store, "h1/a", b"1")
    await _put(store, "h2/b", b"22")
    assert await store_access.objects(store, "h1/") == [("h1/a", 1)]
    assert await store_access.keys(store) == ["h1/a", "h2/b"]
    await store.delete("h1/a")
    if store.capabilities.immediate_listing:
        await store.delete("h1/a")  # idempotent
    else:  # a vault forgets the key it deleted: deleting again needs the ArchiveId
        with pytest.raises(InventoryRequired):
            await store.delete("h1/a")
    assert await store_access.keys(store) == ["h2/b"]


async def test_an_empty_object_can_be_uploaded(store: Store, store_access: StoreAccess) -> None:
    if store.capabilities.power_of_two_parts:
        pytest.skip("power_of_two_parts (Glacier vaults): an archive has at least 1 byte")
    await _put(store, "h/empty", b"")
    assert (await store.head("h/empty")).size == 0
    assert await store_access.read(store, "h/empty") == b""

"""The contract every store passes (parametrized over STORE_FACTORIES in conftest). Stores that
cannot read or list at once (Glacier vaults) are read and listed through jobs (StoreAccess)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.uploader.store_access import StoreAccess, part_size_for
from uploader.catalogue import StoredPart
from uploader.stores.base import (
    ChecksumReports,
    ObjectNotFound,
    ObjectOptions,
    Store,
    UploadNotFound,
)
from uploader.stores.glacier.jobs import InventoryRequired
from uploader.stores.glacier.treehash import combine_tree_hashes, tree_hash
from uploader.stores.s3 import S3Store
from uploader.verify.checks import composite_sha256

PART = 64 * 1024
CAPABILITY_AWARE = True  # reads and listings go through StoreAccess


def _part(store: Store) -> int:
    """PART, or the smallest part size the store accepts (Glacier: 1 MiB; SeaweedFS: 5 MiB)."""
    return part_size_for(store, PART)


def _cs(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


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


# -- what verify compares without a retrieval --------------------------------------------------


async def test_the_store_reports_what_was_uploaded_without_a_retrieval(
    store: Store, store_access: StoreAccess
) -> None:
    """S3 and local stores (ChecksumReports): size, metadata, checksums; a vault: the size and
    SHA-256 tree hash its inventory lists (what ``verify`` compares there)."""
    part = _part(store)
    data = bytes(range(256)) * (part * 2 // 256) + b"tail"
    await _put(store, "h/c.tar.age", data, {"format": "glacier-backup-archive", "host": "h"})
    pieces = [data[i : i + part] for i in range(0, len(data), part)]
    if not isinstance(store, ChecksumReports):
        assert store.capabilities.tree_hash_etags  # a vault: its inventory has the tree hash
        listed = await store_access.inventory(store)
        (entry,) = [a for a in listed if a.description and a.description.key == "h/c.tar.age"]
        assert entry.size == len(data)
        assert entry.tree_hash == combine_tree_hashes(tree_hash(b) for b in pieces)
        return
    stored = await store.stored_checksums("h/c.tar.age", part)
    assert stored.size == len(data)
    assert stored.metadata["host"] == "h"
    if stored.parts is not None:  # the local store; S3 where it lists ObjectParts
        assert [(p.number, p.size) for p in stored.parts] == [
            (i, len(b)) for i, b in enumerate(pieces, start=1)
        ]
        # with their checksums where the server lists them (AWS, local; not SeaweedFS)
        assert all(p.checksum in ("", _cs(b)) for p, b in zip(stored.parts, pieces, strict=True))
    assert stored.checksum_sha256 is not None
    if stored.checksum_type == "FULL_OBJECT":
        assert stored.checksum_sha256 == _cs(data)
    else:  # S3 keeps the SHA-256 of the parts' SHA-256s for a multipart object
        expected = composite_sha256([StoredPart(i, 0, _cs(b), "") for i, b in enumerate(pieces)])
        assert expected is not None
        assert stored.checksum_sha256.partition("-")[0] == expected.partition("-")[0]
    with pytest.raises(ObjectNotFound):
        await store.stored_checksums("h/nope", part)


async def test_a_changed_object_reports_other_checksums(
    store: Store, store_access: StoreAccess
) -> None:
    part = _part(store)
    await _put(store, "h/d", b"a" * (part + 10))
    before = (
        await store.stored_checksums("h/d", part) if isinstance(store, ChecksumReports) else None
    )
    await _put(store, "h/d", b"a" * part + b"b" * 10)  # the same size, one part differs
    if not isinstance(store, ChecksumReports):  # a vault: a second archive, its own tree hash
        trees = {a.tree_hash for a in await store_access.inventory(store) if a.size == part + 10}
        assert len(trees) == 2
        return
    after = await store.stored_checksums("h/d", part)
    assert before is not None and before.size == after.size
    assert before.checksum_sha256 != after.checksum_sha256
    if before.parts is not None and after.parts is not None and after.parts[-1].checksum:
        assert before.parts[-1].checksum != after.parts[-1].checksum
    if before.etag is not None:
        assert before.etag != after.etag


async def test_object_options_choose_the_storage_class(store: Store) -> None:
    await _put(store, "h/m", b"x", options=ObjectOptions(storage_class="STANDARD_IA"))
    info = await store.head("h/m")
    if isinstance(store, S3Store):
        assert info.storage_class == "STANDARD_IA"  # not the store's configured class
    else:
        assert info.size == 1  # no storage classes: the options change nothing

"""The Glacier store: the real aiobotocore client over HTTP to the emulator process."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulators.glacier import Emulator
from emulators.glacier import treehash as emulator_treehash
from localbackup.formats import load_sealed_cycle
from tests.uploader.glacier_support import glacier_client, glacier_store
from tests.uploader.test_resume import CHILD, Counting, _recorded
from uploader.bundle import BundleReader, cycle_sha256
from uploader.catalogue import Catalogue, metadata_object_of
from uploader.config import EncryptionConfig, GlacierStoreConfig, UploadConfig
from uploader.crypto import Decryptor, load_identities
from uploader.multipart import MultipartOptions
from uploader.stores import open_store
from uploader.stores.base import MiB, ObjectNotFound, PermanentStoreError, TransientStoreError
from uploader.stores.glacier import MissingTreeHash
from uploader.stores.glacier.jobs import (
    BadByteRange,
    IncompleteResponse,
    InventoryRequired,
    JobOutputExpired,
    RetrievalRequired,
    job_from_response,
    parse_inventory,
)
from uploader.stores.glacier.store import GlacierStore, NoInventoryYet
from uploader.stores.glacier.treehash import tree_hash
from uploader.upload import upload_cycle

from .conftest import _noise, build_cycle

DELAYS = {"Expedited": 300.0, "Standard": 4 * 3600.0, "Bulk": 12 * 3600.0}
FAST = MultipartOptions(concurrency=3, retries=2, backoff=lambda n: 0.0)


def _cs(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture
def emu(glacier_emulator: Emulator) -> Emulator:
    """The session's emulator with AWS-like job delays, a 24 h output TTL and no faults."""
    glacier_emulator.control.clear_faults()
    glacier_emulator.control.set_tier_delays(**DELAYS)
    glacier_emulator.control.set_output_ttl(24 * 3600)
    glacier_emulator.control.reset_stats()
    return glacier_emulator


@pytest.fixture
async def gstore(emu: Emulator, aws_env: None) -> AsyncIterator[GlacierStore]:
    async with glacier_store(emu.endpoint_url, max_attempts=3) as s:
        yield s


async def _put(store: GlacierStore, key: str, data: bytes, part: int = MiB) -> str:
    upload_id = await store.create_multipart_upload(key, part, {"host": "h", "cycle-id": "c"})
    parts = [
        await store.upload_part(
            key, upload_id, i // part + 1, data[i : i + part], _cs(data[i : i + part])
        )
        for i in range(0, len(data), part)
    ]
    await store.complete_multipart_upload(key, upload_id, parts)
    archive_id = (await store.head(key)).archive_id
    assert archive_id is not None
    return archive_id


async def _retrieve(store: GlacierStore, emu: Emulator, archive_id: str, **kw: Any) -> str:
    tier = kw.setdefault("tier", "Expedited")
    job_id = await store.initiate_retrieval_job(archive_id, **kw)
    assert (await store.describe_job(job_id)).status == "InProgress"
    emu.control.advance(DELAYS[tier] + 1)
    return job_id


async def _output(
    store: GlacierStore, job_id: str, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join([c async for c in store.read_job_output(job_id, start, end)])


def _vault_state(emu: Emulator, store: GlacierStore) -> dict[str, Any]:
    state: dict[str, Any] = emu.control.state()["vaults"][store.vault]
    return state


# -- upload_cycle, end to end ------------------------------------------------------------------


async def test_an_upload_cycle_archive_passes_the_tree_hash_checks_and_retrieves_decrypted(
    gstore: GlacierStore, emu: Emulator, tmp_path: Path, age_key: tuple[Path, str]
) -> None:
    key_file, recipient = age_key
    cycle_dir = build_cycle(tmp_path / "spool", [3 * MiB + 77, 1500, 2 * MiB])
    with Catalogue.in_state_dir(tmp_path / "state") as catalogue:
        record = await upload_cycle(
            cycle_dir,
            gstore,
            catalogue,
            EncryptionConfig(recipients=(recipient,)),
            UploadConfig(part_size=MiB),
            options=FAST,
        )
        meta = metadata_object_of(catalogue, gstore.name, record.key)
    info = await gstore.head(record.key)
    parts = -(-info.size // MiB)
    # the archive's parts, and the one part of its metadata object (a small archive of its own)
    assert parts >= 5 and emu.control.part_uploads_received() == parts + 1
    assert meta is not None and meta.key == "testhost/20260101T000000Z.meta.age"
    ids = sorted([info.archive_id, meta.expected.archive_id])
    assert _vault_state(emu, gstore)["archive_ids"] == ids
    assert info.metadata["cycle-sha256"] == cycle_sha256(load_sealed_cycle(cycle_dir))

    assert info.archive_id is not None
    job_id = await _retrieve(gstore, emu, info.archive_id, tier="Bulk")
    job = await gstore.describe_job(job_id)
    assert (job.status, job.tier, job.archive_id, job.byte_range) == (
        "Succeeded",
        "Bulk",
        info.archive_id,
        (0, info.size),
    )
    assert job.completed is not None and job.tree_hash == job.archive_tree_hash
    blob = await _output(gstore, job_id)
    assert len(blob) == info.size and tree_hash(blob) == job.tree_hash
    plain = Decryptor(load_identities(key_file)).open(io.BytesIO(blob)).read()
    with BundleReader(cycle_dir) as bundle:
        assert plain == bundle.read(0, bundle.size)


async def test_the_inventory_lists_our_archives_with_parsed_descriptions(
    gstore: GlacierStore, emu: Emulator
) -> None:
    with pytest.raises(NoInventoryYet, match="Inventory not found"):
        await gstore.initiate_inventory_job()
    archive_id = await _put(gstore, "h/c.tar.age", b"x" * 100)
    glacier_client(emu.endpoint_url).upload_archive(
        vaultName=gstore.vault, archiveDescription="my holiday photos", body=b"theirs"
    )
    emu.control.refresh_inventory(gstore.vault)
    job_id = await gstore.initiate_inventory_job()
    emu.control.advance(DELAYS["Standard"] + 1)
    job = await gstore.describe_job(job_id)
    assert (job.action, job.status, job.tree_hash) == ("InventoryRetrieval", "Succeeded", None)
    assert [j.job_id for j in await gstore.list_jobs()] == [job_id]
    inventory = await gstore.get_inventory(job_id)
    assert len(inventory.archives) == 2
    [ours] = inventory.ours()
    assert (ours.archive_id, ours.size, ours.tree_hash) == (archive_id, 100, tree_hash(b"x" * 100))
    assert ours.description is not None and ours.description.key == "h/c.tar.age"
    assert ours.description.host == "h"
    assert {a.raw_description for a in inventory.archives if a.description is None} == {
        "my holiday photos"
    }


# -- rejected input ----------------------------------------------------------------------------


async def test_a_wrong_part_tree_hash_or_misaligned_range_is_rejected_by_glacier(
    gstore: GlacierStore, emu: Emulator
) -> None:
    data = _noise(MiB + 10, 3)
    upload_id = await gstore.create_multipart_upload("h/x", MiB, {})
    raw = glacier_client(emu.endpoint_url)
    args = {"vaultName": gstore.vault, "uploadId": upload_id}
    with pytest.raises(ClientError, match=r"Checksum mismatch: expected 0{64}"):
        raw.upload_multipart_part(
            **args, range=f"bytes 0-{MiB - 1}/*", checksum="0" * 64, body=data[:MiB]
        )
    with pytest.raises(ClientError, match="Invalid Content-Range"):
        raw.upload_multipart_part(**args, range=f"bytes 10-{MiB + 9}/*", body=data[10 : MiB + 10])
    # Through the store: a checksum that does not match the bytes, a part bigger than parts.
    with pytest.raises(PermanentStoreError, match="InvalidParameterValueException: Checksum"):
        await gstore.upload_part("h/x", upload_id, 1, data[:MiB], _cs(b"other bytes"))
    with pytest.raises(PermanentStoreError, match="bytes for parts of"):
        await gstore.upload_part("h/x", upload_id, 1, data, _cs(data))
    p1 = await gstore.upload_part("h/x", upload_id, 1, data[:MiB], _cs(data[:MiB]))
    p2 = await gstore.upload_part("h/x", upload_id, 2, data[MiB:], _cs(data[MiB:]))
    assert p1.etag == emulator_treehash.tree_hash(data[:MiB])
    forged = type(p2)(p2.number, p2.size, p2.checksum, "1" * 64)
    with pytest.raises(PermanentStoreError, match="Invalid x-amz-sha256-tree-hash"):
        await gstore.complete_multipart_upload("h/x", upload_id, [p1, forged])
    assert len(await gstore.list_parts("h/x", upload_id)) == 2  # the upload stays open
    await gstore.complete_multipart_upload("h/x", upload_id, [p1, p2])
    assert (await gstore.head("h/x")).size == len(data)


async def test_retrieval_ranges_and_tiers_are_checked_before_asking_glacier(
    gstore: GlacierStore, emu: Emulator
) -> None:
    archive_id = await _put(gstore, "h/r", _noise(2 * MiB + 5, 4))
    with pytest.raises(BadByteRange, match="multiple of 1 MiB"):
        await gstore.initiate_retrieval_job(archive_id, byte_range=(5, MiB))
    with pytest.raises(BadByteRange, match="end of the archive"):
        await gstore.initiate_retrieval_job(archive_id, byte_range=(0, MiB + 1))
    with pytest.raises(BadByteRange, match="beyond the archive"):
        await gstore.initiate_retrieval_job(archive_id, byte_range=(0, 3 * MiB), archive_size=10)
    with pytest.raises(PermanentStoreError, match="tier 'Fast'"):
        await gstore.initiate_retrieval_job(archive_id, tier="Fast")
    with pytest.raises(ClientError, match="Invalid RetrievalByteRange"):
        glacier_client(emu.endpoint_url).initiate_job(
            vaultName=gstore.vault,
            jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id,
                           "RetrievalByteRange": "5-1048575"},
        )  # fmt: skip
    with pytest.raises(ObjectNotFound, match="archive ID was not found"):
        await gstore.initiate_retrieval_job("A" * 138)


# -- ranges and verification -------------------------------------------------------------------


async def test_ranged_retrievals_and_ranged_reads_are_verified(
    gstore: GlacierStore, emu: Emulator
) -> None:
    data = _noise(3 * MiB + MiB // 2, 5)
    archive_id = await _put(gstore, "h/big", data)
    job_id = await _retrieve(
        gstore, emu, archive_id, byte_range=(2 * MiB, len(data)), archive_size=len(data)
    )
    job = await gstore.describe_job(job_id)
    assert job.byte_range == (2 * MiB, len(data))
    assert job.tree_hash == tree_hash(data[2 * MiB :])  # a tree-hash aligned retrieval
    part = data[2 * MiB :]
    assert await _output(gstore, job_id) == part
    assert await _output(gstore, job_id, 0, MiB) == part[:MiB]  # aligned: tree hash checked
    assert await _output(gstore, job_id, MiB) == part[MiB:]  # the tail: checked too
    assert await _output(gstore, job_id, 10, 1000) == part[10:1000]  # length only
    # An unaligned retrieval (chunks 1..3 of 4) has no tree hash; reads check the length.
    job2 = await _retrieve(gstore, emu, archive_id, byte_range=(MiB, 3 * MiB))
    assert (await gstore.describe_job(job2)).tree_hash is None
    assert await _output(gstore, job2) == data[MiB : 3 * MiB]


async def test_bytes_that_do_not_match_the_returned_tree_hash_are_refused(
    gstore: GlacierStore, emu: Emulator
) -> None:
    data = _noise(2 * MiB, 6)
    job_id = await _retrieve(gstore, emu, await _put(gstore, "h/t", data))
    output = emu.data_dir / "jobs" / job_id / "output"
    with open(output, "r+b") as f:  # flip one byte behind the emulator's back
        f.seek(MiB + 7)
        f.write(bytes([data[MiB + 7] ^ 1]))
    assert await _output(gstore, job_id, 0, MiB) == data[:MiB]
    with pytest.raises(TransientStoreError, match="do not match their tree hash"):
        await _output(gstore, job_id, MiB, 2 * MiB)


async def test_a_range_without_a_tree_hash_is_refused_when_one_is_required(
    gstore: GlacierStore, emu: Emulator
) -> None:
    data = _noise(3 * MiB, 7)
    job_id = await _retrieve(gstore, emu, await _put(gstore, "h/r", data))

    async def required(start: int, end: int) -> bytes:
        reader = gstore.read_job_output(job_id, start, end, require_tree_hash=True)
        return b"".join([c async for c in reader])

    assert await required(2 * MiB, 3 * MiB) == data[2 * MiB :]  # a node of the tree: checked
    with pytest.raises(MissingTreeHash, match="no SHA-256 tree hash"):
        await required(MiB, 3 * MiB)  # two chunks starting at an odd one: not a node


async def test_an_expired_job_output_raises_job_output_expired(
    gstore: GlacierStore, emu: Emulator
) -> None:
    job_id = await _retrieve(gstore, emu, await _put(gstore, "h/e", b"e" * 10))
    assert await _output(gstore, job_id) == b"e" * 10
    emu.control.advance(24 * 3600 + 1)
    with pytest.raises(JobOutputExpired, match="24 h after the job completes"):
        await _output(gstore, job_id)
    with pytest.raises(JobOutputExpired, match="job ID was not found"):
        await gstore.describe_job(job_id)


# -- transient faults --------------------------------------------------------------------------


async def test_throttling_and_5xx_are_retried_by_botocore(
    gstore: GlacierStore, emu: Emulator
) -> None:
    upload_id = await gstore.create_multipart_upload("h/f", MiB, {})
    emu.control.fail_next(2, status=503, operation="UploadMultipartPart")
    await gstore.upload_part("h/f", upload_id, 1, b"abc", _cs(b"abc"))
    assert emu.control.request_count("UploadMultipartPart") == 3
    emu.control.throttle_next(1, operation="ListParts")
    assert len(await gstore.list_parts("h/f", upload_id)) == 1
    emu.control.fail_next(3, status=500, operation="ListParts")  # 3 attempts, all fail
    with pytest.raises(TransientStoreError, match="ServiceUnavailableException"):
        await gstore.list_parts("h/f", upload_id)


async def test_cut_responses_are_transient_and_the_range_can_be_read_again(
    gstore: GlacierStore, emu: Emulator
) -> None:
    data = _noise(MiB + 300, 7)
    job_id = await _retrieve(gstore, emu, await _put(gstore, "h/c", data))
    emu.control.cut_response(100_000, operation="GetJobOutput")
    with pytest.raises(TransientStoreError):
        await _output(gstore, job_id)
    assert await _output(gstore, job_id) == data
    # A cut JSON body: aiohttp notices the short body and botocore retries it ...
    emu.control.cut_response(20, operation="DescribeJob")
    assert (await gstore.describe_job(job_id)).status == "Succeeded"
    emu.control.cut_response(20, operation="DescribeJob", count=10)
    with pytest.raises(TransientStoreError):
        await gstore.describe_job(job_id)
    emu.control.clear_faults()


def test_a_response_missing_the_fields_we_need_is_incomplete_not_parsed() -> None:
    # ... while plain botocore would parse it into a response missing its fields.
    with pytest.raises(IncompleteResponse, match="no JobId"):
        job_from_response({"message": '{"Action":"Archive'}, "describing job j")
    with pytest.raises(IncompleteResponse, match="not a complete JSON inventory"):
        parse_inventory(b'{"VaultARN": "arn", "InventoryDate": "2026-01-01T00:00:00Z", "Arch', "x")


async def test_a_dropped_part_upload_is_transient_and_can_be_sent_again(
    gstore: GlacierStore, emu: Emulator
) -> None:
    upload_id = await gstore.create_multipart_upload("h/d", MiB, {})
    emu.control.drop_next(20, operation="UploadMultipartPart")  # more than any retry budget
    with pytest.raises(TransientStoreError):
        await gstore.upload_part("h/d", upload_id, 1, b"d" * 10, _cs(b"d" * 10))
    emu.control.clear_faults()
    part = await gstore.upload_part("h/d", upload_id, 1, b"d" * 10, _cs(b"d" * 10))
    assert part.etag == tree_hash(b"d" * 10)


# -- resume after SIGKILL ----------------------------------------------------------------------


async def test_an_upload_killed_mid_way_resumes_into_one_archive(
    gstore: GlacierStore, emu: Emulator, tmp_path: Path, age_key: tuple[Path, str]
) -> None:
    key_file, recipient = age_key
    cycle_dir = build_cycle(tmp_path / "spool", [12 * MiB + 123, 4567])
    state_dir = tmp_path / "state"
    spec = f"glacier:{emu.endpoint_url}|{gstore.vault}"
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(cycle_dir), str(state_dir), spec, recipient],
        env={**os.environ, "PYTHONPATH": str(CHILD.parents[2])},
    )
    try:
        deadline = time.monotonic() + 30
        while len(_recorded(state_dir)) < 4:
            assert child.poll() is None, "the upload finished before it could be killed"
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    acknowledged = _recorded(state_dir)
    assert _vault_state(emu, gstore)["multipart_uploads_in_progress"] == 1

    counting = Counting(gstore)
    with Catalogue.in_state_dir(state_dir) as catalogue:
        total = -(-catalogue.uploads()[0].total_size // MiB)
        assert len(acknowledged) < total
        record = await upload_cycle(
            cycle_dir,
            counting,  # type: ignore[arg-type]
            catalogue,
            EncryptionConfig(recipients=(recipient,)),
            UploadConfig(part_size=MiB),
            options=MultipartOptions(concurrency=3, retries=0),
        )
        assert catalogue.uploads() == []
    assert not set(counting.sent) & acknowledged
    assert len(counting.sent) <= total - len(acknowledged)
    assert counting.metadata_sent == [1]
    vault = _vault_state(emu, gstore)
    # one archive (and its metadata object, a small archive of its own), no upload left
    assert (vault["archives"], vault["multipart_uploads_in_progress"]) == (2, 0)
    archive_id = (await gstore.head(record.key)).archive_id
    assert archive_id is not None
    blob = await _output(gstore, await _retrieve(gstore, emu, archive_id))
    plain = Decryptor(load_identities(key_file)).open(io.BytesIO(blob)).read()
    with BundleReader(cycle_dir) as bundle:
        assert plain == bundle.read(0, bundle.size)


# -- what Glacier cannot do at once, and the rest of the protocol -------------------------------


async def test_listing_and_reading_need_jobs_and_head_knows_only_completed_archives(
    gstore: GlacierStore,
) -> None:
    with pytest.raises(InventoryRequired, match="inventory job"):
        await gstore.list_objects()
    with pytest.raises(RetrievalRequired, match="retrieval job"):
        await anext(gstore.read("h/a"))
    with pytest.raises(ObjectNotFound, match="cannot look an archive up by key"):
        await gstore.head("h/a")
    with pytest.raises(InventoryRequired, match="ArchiveId is needed"):
        await gstore.delete("h/a")


async def test_delete_by_key_or_archive_id_is_idempotent(
    gstore: GlacierStore, emu: Emulator
) -> None:
    first = await _put(gstore, "h/1", b"1")
    second = await _put(gstore, "h/2", b"2")
    await gstore.delete("h/1")
    await gstore.delete(second)
    await gstore.delete(second)
    assert _vault_state(emu, gstore)["archives"] == 0
    with pytest.raises(ObjectNotFound):
        await gstore.head("h/1")
    assert first != second


async def test_foreign_uploads_in_progress_are_not_listed(
    gstore: GlacierStore, emu: Emulator
) -> None:
    glacier_client(emu.endpoint_url).initiate_multipart_upload(
        vaultName=gstore.vault, partSize=str(MiB), archiveDescription="another tool"
    )
    ours = await gstore.create_multipart_upload("h1/a", 2 * MiB, {"host": "h1"})
    listed = await gstore.list_multipart_uploads("h1/")
    assert [(u.key, u.upload_id) for u in listed] == [("h1/a", ours)]
    assert await gstore.list_multipart_uploads("h2/") == []


async def test_a_fresh_store_object_resumes_an_upload_from_list_parts(
    gstore: GlacierStore, emu: Emulator, aws_env: None
) -> None:
    data = _noise(2 * MiB + 1, 8)
    upload_id = await gstore.create_multipart_upload("h/z", 2 * MiB, {"host": "h"})
    first = await gstore.upload_part("h/z", upload_id, 1, data[: 2 * MiB], _cs(data[: 2 * MiB]))
    async with glacier_store(emu.endpoint_url, gstore.vault) as fresh:  # as after a restart
        listed = await fresh.list_parts("h/z", upload_id)
        assert [(p.number, p.size, p.checksum, p.etag) for p in listed] == [
            (1, 2 * MiB, "", first.etag)  # no plain SHA-256 for parts over 1 MiB
        ]
        last = await fresh.upload_part("h/z", upload_id, 2, data[2 * MiB :], _cs(data[2 * MiB :]))
        assert last.checksum == (await fresh.list_parts("h/z", upload_id))[1].checksum
        await fresh.complete_multipart_upload("h/z", upload_id, [listed[0], last])
        info = await fresh.head("h/z")
    assert (info.size, info.metadata["host"], info.metadata["format"]) == (
        len(data),
        "h",
        "glacier-backup-archive",
    )


def test_open_store_gives_a_glacier_store_for_a_glacier_config() -> None:
    store = open_store(GlacierStoreConfig("photos", "123456789012", "eu-west-1"))
    assert isinstance(store, GlacierStore)
    assert store.name == "glacier://eu-west-1/123456789012/photos"
    assert store.capabilities.check_part_size(3 * MiB) is not None
    assert store.capabilities.check_part_size(4 * MiB) is None

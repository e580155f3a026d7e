"""Retrieval jobs: tiers on a virtual clock, ranges, checksums, expiry and inventories."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.utils import calculate_tree_hash

from emulators.glacier import Emulator

MIB = 1024 * 1024


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def th(data: bytes) -> str:
    return str(calculate_tree_hash(io.BytesIO(data)))


def archive_job(glacier: Any, vault: str, archive_id: str, **extra: str) -> str:
    params = {"Type": "archive-retrieval", "ArchiveId": archive_id, **extra}
    return str(glacier.initiate_job(vaultName=vault, jobParameters=params)["jobId"])


@pytest.fixture
def archive(glacier: Any, vault: str, make_payload: Callable[..., bytes]) -> tuple[str, bytes]:
    data = make_payload(6 * MIB + MIB // 2, seed=3)
    r = glacier.upload_archive(vaultName=vault, body=data, archiveDescription="six and a half")
    return str(r["archiveId"]), data


def test_job_completes_after_the_tier_delay(
    glacier: Any, emulator: Emulator, vault: str, archive: tuple[str, bytes]
) -> None:
    emulator.control.set_tier_delays(Expedited=60, Standard=4 * 3600, Bulk=12 * 3600)
    archive_id, data = archive
    jobs = {
        tier: archive_job(glacier, vault, archive_id, Tier=tier)
        for tier in ("Expedited", "Standard", "Bulk")
    }
    pending = glacier.describe_job(vaultName=vault, jobId=jobs["Standard"])
    assert pending["StatusCode"] == "InProgress"
    assert pending["Completed"] is False
    assert pending["StatusMessage"] == "Operation in progress."
    assert "CompletionDate" not in pending and "SHA256TreeHash" not in pending
    assert pending["ArchiveSHA256TreeHash"] == th(data)
    assert pending["RetrievalByteRange"] == f"0-{len(data) - 1}"
    with pytest.raises(ClientError) as exc:
        glacier.get_job_output(vaultName=vault, jobId=jobs["Standard"])
    assert error_of(exc) == ("InvalidParameterValueException", 400)
    assert "not currently available for download" in str(exc.value)

    emulator.control.advance(60)
    status = {
        t: glacier.describe_job(vaultName=vault, jobId=j)["StatusCode"] for t, j in jobs.items()
    }
    assert status == {"Expedited": "Succeeded", "Standard": "InProgress", "Bulk": "InProgress"}
    emulator.control.advance(4 * 3600)
    done = glacier.describe_job(vaultName=vault, jobId=jobs["Standard"])
    assert done["Completed"] is True
    assert done["StatusCode"] == "Succeeded"
    assert done["SHA256TreeHash"] == th(data)
    assert done["CompletionDate"].endswith("Z")
    assert done["Tier"] == "Standard"

    out = glacier.get_job_output(vaultName=vault, jobId=jobs["Standard"])
    body = out["body"].read()
    assert body == data
    assert out["status"] == 200
    assert out["checksum"] == th(body)
    assert out["acceptRanges"] == "bytes"
    assert out["contentType"] == "application/octet-stream"
    assert out["archiveDescription"] == "six and a half"


def test_list_jobs_filters_and_pages(
    glacier: Any, emulator: Emulator, vault: str, archive: tuple[str, bytes]
) -> None:
    archive_id, _ = archive
    emulator.control.set_tier_delays(Expedited=0, Standard=100, Bulk=100)
    fast = [archive_job(glacier, vault, archive_id, Tier="Expedited") for _ in range(3)]
    slow = [archive_job(glacier, vault, archive_id, Tier="Bulk") for _ in range(2)]

    def ids(**query: str) -> list[str]:
        pages = glacier.get_paginator("list_jobs").paginate(
            vaultName=vault, PaginationConfig={"PageSize": 2}, **query
        )
        return [j["JobId"] for page in pages for j in page["JobList"]]

    assert ids() == fast + slow  # by initiation time
    assert ids(completed="true") == fast
    assert ids(completed="false") == slow
    assert ids(statuscode="InProgress") == slow
    assert ids(statuscode="Succeeded", completed="true") == fast
    with pytest.raises(ClientError) as exc:
        glacier.list_jobs(vaultName=vault, statuscode="finished")
    assert error_of(exc) == ("InvalidParameterValueException", 400)
    assert "The job status code is not valid: finished" in str(exc.value)


def test_ranged_retrieval_and_ranged_output(
    glacier: Any, vault: str, archive: tuple[str, bytes]
) -> None:
    archive_id, data = archive
    size = len(data)
    # 2-4 MiB is tree-hash aligned in a 6.5 MiB archive.
    job = archive_job(glacier, vault, archive_id, RetrievalByteRange=f"{2 * MIB}-{4 * MIB - 1}")
    described = glacier.describe_job(vaultName=vault, jobId=job)
    assert described["RetrievalByteRange"] == f"{2 * MIB}-{4 * MIB - 1}"
    assert described["SHA256TreeHash"] == th(data[2 * MIB : 4 * MIB])
    assert described["ArchiveSizeInBytes"] == size
    whole = glacier.get_job_output(vaultName=vault, jobId=job)
    assert whole["body"].read() == data[2 * MIB : 4 * MIB]
    assert whole["checksum"] == th(data[2 * MIB : 4 * MIB])
    # A 1 MiB ranged download of an aligned output: 206, Content-Range, checksum.
    part = glacier.get_job_output(vaultName=vault, jobId=job, range=f"bytes={MIB}-{2 * MIB - 1}")
    assert part["status"] == 206
    assert part["contentRange"] == f"bytes {MIB}-{2 * MIB - 1}/{2 * MIB}"
    assert part["body"].read() == data[3 * MIB : 4 * MIB]
    assert part["checksum"] == th(data[3 * MIB : 4 * MIB])
    # A range that is not a tree node: bytes, but no checksum.
    odd = glacier.get_job_output(vaultName=vault, jobId=job, range="bytes=10-99")
    assert odd["body"].read() == data[2 * MIB + 10 : 2 * MIB + 100]
    assert "checksum" not in odd

    # 1-3 MiB is MiB-aligned but not tree-hash aligned: data yes, checksums never.
    job = archive_job(glacier, vault, archive_id, RetrievalByteRange=f"{MIB}-{3 * MIB - 1}")
    assert "SHA256TreeHash" not in glacier.describe_job(vaultName=vault, jobId=job)
    out = glacier.get_job_output(vaultName=vault, jobId=job)
    assert out["body"].read() == data[MIB : 3 * MIB]
    assert "checksum" not in out
    out = glacier.get_job_output(vaultName=vault, jobId=job, range=f"bytes=0-{MIB - 1}")
    assert "checksum" not in out

    # Tail of the archive: end-of-archive counts as aligned.
    job = archive_job(glacier, vault, archive_id, RetrievalByteRange=f"{4 * MIB}-{size - 1}")
    out = glacier.get_job_output(vaultName=vault, jobId=job)
    assert out["body"].read() == data[4 * MIB :]
    assert out["checksum"] == th(data[4 * MIB :])
    tail = glacier.get_job_output(vaultName=vault, jobId=job, range=f"bytes={2 * MIB}-")
    assert tail["body"].read() == data[6 * MIB :]
    assert tail["checksum"] == th(data[6 * MIB :])


def test_whole_output_downloaded_in_aligned_chunks_reassembles_the_tree_hash(
    glacier: Any, vault: str, archive: tuple[str, bytes]
) -> None:
    archive_id, data = archive
    job = archive_job(glacier, vault, archive_id)
    chunk_hashes, received = [], b""
    for first in range(0, len(data), 2 * MIB):
        last = min(first + 2 * MIB, len(data)) - 1
        out = glacier.get_job_output(vaultName=vault, jobId=job, range=f"bytes={first}-{last}")
        body = out["body"].read()
        assert out["checksum"] == th(body)
        chunk_hashes.append(out["checksum"])
        received += body
    from emulators.glacier import combine_tree_hashes

    assert received == data
    assert combine_tree_hashes(chunk_hashes) == th(data)


@pytest.mark.parametrize(
    "byte_range",
    ["1-1048575", "0-1048576", f"0-{7 * MIB - 1}", "5-2", "abc", f"{MIB}-{MIB - 2}"],
)
def test_retrieval_range_must_be_mib_aligned(
    glacier: Any, vault: str, archive: tuple[str, bytes], byte_range: str
) -> None:
    with pytest.raises(ClientError) as exc:
        archive_job(glacier, vault, archive[0], RetrievalByteRange=byte_range)
    assert error_of(exc) == ("InvalidParameterValueException", 400)


def test_bad_output_range_is_invalid_parameter(
    glacier: Any, vault: str, archive: tuple[str, bytes]
) -> None:
    job = archive_job(glacier, vault, archive[0])
    with pytest.raises(ClientError) as exc:
        glacier.get_job_output(vaultName=vault, jobId=job, range=f"bytes=0-{10 * MIB}")
    assert error_of(exc) == ("InvalidParameterValueException", 400)


def test_job_output_expires(
    glacier: Any, emulator: Emulator, vault: str, archive: tuple[str, bytes]
) -> None:
    emulator.control.set_tier_delays(Standard=10)
    emulator.control.set_output_ttl(3600)
    job = archive_job(glacier, vault, archive[0])
    emulator.control.advance(10 + 3599)
    assert glacier.get_job_output(vaultName=vault, jobId=job)["body"].read() == archive[1]
    emulator.control.advance(1)
    with pytest.raises(ClientError) as exc:
        glacier.get_job_output(vaultName=vault, jobId=job)
    assert error_of(exc) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as exc:
        glacier.describe_job(vaultName=vault, jobId=job)
    assert error_of(exc) == ("ResourceNotFoundException", 404)
    assert f"The job ID was not found: {job}" in str(exc.value)
    assert job not in [j["JobId"] for j in glacier.list_jobs(vaultName=vault)["JobList"]]


def test_unknown_archive_and_job_ids(glacier: Any, vault: str) -> None:
    with pytest.raises(ClientError) as exc:
        archive_job(glacier, vault, "A" * 138)
    assert error_of(exc) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as exc:
        glacier.describe_job(vaultName=vault, jobId="J" * 92)
    assert error_of(exc) == ("ResourceNotFoundException", 404)


def test_archive_deleted_during_job_fails_it_but_prepared_output_survives(
    glacier: Any, emulator: Emulator, vault: str, archive: tuple[str, bytes]
) -> None:
    archive_id, data = archive
    emulator.control.set_tier_delays(Standard=100)
    running = archive_job(glacier, vault, archive_id)
    emulator.control.set_tier_delays(Standard=0)
    prepared = archive_job(glacier, vault, archive_id)
    glacier.delete_archive(vaultName=vault, archiveId=archive_id)
    emulator.control.advance(100)
    failed = glacier.describe_job(vaultName=vault, jobId=running)
    assert (failed["StatusCode"], failed["Completed"]) == ("Failed", True)
    assert glacier.get_job_output(vaultName=vault, jobId=prepared)["body"].read() == data
    later = archive_job(glacier, vault, archive_id)  # accepted, then fails
    assert glacier.describe_job(vaultName=vault, jobId=later)["StatusCode"] == "Failed"


def test_first_inventory_of_a_new_vault_is_not_available(glacier: Any, vault: str) -> None:
    with pytest.raises(ClientError) as exc:
        glacier.initiate_job(vaultName=vault, jobParameters={"Type": "inventory-retrieval"})
    assert error_of(exc) == ("ResourceNotFoundException", 404)


def inventory(glacier: Any, vault: str, **params: Any) -> Any:
    job = glacier.initiate_job(
        vaultName=vault, jobParameters={"Type": "inventory-retrieval", **params}
    )["jobId"]
    out = glacier.get_job_output(vaultName=vault, jobId=job)
    return job, out


def test_inventory_lags_until_refresh(
    glacier: Any, emulator: Emulator, vault: str, archive: tuple[str, bytes]
) -> None:
    archive_id, data = archive
    emulator.control.refresh_inventory(vault)
    late = glacier.upload_archive(vaultName=vault, body=b"late", archiveDescription="late")
    job, out = inventory(glacier, vault)
    assert out["contentType"] == "application/json"
    assert "checksum" not in out
    doc = json.loads(out["body"].read())
    assert set(doc) == {"VaultARN", "InventoryDate", "ArchiveList"}
    assert doc["VaultARN"].endswith(f":vaults/{vault}")
    assert [a["ArchiveId"] for a in doc["ArchiveList"]] == [archive_id]
    entry = doc["ArchiveList"][0]
    assert entry == {
        "ArchiveId": archive_id,
        "ArchiveDescription": "six and a half",
        "CreationDate": entry["CreationDate"],
        "Size": len(data),
        "SHA256TreeHash": th(data),
    }
    described = glacier.describe_job(vaultName=vault, jobId=job)
    assert described["Action"] == "InventoryRetrieval"
    assert described["InventorySizeInBytes"] > 0
    assert described["InventoryRetrievalParameters"]["Format"] == "JSON"
    assert "ArchiveId" not in described and "SHA256TreeHash" not in described

    first_date = doc["InventoryDate"]
    emulator.control.advance(86400)
    emulator.control.refresh_inventory(vault)
    doc = json.loads(inventory(glacier, vault)[1]["body"].read())
    assert [a["ArchiveId"] for a in doc["ArchiveList"]] == [archive_id, late["archiveId"]]
    assert doc["InventoryDate"] > first_date
    # No change since: the next pass keeps the old date.
    emulator.control.advance(86400)
    emulator.control.refresh_inventory(vault)
    assert (
        json.loads(inventory(glacier, vault)[1]["body"].read())["InventoryDate"]
        == doc["InventoryDate"]
    )


def test_inventory_csv_and_retrieval_parameters(
    glacier: Any, emulator: Emulator, vault: str
) -> None:
    ids = []
    for i in range(5):
        ids.append(
            glacier.upload_archive(
                vaultName=vault, body=b"x" * (i + 1), archiveDescription=f'd,{i}"q'
            )["archiveId"]
        )
        emulator.control.advance(10)
    emulator.control.refresh_inventory(vault)
    _, out = inventory(glacier, vault, Format="CSV")
    assert out["contentType"] == "text/csv"
    lines = out["body"].read().decode().splitlines()
    assert lines[0] == "ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash"
    assert lines[1].startswith(f'{ids[0]},"d,0\\"q",')

    job, out = inventory(glacier, vault, InventoryRetrievalParameters={"Limit": "2"})
    assert [a["ArchiveId"] for a in json.loads(out["body"].read())["ArchiveList"]] == ids[:2]
    marker = glacier.describe_job(vaultName=vault, jobId=job)["InventoryRetrievalParameters"][
        "Marker"
    ]
    _, out = inventory(
        glacier, vault, InventoryRetrievalParameters={"Limit": "2", "Marker": marker}
    )
    assert [a["ArchiveId"] for a in json.loads(out["body"].read())["ArchiveList"]] == ids[2:4]


def test_inventory_job_rejects_archive_parameters(
    glacier: Any, emulator: Emulator, vault: str
) -> None:
    emulator.control.refresh_inventory(vault)
    with pytest.raises(ClientError) as exc:
        glacier.initiate_job(
            vaultName=vault,
            jobParameters={"Type": "inventory-retrieval", "RetrievalByteRange": "0-1048575"},
        )
    assert error_of(exc) == ("InvalidParameterValueException", 400)
    with pytest.raises(ClientError) as exc:
        glacier.initiate_job(vaultName=vault, jobParameters={"Type": "nonsense"})
    assert error_of(exc) == ("InvalidParameterValueException", 400)

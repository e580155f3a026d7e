"""The emulator through aiobotocore, the client the project's glacier store uses."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any

import pytest
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.utils import calculate_tree_hash

from emulators.glacier import Emulator, combine_tree_hashes

MIB = 1024 * 1024
CREDS = {"region_name": "us-east-1", "aws_access_key_id": "a", "aws_secret_access_key": "b"}


def client(emulator: Emulator) -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": 3})
    return get_session().create_client(
        "glacier", endpoint_url=emulator.endpoint_url, config=config, **CREDS
    )


async def test_async_parallel_multipart_upload_and_ranged_download(
    emulator: Emulator, vault_name: str, make_payload: Callable[..., bytes]
) -> None:
    data = make_payload(4 * MIB + 12345, seed=9)
    emulator.control.set_tier_delays(Bulk=3600)
    async with client(emulator) as glacier:
        await glacier.create_vault(vaultName=vault_name)
        init = await glacier.initiate_multipart_upload(vaultName=vault_name, partSize=str(MIB))
        upload_id = init["uploadId"]

        async def send(first: int) -> str:
            chunk = data[first : first + MIB]
            r = await glacier.upload_multipart_part(
                vaultName=vault_name,
                uploadId=upload_id,
                range=f"bytes {first}-{first + len(chunk) - 1}/*",
                body=chunk,
            )
            return str(r["checksum"])

        emulator.control.fail_next(1, status=503, operation="UploadMultipartPart")
        hashes = await asyncio.gather(*(send(f) for f in range(0, len(data), MIB)))
        assert emulator.control.part_uploads_received() == 5
        assert emulator.control.request_count("UploadMultipartPart") == 6
        done = await glacier.complete_multipart_upload(
            vaultName=vault_name,
            uploadId=upload_id,
            archiveSize=str(len(data)),
            checksum=combine_tree_hashes(hashes),
        )
        assert done["checksum"] == calculate_tree_hash(io.BytesIO(data))

        job = await glacier.initiate_job(
            vaultName=vault_name,
            jobParameters={
                "Type": "archive-retrieval",
                "ArchiveId": done["archiveId"],
                "Tier": "Bulk",
            },
        )
        described = await glacier.describe_job(vaultName=vault_name, jobId=job["jobId"])
        assert described["StatusCode"] == "InProgress"
        emulator.control.advance(3600)
        out = await glacier.get_job_output(
            vaultName=vault_name, jobId=job["jobId"], range=f"bytes={2 * MIB}-{4 * MIB - 1}"
        )
        async with out["body"] as stream:
            body = await stream.read()
        assert body == data[2 * MIB : 4 * MIB]
        assert out["checksum"] == calculate_tree_hash(io.BytesIO(body))
        assert out["status"] == 206


async def test_async_errors_carry_aws_codes(emulator: Emulator, vault_name: str) -> None:
    async with client(emulator) as glacier:
        with pytest.raises(ClientError) as exc:
            await glacier.describe_vault(vaultName=vault_name)
        assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
        await glacier.create_vault(vaultName=vault_name)
        with pytest.raises(glacier.exceptions.InvalidParameterValueException):
            await glacier.initiate_multipart_upload(vaultName=vault_name, partSize="12345")
        with pytest.raises(glacier.exceptions.ResourceNotFoundException):
            await glacier.initiate_job(
                vaultName=vault_name, jobParameters={"Type": "inventory-retrieval"}
            )

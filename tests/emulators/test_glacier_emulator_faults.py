"""Fault injection: AWS errors botocore retries, and connections cut mid-body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError

from emulators.glacier import Emulator

MIB = 1024 * 1024


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_503_is_retried_by_botocore_and_attempts_are_counted(
    make_client: Callable[..., Any], emulator: Emulator, vault: str
) -> None:
    client = make_client(max_attempts=3)
    emulator.control.fail_next(2, status=503, operation="UploadArchive")
    r = client.upload_archive(vaultName=vault, body=b"data")
    assert r["ResponseMetadata"]["RetryAttempts"] == 2
    assert emulator.control.request_count("UploadArchive") == 3
    assert emulator.control.state()["faults_injected"] == {"UploadArchive": 2}


def test_persistent_503_surfaces_after_the_retry_budget(
    make_client: Callable[..., Any], emulator: Emulator, vault: str
) -> None:
    client = make_client(max_attempts=3)
    emulator.control.fail_next(5, status=503)
    with pytest.raises(ClientError) as exc:
        client.describe_vault(vaultName=vault)
    assert error_of(exc) == ("ServiceUnavailableException", 503)
    assert emulator.control.request_count("DescribeVault") == 3
    emulator.control.clear_faults()
    assert client.describe_vault(vaultName=vault)["VaultName"] == vault


def test_throttling_is_a_client_error_botocore_retries(
    make_client: Callable[..., Any], emulator: Emulator, vault: str
) -> None:
    emulator.control.throttle_next(1, operation="ListJobs")
    with pytest.raises(ClientError) as exc:
        make_client(max_attempts=1).list_jobs(vaultName=vault)
    assert error_of(exc) == ("ThrottlingException", 400)
    emulator.control.throttle_next(1, operation="ListJobs")
    make_client(max_attempts=2).list_jobs(vaultName=vault)
    assert emulator.control.request_count("ListJobs") == 3


def test_500_service_unavailable_and_operation_matching(
    make_client: Callable[..., Any], emulator: Emulator, vault: str
) -> None:
    client = make_client(max_attempts=1)
    emulator.control.fail_next(1, status=500, operation="InitiateMultipartUpload")
    client.describe_vault(vaultName=vault)  # other operations are untouched
    with pytest.raises(ClientError) as exc:
        client.initiate_multipart_upload(vaultName=vault, partSize=str(MIB))
    assert error_of(exc) == ("ServiceUnavailableException", 500)
    assert exc.value.response["Error"]["Message"] == "Injected fault"


def test_cut_job_output_surfaces_as_a_read_error(
    glacier: Any, emulator: Emulator, vault: str, make_payload: Callable[..., bytes]
) -> None:
    data = make_payload(2 * MIB)
    archive_id = glacier.upload_archive(vaultName=vault, body=data)["archiveId"]
    job = glacier.initiate_job(
        vaultName=vault, jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id}
    )["jobId"]
    emulator.control.cut_response(300_000, operation="GetJobOutput")
    out = glacier.get_job_output(vaultName=vault, jobId=job)
    with pytest.raises(BotoCoreError):
        out["body"].read()
    # The next attempt is whole again.
    assert glacier.get_job_output(vaultName=vault, jobId=job)["body"].read() == data


def test_cut_json_body_is_not_detected_by_botocore(
    make_client: Callable[..., Any], emulator: Emulator, vault: str
) -> None:
    # botocore reads non-streaming bodies with enforce_content_length=False: a short JSON
    # body parses to an output without its fields rather than raising. A store must check
    # the fields it needs.
    emulator.control.cut_response(10, operation="DescribeVault")
    out = make_client(max_attempts=1).describe_vault(vaultName=vault)
    assert "VaultName" not in out


def test_dropped_connection_is_a_connection_error_botocore_retries(
    make_client: Callable[..., Any], emulator: Emulator, vault: str
) -> None:
    emulator.control.drop_next(1, operation="DescribeVault")
    with pytest.raises(ConnectionClosedError):
        make_client(max_attempts=1).describe_vault(vaultName=vault)
    emulator.control.drop_next(1, operation="DescribeVault")
    assert make_client(max_attempts=2).describe_vault(vaultName=vault)["VaultName"] == vault
    assert emulator.control.request_count("DescribeVault") == 3


def test_connection_cut_while_reading_a_part_stores_nothing(
    make_client: Callable[..., Any],
    emulator: Emulator,
    vault: str,
    make_payload: Callable[..., bytes],
) -> None:
    client = make_client(max_attempts=1)
    upload_id = client.initiate_multipart_upload(vaultName=vault, partSize=str(MIB))["uploadId"]
    part = make_payload(MIB)
    emulator.control.cut_request(64 * 1024, operation="UploadMultipartPart")
    with pytest.raises((ConnectionClosedError, BotoCoreError)):
        client.upload_multipart_part(
            vaultName=vault, uploadId=upload_id, range=f"bytes 0-{MIB - 1}/*", body=part
        )
    assert client.list_parts(vaultName=vault, uploadId=upload_id)["Parts"] == []
    assert emulator.control.part_uploads_received() == 0
    # A retrying client gets through: the resend is counted.
    emulator.control.cut_request(64 * 1024, operation="UploadMultipartPart")
    make_client(max_attempts=3).upload_multipart_part(
        vaultName=vault, uploadId=upload_id, range=f"bytes 0-{MIB - 1}/*", body=part
    )
    assert emulator.control.request_count("UploadMultipartPart") == 3
    assert emulator.control.part_uploads_received() == 1


def test_cut_upload_archive_leaves_no_archive(
    make_client: Callable[..., Any], emulator: Emulator, vault: str
) -> None:
    emulator.control.cut_request(10, operation="UploadArchive")
    with pytest.raises(BotoCoreError):
        make_client(max_attempts=1).upload_archive(vaultName=vault, body=b"x" * 5000)
    assert emulator.control.state()["vaults"][vault]["archives"] == 0

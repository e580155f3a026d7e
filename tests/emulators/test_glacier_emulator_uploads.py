"""UploadArchive and the multipart family, with AWS's validation rules."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.utils import calculate_tree_hash

from emulators.glacier import Emulator, combine_tree_hashes

MIB = 1024 * 1024
BAD_HASH = "0" * 64


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def th(data: bytes) -> str:
    return str(calculate_tree_hash(io.BytesIO(data)))


def retrieve(glacier: Any, vault: str, archive_id: str) -> bytes:
    job = glacier.initiate_job(
        vaultName=vault, jobParameters={"Type": "archive-retrieval", "ArchiveId": archive_id}
    )
    out = glacier.get_job_output(vaultName=vault, jobId=job["jobId"])
    return bytes(out["body"].read())


def upload_parts(
    glacier: Any, vault: str, upload_id: str, data: bytes, part_size: int
) -> list[str]:
    hashes = []
    for first in range(0, len(data), part_size):
        chunk = data[first : first + part_size]
        r = glacier.upload_multipart_part(
            vaultName=vault,
            uploadId=upload_id,
            range=f"bytes {first}-{first + len(chunk) - 1}/*",
            body=chunk,
        )
        assert r["checksum"] == th(chunk)
        hashes.append(r["checksum"])
    return hashes


# -- single-request upload ------------------------------------------------------------


def test_upload_archive_returns_aws_shaped_ids(glacier: Any, vault: str) -> None:
    data = b"payload" * 1000
    r = glacier.upload_archive(vaultName=vault, body=data, archiveDescription="my archive")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert len(r["archiveId"]) == 138
    assert set(r["archiveId"]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    assert r["location"] == f"/123456789012/vaults/{vault}/archives/{r['archiveId']}"
    assert r["checksum"] == th(data)
    assert retrieve(glacier, vault, r["archiveId"]) == data


def test_upload_archive_wrong_tree_hash_rejected(glacier: Any, vault: str) -> None:
    with pytest.raises(ClientError) as exc:
        glacier.upload_archive(vaultName=vault, body=b"abc", checksum=BAD_HASH)
    assert error_of(exc) == ("InvalidParameterValueException", 400)
    assert "Checksum mismatch" in str(exc.value)


def test_upload_archive_wrong_linear_hash_rejected(make_client: Any, vault: str) -> None:
    client = make_client()

    def corrupt(request: Any, **_: Any) -> None:
        request.headers["x-amz-content-sha256"] = hashlib.sha256(b"other").hexdigest()

    client.meta.events.register_first("before-sign.glacier.UploadArchive", corrupt)
    with pytest.raises(ClientError) as exc:
        client.upload_archive(vaultName=vault, body=b"abc")
    assert error_of(exc) == ("InvalidParameterValueException", 400)


def test_upload_archive_empty_body_rejected(glacier: Any, vault: str) -> None:
    with pytest.raises(ClientError) as exc:
        glacier.upload_archive(vaultName=vault, body=b"")
    assert error_of(exc) == ("InvalidParameterValueException", 400)
    assert "Invalid Content-Length: 0" in str(exc.value)


@pytest.mark.parametrize("description", ["x" * 1025, "tab\there", "caf\u00e9"])
def test_bad_archive_description_rejected(glacier: Any, vault: str, description: str) -> None:
    with pytest.raises(ClientError) as exc:
        glacier.upload_archive(vaultName=vault, body=b"abc", archiveDescription=description)
    assert error_of(exc) == ("InvalidParameterValueException", 400)


def test_upload_to_missing_vault_is_not_found(glacier: Any) -> None:
    with pytest.raises(ClientError) as exc:
        glacier.upload_archive(vaultName="no-such-vault", body=b"abc")
    assert error_of(exc) == ("ResourceNotFoundException", 404)


def test_delete_archive_unknown_and_foreign_ids(glacier: Any, vault: str, vault_name: str) -> None:
    with pytest.raises(ClientError) as exc:
        glacier.delete_archive(vaultName=vault, archiveId="A" * 138)
    assert error_of(exc) == ("ResourceNotFoundException", 404)
    other = vault_name + "-other"
    glacier.create_vault(vaultName=other)
    archive_id = glacier.upload_archive(vaultName=other, body=b"abc")["archiveId"]
    with pytest.raises(ClientError) as exc:
        glacier.delete_archive(vaultName=vault, archiveId=archive_id)
    assert error_of(exc) == ("InvalidParameterValueException", 400)
    assert "Invalid vault name" in str(exc.value)


# -- multipart ------------------------------------------------------------------------


def test_multipart_upload_round_trip(
    glacier: Any, emulator: Emulator, vault: str, make_payload: Callable[..., bytes]
) -> None:
    data = make_payload(3 * MIB + MIB // 2)
    init = glacier.initiate_multipart_upload(
        vaultName=vault, partSize=str(MIB), archiveDescription="  multi"
    )
    upload_id = init["uploadId"]
    assert len(upload_id) == 92
    assert init["location"].endswith(f"/multipart-uploads/{upload_id}")
    assert emulator.control.multipart_uploads_in_progress(vault) == 1
    # Parts in any order.
    hashes = upload_parts(glacier, vault, upload_id, data, MIB)
    assert emulator.control.part_uploads_received() == 4

    done = glacier.complete_multipart_upload(
        vaultName=vault,
        uploadId=upload_id,
        archiveSize=str(len(data)),
        checksum=combine_tree_hashes(hashes),
    )
    assert done["checksum"] == th(data)
    assert len(done["archiveId"]) == 138
    assert emulator.control.multipart_uploads_in_progress(vault) == 0
    # A repeat Complete returns the same archive; ListParts then fails.
    again = glacier.complete_multipart_upload(
        vaultName=vault, uploadId=upload_id, archiveSize=str(len(data)), checksum=th(data)
    )
    assert again["archiveId"] == done["archiveId"]
    with pytest.raises(ClientError) as exc:
        glacier.list_parts(vaultName=vault, uploadId=upload_id)
    assert error_of(exc) == ("ResourceNotFoundException", 404)
    assert retrieve(glacier, vault, done["archiveId"]) == data
    emulator.control.refresh_inventory(vault)
    job = glacier.initiate_job(vaultName=vault, jobParameters={"Type": "inventory-retrieval"})
    out = glacier.get_job_output(vaultName=vault, jobId=job["jobId"])
    assert b'"ArchiveDescription": "multi"' in out["body"].read()  # leading spaces removed


@pytest.fixture
def upload(glacier: Any, vault: str) -> str:
    return str(glacier.initiate_multipart_upload(vaultName=vault, partSize=str(MIB))["uploadId"])


@pytest.mark.parametrize("part_size", ["0", "1000", str(3 * MIB), str(8 * 1024**3), "abc"])
def test_part_size_must_be_power_of_two_mib(glacier: Any, vault: str, part_size: str) -> None:
    with pytest.raises(ClientError) as exc:
        glacier.initiate_multipart_upload(vaultName=vault, partSize=part_size)
    assert error_of(exc) == ("InvalidParameterValueException", 400)
    assert f"Invalid part size: {part_size}." in str(exc.value)


def test_wrong_part_tree_hash_rejected(glacier: Any, vault: str, upload: str) -> None:
    with pytest.raises(ClientError) as exc:
        glacier.upload_multipart_part(
            vaultName=vault,
            uploadId=upload,
            range=f"bytes 0-{MIB - 1}/*",
            body=bytes(MIB),
            checksum=BAD_HASH,
        )
    assert error_of(exc) == ("InvalidParameterValueException", 400)
    assert glacier.list_parts(vaultName=vault, uploadId=upload)["Parts"] == []


@pytest.mark.parametrize(
    ("content_range", "size"),
    [
        (f"bytes 1-{MIB}/*", MIB),  # start not on a part boundary
        (f"bytes 0-{2 * MIB - 1}/*", 2 * MIB),  # larger than the part size
        (f"bytes 0-{MIB - 1}/*", 100),  # incompatible with Content-Length
        (f"bytes 0-{MIB - 1}/{MIB}", MIB),  # total must be *
        ("bytes 5-4/*", 0),
    ],
)
def test_bad_content_range_rejected(
    glacier: Any, vault: str, upload: str, content_range: str, size: int
) -> None:
    with pytest.raises(ClientError) as exc:
        glacier.upload_multipart_part(
            vaultName=vault, uploadId=upload, range=content_range, body=bytes(size)
        )
    assert error_of(exc) == ("InvalidParameterValueException", 400)


def test_unknown_upload_id_is_not_found(glacier: Any, vault: str) -> None:
    unknown = "U" * 92
    calls = [
        lambda: glacier.upload_multipart_part(
            vaultName=vault, uploadId=unknown, range="bytes 0-2/*", body=b"abc"
        ),
        lambda: glacier.list_parts(vaultName=vault, uploadId=unknown),
        lambda: glacier.abort_multipart_upload(vaultName=vault, uploadId=unknown),
        lambda: glacier.complete_multipart_upload(
            vaultName=vault, uploadId=unknown, archiveSize="3", checksum=BAD_HASH
        ),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("ResourceNotFoundException", 404)


def test_complete_checks_size_hash_and_gaps_and_stays_open(
    glacier: Any, vault: str, upload: str, make_payload: Callable[..., bytes]
) -> None:
    data = make_payload(3 * MIB + 10)
    upload_parts(glacier, vault, upload, data[: 2 * MIB], MIB)  # parts 0 and 1
    glacier.upload_multipart_part(  # last part, leaving no gap at 2 MiB yet? no: a gap
        vaultName=vault,
        uploadId=upload,
        range=f"bytes {3 * MIB}-{3 * MIB + 9}/*",
        body=data[3 * MIB :],
    )

    def complete(size: int, checksum: str) -> tuple[str, int]:
        with pytest.raises(ClientError) as exc:
            glacier.complete_multipart_upload(
                vaultName=vault, uploadId=upload, archiveSize=str(size), checksum=checksum
            )
        return error_of(exc)

    assert complete(len(data), th(data)) == ("InvalidParameterValueException", 400)  # gap
    upload_parts(glacier, vault, upload, data[2 * MIB : 3 * MIB], MIB)  # lands at 0: wrong
    glacier.upload_multipart_part(
        vaultName=vault, uploadId=upload, range=f"bytes 0-{MIB - 1}/*", body=data[:MIB]
    )  # re-sent range overwrites
    glacier.upload_multipart_part(
        vaultName=vault,
        uploadId=upload,
        range=f"bytes {2 * MIB}-{3 * MIB - 1}/*",
        body=data[2 * MIB : 3 * MIB],
    )
    assert complete(len(data) + 1, th(data)) == ("InvalidParameterValueException", 400)
    assert complete(len(data) - 1, th(data)) == ("InvalidParameterValueException", 400)
    assert complete(len(data), BAD_HASH) == ("InvalidParameterValueException", 400)
    with pytest.raises(ClientError) as exc:
        glacier.complete_multipart_upload(vaultName=vault, uploadId=upload, archiveSize="5")
    assert error_of(exc) == ("MissingParameterValueException", 400)
    # Still open: completes with the right values.
    done = glacier.complete_multipart_upload(
        vaultName=vault, uploadId=upload, archiveSize=str(len(data)), checksum=th(data)
    )
    assert retrieve(glacier, vault, done["archiveId"]) == data


def test_short_middle_part_fails_only_at_complete(
    glacier: Any, vault: str, upload: str, make_payload: Callable[..., bytes]
) -> None:
    data = make_payload(2 * MIB)
    glacier.upload_multipart_part(  # accepted: it could have been the last part
        vaultName=vault, uploadId=upload, range="bytes 0-99/*", body=data[:100]
    )
    glacier.upload_multipart_part(
        vaultName=vault,
        uploadId=upload,
        range=f"bytes {MIB}-{2 * MIB - 1}/*",
        body=data[MIB:],
    )
    with pytest.raises(ClientError) as exc:
        glacier.complete_multipart_upload(
            vaultName=vault, uploadId=upload, archiveSize=str(MIB + 100), checksum=BAD_HASH
        )
    assert error_of(exc) == ("InvalidParameterValueException", 400)


def test_list_parts_and_uploads_paginate(
    glacier: Any, vault: str, make_payload: Callable[..., bytes]
) -> None:
    upload_id = glacier.initiate_multipart_upload(vaultName=vault, partSize=str(MIB))["uploadId"]
    data = make_payload(MIB * 3)
    # Many tiny "last" parts would be invalid at complete, but they list fine; use real parts.
    upload_parts(glacier, vault, upload_id, data, MIB)
    first = glacier.list_parts(vaultName=vault, uploadId=upload_id, limit="2")
    assert [p["RangeInBytes"] for p in first["Parts"]] == [f"0-{MIB - 1}", f"{MIB}-{2 * MIB - 1}"]
    assert first["PartSizeInBytes"] == MIB
    assert first["MultipartUploadId"] == upload_id
    rest = glacier.list_parts(
        vaultName=vault, uploadId=upload_id, limit="2", marker=first["Marker"]
    )
    assert [p["RangeInBytes"] for p in rest["Parts"]] == [f"{2 * MIB}-{3 * MIB - 1}"]
    assert "Marker" not in rest
    for _ in range(3):
        glacier.initiate_multipart_upload(vaultName=vault, partSize=str(2 * MIB))
    paginator = glacier.get_paginator("list_multipart_uploads")
    pages = list(paginator.paginate(vaultName=vault, PaginationConfig={"PageSize": 3}))
    uploads = [u for page in pages for u in page["UploadsList"]]
    assert len(pages) == 2
    assert len({u["MultipartUploadId"] for u in uploads}) == 4
    assert {u["PartSizeInBytes"] for u in uploads} == {MIB, 2 * MIB}


def test_abort_frees_parts_and_is_idempotent(
    glacier: Any, emulator: Emulator, vault: str, upload: str, data_dir: Any
) -> None:
    glacier.upload_multipart_part(
        vaultName=vault, uploadId=upload, range="bytes 0-2/*", body=b"abc"
    )
    assert (data_dir / "uploads" / upload).exists()
    glacier.abort_multipart_upload(vaultName=vault, uploadId=upload)
    assert not (data_dir / "uploads" / upload).exists()
    glacier.abort_multipart_upload(vaultName=vault, uploadId=upload)
    assert emulator.control.multipart_uploads_in_progress(vault) == 0
    with pytest.raises(ClientError) as exc:
        glacier.upload_multipart_part(
            vaultName=vault, uploadId=upload, range="bytes 0-2/*", body=b"abc"
        )
    assert error_of(exc) == ("ResourceNotFoundException", 404)

"""Vault operations, counts as of the last inventory, and AWS-shaped errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulators.glacier import Emulator


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_vault_lifecycle(glacier: Any, emulator: Emulator, vault_name: str) -> None:
    created = glacier.create_vault(vaultName=vault_name)
    assert created["location"] == f"/123456789012/vaults/{vault_name}"
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    glacier.create_vault(vaultName=vault_name)  # idempotent

    described = glacier.describe_vault(vaultName=vault_name)
    assert described["VaultARN"] == f"arn:aws:glacier:us-east-1:123456789012:vaults/{vault_name}"
    assert described["VaultName"] == vault_name
    assert described["NumberOfArchives"] == 0
    assert "LastInventoryDate" not in described  # null before the first inventory

    glacier.delete_vault(vaultName=vault_name)  # never written: deletable at once
    with pytest.raises(ClientError) as exc:
        glacier.describe_vault(vaultName=vault_name)
    assert error_of(exc) == ("ResourceNotFoundException", 404)
    assert "Vault not found for ARN: arn:aws:glacier" in str(exc.value)


def test_counts_come_from_the_last_inventory(glacier: Any, emulator: Emulator, vault: str) -> None:
    glacier.upload_archive(vaultName=vault, body=b"a" * 100)
    assert glacier.describe_vault(vaultName=vault)["NumberOfArchives"] == 0
    emulator.control.refresh_inventory(vault)
    described = glacier.describe_vault(vaultName=vault)
    assert described["NumberOfArchives"] == 1
    assert described["SizeInBytes"] == 100
    assert described["LastInventoryDate"].endswith("Z")


def test_delete_vault_waits_for_an_empty_inventory(
    glacier: Any, emulator: Emulator, vault: str
) -> None:
    archive_id = glacier.upload_archive(vaultName=vault, body=b"x")["archiveId"]
    with pytest.raises(ClientError) as exc:
        glacier.delete_vault(vaultName=vault)
    assert error_of(exc) == ("InvalidParameterValueException", 400)
    assert "Vault not empty or recently written to" in str(exc.value)

    glacier.delete_archive(vaultName=vault, archiveId=archive_id)
    glacier.delete_archive(vaultName=vault, archiveId=archive_id)  # idempotent
    with pytest.raises(ClientError):  # a deletion is a write: wait for the next pass
        glacier.delete_vault(vaultName=vault)
    emulator.control.refresh_inventory(vault)
    glacier.delete_vault(vaultName=vault)


def test_list_vaults_pages_with_opaque_markers(glacier: Any, vault_name: str) -> None:
    names = [f"{vault_name}-{i:02d}" for i in range(13)]
    for name in reversed(names):
        glacier.create_vault(vaultName=name)
    first = glacier.list_vaults(limit="5")
    assert len(first["VaultList"]) == 5
    assert first["Marker"]
    paginator = glacier.get_paginator("list_vaults")
    listed = [v["VaultName"] for page in paginator.paginate() for v in page["VaultList"]]
    ours = [n for n in listed if n.startswith(f"{vault_name}-")]
    assert ours == names  # ASCII order, every vault exactly once
    assert listed == sorted(listed)
    full_page = glacier.list_vaults(limit="100")  # capped at the documented 10
    assert len(full_page["VaultList"]) == 10


@pytest.mark.parametrize("name", ["bad name", "a" * 256, "caf\u00e9"])
def test_invalid_vault_name_is_invalid_parameter(glacier: Any, name: str) -> None:
    with pytest.raises(ClientError) as exc:
        glacier.create_vault(vaultName=name)
    assert error_of(exc) == ("InvalidParameterValueException", 400)


def test_other_account_is_access_denied(glacier: Any, vault: str) -> None:
    with pytest.raises(ClientError) as exc:
        glacier.describe_vault(accountId="999999999999", vaultName=vault)
    assert error_of(exc) == ("AccessDeniedException", 403)
    assert glacier.describe_vault(accountId="123456789012", vaultName=vault)["VaultName"] == vault


def test_bad_limit_is_invalid_parameter(glacier: Any) -> None:
    with pytest.raises(ClientError) as exc:
        glacier.list_vaults(limit="0")
    assert error_of(exc) == ("InvalidParameterValueException", 400)


def test_unemulated_operation_is_a_clear_error(glacier: Any, vault: str) -> None:
    with pytest.raises(ClientError) as exc:
        glacier.list_tags_for_vault(vaultName=vault)
    assert error_of(exc) == ("NotImplemented", 501)


def test_error_body_and_request_id_are_aws_shaped(emulator: Emulator) -> None:
    request = urllib.request.Request(f"{emulator.endpoint_url}/-/vaults/nope")
    request.add_header("x-amz-glacier-version", "2012-06-01")
    request.add_header("Authorization", "AWS4-HMAC-SHA256 Credential=x")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request)
    assert exc.value.code == 404
    assert exc.value.headers["Content-Type"] == "application/json"
    assert exc.value.headers["x-amzn-RequestId"]
    body = json.loads(exc.value.read())
    assert body == {
        "code": "ResourceNotFoundException",
        "message": "Vault not found for ARN: arn:aws:glacier:us-east-1:123456789012:vaults/nope",
        "type": "Client",
    }


def test_unsigned_request_is_refused(emulator: Emulator) -> None:
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{emulator.endpoint_url}/-/vaults")
    assert exc.value.code == 400
    assert json.loads(exc.value.read())["code"] == "MissingAuthenticationTokenException"


def test_request_id_reaches_botocore(glacier: Any) -> None:
    meta = glacier.list_vaults()["ResponseMetadata"]
    assert meta["RequestId"]
    assert meta["HTTPHeaders"]["x-amzn-requestid"] == meta["RequestId"]

"""The same checks against moto's server and the emulator, for the calls moto implements.

moto returns a plain SHA-256 where Glacier returns a tree hash, sends no ``Location``
headers and serves live inventories, so those are asserted only against the emulator
(the ``faithful`` flag). moto's code for a missing vault is ``VaultNotFound``, AWS's
is ``ResourceNotFoundException``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.utils import calculate_tree_hash

from emulators.glacier import Emulator

MIB = 1024 * 1024


@dataclass
class Backend:
    glacier: Any
    faithful: bool  # False for moto: no tree hashes, no inventory lag
    refresh_inventory: Callable[[str], None]


@pytest.fixture(params=["moto", "emulator"])
def backend(request: pytest.FixtureRequest, client_for: Callable[..., Any]) -> Backend:
    if request.param == "moto":
        url = request.getfixturevalue("moto_endpoint")
        return Backend(client_for(url), False, lambda vault: None)
    emulator: Emulator = request.getfixturevalue("emulator")
    return Backend(client_for(emulator.endpoint_url), True, emulator.control.refresh_inventory)


def test_vault_calls(backend: Backend, vault_name: str) -> None:
    glacier = backend.glacier
    created = glacier.create_vault(vaultName=vault_name)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    if backend.faithful:  # moto sends no Location header
        assert created["location"] == f"/123456789012/vaults/{vault_name}"
    described = glacier.describe_vault(vaultName=vault_name)
    assert described["VaultName"] == vault_name
    assert described["VaultARN"].endswith(f":vaults/{vault_name}")
    assert described["CreationDate"]

    def names() -> list[str]:
        pages = glacier.get_paginator("list_vaults").paginate()
        return [v["VaultName"] for page in pages for v in page["VaultList"]]

    assert vault_name in names()
    glacier.delete_vault(vaultName=vault_name)
    assert vault_name not in names()
    with pytest.raises(ClientError) as exc:
        glacier.describe_vault(vaultName=vault_name)
    # AWS (and the emulator) answer ResourceNotFoundException; moto says VaultNotFound.
    expected = "ResourceNotFoundException" if backend.faithful else "VaultNotFound"
    assert exc.value.response["Error"]["Code"] == expected


def test_archive_and_job_calls(backend: Backend, vault_name: str) -> None:
    glacier, faithful = backend.glacier, backend.faithful
    glacier.create_vault(vaultName=vault_name)
    data = bytes(range(256)) * 5000  # > 1 MiB: tree hash != SHA-256
    up = glacier.upload_archive(vaultName=vault_name, body=data, archiveDescription="d")
    assert up["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert up["archiveId"]
    if faithful:  # moto sends no Location and a plain SHA-256 where the tree hash belongs
        assert up["location"].endswith(up["archiveId"])
        assert up["checksum"] == calculate_tree_hash(io.BytesIO(data))

    job = glacier.initiate_job(
        vaultName=vault_name,
        jobParameters={"Type": "archive-retrieval", "ArchiveId": up["archiveId"]},
    )
    assert job["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert job["jobId"]
    described = glacier.describe_job(vaultName=vault_name, jobId=job["jobId"])
    assert described["JobId"] == job["jobId"]
    assert described["Action"] == "ArchiveRetrieval"
    assert described["ArchiveId"] == up["archiveId"]
    assert described["StatusCode"] in ("InProgress", "Succeeded")
    listed = glacier.list_jobs(vaultName=vault_name)["JobList"]
    assert job["jobId"] in [j["JobId"] for j in listed]
    if faithful:
        out = glacier.get_job_output(vaultName=vault_name, jobId=job["jobId"])
        assert out["body"].read() == data
        assert out["checksum"] == calculate_tree_hash(io.BytesIO(data))

    glacier.delete_archive(vaultName=vault_name, archiveId=up["archiveId"])


def test_inventory_job_shape(backend: Backend, vault_name: str) -> None:
    glacier = backend.glacier
    glacier.create_vault(vaultName=vault_name)
    glacier.upload_archive(vaultName=vault_name, body=b"abc")
    backend.refresh_inventory(vault_name)  # moto needs none: its inventory is live
    job = glacier.initiate_job(vaultName=vault_name, jobParameters={"Type": "inventory-retrieval"})
    assert job["ResponseMetadata"]["HTTPStatusCode"] == 202
    described = glacier.describe_job(vaultName=vault_name, jobId=job["jobId"])
    assert described["Action"] == "InventoryRetrieval"
    assert described["VaultARN"].endswith(f":vaults/{vault_name}")

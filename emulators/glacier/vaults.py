"""Vault and single-request archive operations."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from . import vault_lock
from .clock import iso8601
from .errors import GlacierError, invalid_parameter, not_found
from .model import Archive, Vault
from .state import EmulatorState, new_archive_id
from .transfer import receive_body
from .wire import (
    decode_marker,
    description_header,
    json_response,
    no_content,
    page,
    parse_limit,
    required_header,
    state_of,
)

VAULT_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,255}")
MAX_SINGLE_UPLOAD = 4 * 1024**3


def vault_json(state: EmulatorState, vault: Vault) -> dict[str, Any]:
    """DescribeVault / ListVaults element; counts as of the last inventory, like AWS."""
    inventory = vault.inventory
    return {
        "CreationDate": iso8601(vault.created),
        "LastInventoryDate": None if inventory is None else iso8601(inventory.date),
        "NumberOfArchives": 0 if inventory is None else len(inventory.archives),
        "SizeInBytes": 0 if inventory is None else sum(a.size for a in inventory.archives),
        "VaultARN": state.vault_arn(vault.name),
        "VaultName": vault.name,
    }


def _vault(request: web.Request) -> tuple[EmulatorState, Vault]:
    state = state_of(request)
    state.check_account(request.match_info["account"])
    return state, state.vault(request.match_info["vault"])


async def create_vault(request: web.Request) -> web.Response:
    """CreateVault: idempotent; 201 with the vault's Location."""
    state = state_of(request)
    state.check_account(request.match_info["account"])
    name = request.match_info["vault"]
    if not VAULT_NAME.fullmatch(name):
        raise invalid_parameter(f"Invalid vault name: {name}")
    if name not in state.vaults:
        if len(state.vaults) >= 1000:
            raise GlacierError("LimitExceededException", "Vault limit exceeded (1000 per region)")
        state.vaults[name] = Vault(name=name, created=state.clock.now())
    return no_content(201, {"Location": f"/{state.account_id}/vaults/{name}"})


async def describe_vault(request: web.Request) -> web.Response:
    """DescribeVault."""
    state, vault = _vault(request)
    return json_response(vault_json(state, vault))


async def list_vaults(request: web.Request) -> web.Response:
    """ListVaults: ASCII order by name, ``limit`` 1-10 (default 10), opaque marker."""
    state = state_of(request)
    state.check_account(request.match_info["account"])
    limit = parse_limit(request, default=10, maximum=10)
    after = decode_marker(request)
    items = sorted((name, vault) for name, vault in state.vaults.items())
    chosen, marker = page(items, after, limit)
    return json_response({"Marker": marker, "VaultList": [vault_json(state, v) for v in chosen]})


async def delete_vault(request: web.Request) -> web.Response:
    """DeleteVault: only when the last inventory is empty and nothing was written since."""
    state, vault = _vault(request)
    empty = vault.inventory is None or not vault.inventory.archives
    if not empty or vault.written_since_inventory:
        raise invalid_parameter(
            f"Vault not empty or recently written to: {state.vault_arn(vault.name)}"
        )
    for job_id in [j.job_id for j in state.jobs.values() if j.vault == vault.name]:
        del state.jobs[job_id]
        state.storage.remove_job(job_id)
    for upload_id in [u.upload_id for u in state.uploads.values() if u.vault == vault.name]:
        del state.uploads[upload_id]
        state.storage.remove_upload(upload_id)
    del state.vaults[vault.name]
    return no_content(204)


async def upload_archive(request: web.Request) -> web.Response:
    """UploadArchive: body streamed to disk, both checksums verified, 201 + archive id."""
    state, vault = _vault(request)
    description = description_header(request)
    length = request.content_length
    if length is None or length <= 0 or length > MAX_SINGLE_UPLOAD:
        raise invalid_parameter(f"Invalid Content-Length: {length or 0}")
    tree_hash = required_header(request, "x-amz-sha256-tree-hash")
    linear_hash = required_header(request, "x-amz-content-sha256")
    archive_id = new_archive_id()
    temp = state.storage.temp_path()
    hasher = await receive_body(request, temp)
    try:
        if hasher.size != length:
            raise invalid_parameter(f"Invalid Content-Length: {length}")
        if hasher.linear_hash() != linear_hash:
            raise invalid_parameter(
                f"Checksum mismatch: x-amz-content-sha256 {linear_hash}, "
                f"computed {hasher.linear_hash()}"
            )
        if hasher.tree_hash() != tree_hash:
            raise invalid_parameter(
                f"Checksum mismatch: expected {tree_hash}, computed {hasher.tree_hash()}"
            )
    except Exception:
        state.storage.discard(temp)
        raise
    path = state.storage.archive_path(archive_id)
    state.storage.commit(temp, path)
    state.add_archive(
        Archive(
            archive_id=archive_id,
            vault=vault.name,
            description=description,
            created=state.clock.now(),
            size=hasher.size,
            tree_hash=hasher.tree_hash(),
            leaves=tuple(hasher.leaves()),
            path=path,
        )
    )
    return no_content(201, archive_headers(state, vault.name, archive_id, hasher.tree_hash()))


def archive_headers(
    state: EmulatorState, vault: str, archive_id: str, tree_hash: str
) -> dict[str, str]:
    """Headers of UploadArchive / CompleteMultipartUpload responses."""
    return {
        "Location": f"/{state.account_id}/vaults/{vault}/archives/{archive_id}",
        "x-amz-archive-id": archive_id,
        "x-amz-sha256-tree-hash": tree_hash,
    }


async def delete_archive(request: web.Request) -> web.Response:
    """DeleteArchive: repeat deletes succeed; unknown ids 404; another vault's ids 400; a vault
    lock policy that denies it 403."""
    state, vault = _vault(request)
    archive_id = request.match_info["archive"]
    owner = state.archive_vault.get(archive_id)
    if owner is None:
        raise not_found(f"The archive ID was not found: {archive_id}")
    if owner != vault.name:
        raise invalid_parameter(f"Invalid vault name: {state.vault_arn(vault.name)}")
    locked = vault.archives.get(archive_id)
    if locked is not None:
        vault_lock.check_delete(state, vault, locked)
    archive = vault.archives.pop(archive_id, None)
    if archive is not None:
        vault.deleted_archives[archive_id] = state.clock.now()
        vault.written_since_inventory = True
        # Job outputs hold their own hard link, so the bytes may go now.
        state.storage.discard(archive.path)
    return no_content(204)

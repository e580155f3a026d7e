"""The multipart upload family, with AWS's validation rules."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from .clock import iso8601
from .errors import invalid_parameter, not_found
from .model import Archive, Part, Upload, Vault
from .state import EmulatorState, new_archive_id, new_long_id
from .transfer import receive_body
from .treehash import MIB, combine_tree_hashes
from .vaults import archive_headers
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

MAX_PART_SIZE = 4 * 1024**3
MAX_PARTS = 10_000
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/\*")


def _vault(request: web.Request) -> tuple[EmulatorState, Vault]:
    state = state_of(request)
    state.check_account(request.match_info["account"])
    return state, state.vault(request.match_info["vault"])


def valid_part_size(size: int) -> bool:
    """1 MiB x 2^n, from 1 MiB to 4 GiB."""
    return MIB <= size <= MAX_PART_SIZE and size & (size - 1) == 0


def upload_json(state: EmulatorState, upload: Upload) -> dict[str, Any]:
    """ListMultipartUploads element (also the head of ListParts)."""
    return {
        "ArchiveDescription": upload.description or None,
        "CreationDate": iso8601(upload.created),
        "MultipartUploadId": upload.upload_id,
        "PartSizeInBytes": upload.part_size,
        "VaultARN": state.vault_arn(upload.vault),
    }


async def initiate_upload(request: web.Request) -> web.Response:
    """InitiateMultipartUpload: validates ``x-amz-part-size``; 201 + upload id."""
    state, vault = _vault(request)
    raw = request.headers.get("x-amz-part-size", "")
    size = int(raw) if raw.isdigit() else -1
    if not valid_part_size(size):
        raise invalid_parameter(
            f"Invalid part size: {raw or 'null'}. Part size must not be null, must be a power "
            "of two and be between 1048576 and 4294967296 bytes."
        )
    description = description_header(request, strip_leading=True)
    upload_id = new_long_id()
    state.uploads[upload_id] = Upload(
        upload_id=upload_id,
        vault=vault.name,
        description=description,
        part_size=size,
        created=state.clock.now(),
    )
    return no_content(
        201,
        {
            "Location": f"/{state.account_id}/vaults/{vault.name}/multipart-uploads/{upload_id}",
            "x-amz-multipart-upload-id": upload_id,
        },
    )


def _check_range(upload: Upload, content_range: str, length: int | None) -> tuple[int, int]:
    match = CONTENT_RANGE.fullmatch(content_range.strip())
    if match is None:
        raise invalid_parameter(f"Invalid Content-Range: {content_range}")
    first, last = int(match[1]), int(match[2])
    size = last - first + 1
    if last < first or size > upload.part_size or first % upload.part_size:
        raise invalid_parameter(f"Invalid Content-Range: {content_range}")
    if first // upload.part_size >= MAX_PARTS:
        raise invalid_parameter(f"Invalid Content-Range: {content_range} (more than 10000 parts)")
    if length != size:
        raise invalid_parameter(
            f"Content-Range: {content_range} is incompatible with Content-Length: {length}"
        )
    return first, size


async def upload_part(request: web.Request) -> web.Response:
    """UploadMultipartPart: range, length and both hashes checked; a re-sent range overwrites."""
    state, vault = _vault(request)
    upload = state.upload(vault, request.match_info["upload"])
    content_range = required_header(request, "Content-Range")
    first, size = _check_range(upload, content_range, request.content_length)
    tree_hash = required_header(request, "x-amz-sha256-tree-hash")
    linear_hash = required_header(request, "x-amz-content-sha256")
    temp = state.storage.temp_path()
    hasher = await receive_body(request, temp)
    try:
        if hasher.size != size:
            raise invalid_parameter(
                f"Content-Range: {content_range} is incompatible with Content-Length: {hasher.size}"
            )
        if hasher.linear_hash() != linear_hash:
            raise invalid_parameter(
                f"Checksum mismatch: x-amz-content-sha256 {linear_hash}, "
                f"computed {hasher.linear_hash()}"
            )
        if hasher.tree_hash() != tree_hash:
            raise invalid_parameter(
                f"Checksum mismatch: expected {tree_hash}, computed {hasher.tree_hash()}"
            )
        if upload.upload_id not in state.uploads:  # aborted or completed meanwhile
            raise not_found(f"The upload ID was not found: {upload.upload_id}")
    except Exception:
        state.storage.discard(temp)
        raise
    path = state.storage.part_path(upload.upload_id, first)
    state.storage.commit(temp, path)
    upload.parts[first] = Part(
        first=first,
        size=size,
        tree_hash=hasher.tree_hash(),
        leaves=tuple(hasher.leaves()),
        path=path,
    )
    state.stats.part_uploads_received += 1
    return no_content(204, {"x-amz-sha256-tree-hash": hasher.tree_hash()})


def _check_parts(upload: Upload, archive_size: int) -> list[Part]:
    """Parts must tile 0..size-1 exactly: full part size everywhere but at the end."""
    starts = list(range(0, archive_size, upload.part_size))
    if archive_size < 1 or sorted(upload.parts) != starts:
        raise invalid_parameter(
            f"Invalid x-amz-archive-size: {archive_size} does not match the uploaded parts"
        )
    parts = [upload.parts[s] for s in starts]
    for part in parts[:-1]:
        if part.size != upload.part_size:
            raise invalid_parameter(
                f"Part {part.first}-{part.last} is smaller than the part size {upload.part_size}"
            )
    if parts[-1].last != archive_size - 1:
        raise invalid_parameter(
            f"Invalid x-amz-archive-size: {archive_size} does not match the uploaded parts"
        )
    return parts


async def complete_upload(request: web.Request) -> web.Response:
    """CompleteMultipartUpload: size and whole-archive tree hash verified; errors keep it open."""
    state, vault = _vault(request)
    upload_id = request.match_info["upload"]
    done = state.completed_uploads.get(upload_id)
    if done is not None and done in vault.archives:  # a repeat gets the same archive id
        archive = vault.archives[done]
        return no_content(201, archive_headers(state, vault.name, done, archive.tree_hash))
    upload = state.upload(vault, upload_id)
    raw_size = required_header(request, "x-amz-archive-size")
    checksum = required_header(request, "x-amz-sha256-tree-hash")
    if not raw_size.isdigit():
        raise invalid_parameter(f"Invalid x-amz-archive-size: {raw_size}")
    parts = _check_parts(upload, int(raw_size))
    computed = combine_tree_hashes(p.tree_hash for p in parts)
    if computed != checksum:
        raise invalid_parameter(f"Invalid x-amz-sha256-tree-hash: {checksum}")
    archive_id = new_archive_id()
    path = state.storage.archive_path(archive_id)
    del state.uploads[upload_id]  # no further parts from here on
    await asyncio.to_thread(state.storage.concatenate, [p.path for p in parts], path)
    state.storage.remove_upload(upload_id)
    state.add_archive(
        Archive(
            archive_id=archive_id,
            vault=vault.name,
            description=upload.description,
            created=state.clock.now(),
            size=int(raw_size),
            tree_hash=computed,
            leaves=tuple(leaf for p in parts for leaf in p.leaves),
            path=path,
        )
    )
    state.completed_uploads[upload_id] = archive_id
    return no_content(201, archive_headers(state, vault.name, archive_id, computed))


async def abort_upload(request: web.Request) -> web.Response:
    """AbortMultipartUpload: frees the parts; repeat aborts succeed, completed uploads 404."""
    state, vault = _vault(request)
    upload_id = request.match_info["upload"]
    if upload_id in state.aborted_uploads:
        return no_content(204)
    upload = state.upload(vault, upload_id)
    del state.uploads[upload.upload_id]
    state.aborted_uploads.add(upload_id)
    state.storage.remove_upload(upload_id)
    return no_content(204)


async def list_parts(request: web.Request) -> web.Response:
    """ListParts: parts sorted by range, ``limit`` 1-50 (default 50), opaque marker."""
    state, vault = _vault(request)
    upload = state.upload(vault, request.match_info["upload"])
    limit = parse_limit(request, default=50, maximum=50)
    after = decode_marker(request)
    items = [(f"{first:020d}", part) for first, part in sorted(upload.parts.items())]
    chosen, marker = page(items, after, limit)
    body = upload_json(state, upload)
    body["Marker"] = marker
    body["Parts"] = [
        {"RangeInBytes": f"{p.first}-{p.last}", "SHA256TreeHash": p.tree_hash} for p in chosen
    ]
    return json_response(body)


async def list_uploads(request: web.Request) -> web.Response:
    """ListMultipartUploads: open uploads of the vault, oldest first."""
    state, vault = _vault(request)
    limit = parse_limit(request, default=50, maximum=50)
    after = decode_marker(request)
    uploads = [u for u in state.uploads.values() if u.vault == vault.name]
    items = [(f"{u.created:020.6f}/{u.upload_id}", u) for u in uploads]
    chosen, marker = page(sorted(items, key=lambda kv: kv[0]), after, limit)
    return json_response({"Marker": marker, "UploadsList": [upload_json(state, u) for u in chosen]})

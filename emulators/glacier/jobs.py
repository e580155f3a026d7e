"""Retrieval jobs: InitiateJob, DescribeJob, ListJobs and ranged GetJobOutput."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from . import inventory as inv
from .clock import iso8601
from .errors import GlacierError, invalid_parameter, missing_parameter, not_found
from .model import Job, Vault
from .state import TIERS, EmulatorState, new_long_id
from .transfer import send_file_range
from .treehash import is_mib_aligned, is_tree_hash_aligned, range_tree_hash
from .wire import (
    checked_description,
    decode_marker,
    json_response,
    no_content,
    page,
    parse_limit,
    state_of,
)

BYTE_RANGE = re.compile(r"(\d+)-(\d+)")
HTTP_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
STATUS_CODES = ("InProgress", "Succeeded", "Failed")


def _vault(request: web.Request) -> tuple[EmulatorState, Vault]:
    state = state_of(request)
    state.check_account(request.match_info["account"])
    return state, state.vault(request.match_info["vault"])


def _job_parameters(body: bytes) -> dict[str, Any]:
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        raise GlacierError("SerializationException", "Malformed JSON request body") from None
    if not isinstance(params, dict):
        raise GlacierError("SerializationException", "Job parameters must be a JSON object")
    # The GDG syntax block wraps the parameters; its examples and botocore send them bare.
    wrapped = params.get("jobParameters")
    return wrapped if isinstance(wrapped, dict) else params


async def initiate_job(request: web.Request) -> web.Response:
    """InitiateJob for ``archive-retrieval`` or ``inventory-retrieval``; 202 + job id."""
    state, vault = _vault(request)
    params = _job_parameters(await request.read())
    job_type = params.get("Type")
    if job_type is None:
        raise missing_parameter("Type")
    description = params.get("Description")
    if description is not None:
        description = checked_description(str(description), "job description")
    tier = params.get("Tier") or "Standard"
    if tier not in TIERS:
        raise invalid_parameter(f"Invalid tier: {tier}")
    now = state.clock.now()
    job = Job(
        job_id=new_long_id(),
        vault=vault.name,
        action="",
        description=description,
        tier=tier,
        created=now,
        completes_at=now + state.tier_delays[tier],
        sns_topic=params.get("SNSTopic"),
    )
    if job_type == "archive-retrieval":
        _prepare_archive_job(state, vault, job, params)
    elif job_type == "inventory-retrieval":
        _prepare_inventory_job(state, vault, job, params)
    elif job_type == "select":
        raise invalid_parameter("select jobs are not supported by this emulator")
    else:
        raise invalid_parameter(f"Invalid job type: {job_type}")
    state.jobs[job.job_id] = job
    return no_content(
        202,
        {
            "Location": f"/{state.account_id}/vaults/{vault.name}/jobs/{job.job_id}",
            "x-amz-job-id": job.job_id,
        },
    )


def _prepare_archive_job(
    state: EmulatorState, vault: Vault, job: Job, params: dict[str, Any]
) -> None:
    job.action = "ArchiveRetrieval"
    for key in ("Format", "InventoryRetrievalParameters"):
        if params.get(key) is not None:
            raise invalid_parameter(f"{key} is not valid for an archive-retrieval job")
    archive_id = params.get("ArchiveId")
    if not archive_id:
        raise missing_parameter("ArchiveId")
    owner = state.archive_vault.get(str(archive_id))
    if owner is None:
        raise not_found(f"The archive ID was not found: {archive_id}")
    if owner != vault.name:
        raise invalid_parameter(f"Invalid vault name: {state.vault_arn(vault.name)}")
    job.archive_id = str(archive_id)
    archive = vault.archives.get(job.archive_id)
    if archive is None:  # deleted: AWS accepts the job, which then fails
        job.fail_reason = "The archive was deleted."
        return
    job.archive = archive
    job.first, job.last = 0, archive.size - 1
    byte_range = params.get("RetrievalByteRange")
    if byte_range is not None:
        match = BYTE_RANGE.fullmatch(str(byte_range))
        first, last = (int(match[1]), int(match[2])) if match else (-1, -1)
        if not (0 <= first <= last < archive.size and is_mib_aligned(first, last, archive.size)):
            raise invalid_parameter(f"Invalid RetrievalByteRange: {byte_range}")
        job.first, job.last = first, last
    job.output_size = job.last - job.first + 1
    # The job keeps its own link to the bytes, so a later DeleteArchive cannot take them away.
    job.output_path = state.storage.link_job_output(job.job_id, archive.path)


def _prepare_inventory_job(
    state: EmulatorState, vault: Vault, job: Job, params: dict[str, Any]
) -> None:
    job.action = "InventoryRetrieval"
    for key in ("ArchiveId", "RetrievalByteRange"):
        if params.get(key) is not None:
            raise invalid_parameter(f"{key} is not valid for an inventory-retrieval job")
    request = inv.parse_request(params.get("Format"), params.get("InventoryRetrievalParameters"))
    if vault.inventory is None:
        # No inventory has been generated yet (AWS builds the first one about a day later).
        raise not_found(f"Inventory not found for vault ARN: {state.vault_arn(vault.name)}")
    archives, next_marker = inv.select(vault.inventory, request)
    if request.fmt == "CSV":
        document = inv.render_csv(archives)
    else:
        document = inv.render_json(state.vault_arn(vault.name), vault.inventory, archives)
    job.inventory_format = request.fmt
    job.inventory_params = {
        "Format": request.fmt,
        "StartDate": request.start_date,
        "EndDate": request.end_date,
        "Limit": request.limit,
        "Marker": next_marker,
    }
    job.output_path = state.storage.job_output_path(job.job_id)
    job.output_path.write_bytes(document)
    job.output_size = len(document)


def _output_tree_hash(job: Job) -> str | None:
    """SHA256TreeHash of the retrieved range: only for tree-hash-aligned archive ranges."""
    archive = job.archive
    if archive is None or not is_tree_hash_aligned(job.first, job.last, archive.size):
        return None
    return range_tree_hash(archive.leaves, job.first, job.last)


def job_json(state: EmulatorState, job: Job) -> dict[str, Any]:
    """GlacierJobDescription; fields that do not apply are ``null``, as AWS documents."""
    status = state.job_status(job)
    done = status != "InProgress"
    archive_job = job.action == "ArchiveRetrieval"
    archive = job.archive
    message = {"InProgress": "Operation in progress.", "Succeeded": "Succeeded"}.get(status)
    return {
        "JobId": job.job_id,
        "JobDescription": job.description,
        "Action": job.action,
        "ArchiveId": job.archive_id,
        "VaultARN": state.vault_arn(job.vault),
        "CreationDate": iso8601(job.created),
        "Completed": done,
        "StatusCode": status,
        "StatusMessage": message or state.job_failure(job),
        "ArchiveSizeInBytes": archive.size if archive is not None else None,
        "InventorySizeInBytes": job.output_size if not archive_job and done else None,
        "SNSTopic": job.sns_topic,
        "CompletionDate": iso8601(job.completes_at) if done else None,
        "SHA256TreeHash": _output_tree_hash(job) if status == "Succeeded" else None,
        "ArchiveSHA256TreeHash": archive.tree_hash if archive is not None else None,
        "RetrievalByteRange": f"{job.first}-{job.last}" if archive is not None else None,
        "Tier": job.tier,
        "InventoryRetrievalParameters": None if archive_job else dict(job.inventory_params),
        "JobOutputPath": None,
        "OutputLocation": None,
        "SelectParameters": None,
    }


async def describe_job(request: web.Request) -> web.Response:
    """DescribeJob (200)."""
    state, vault = _vault(request)
    return json_response(job_json(state, state.job(vault, request.match_info["job"])))


async def list_jobs(request: web.Request) -> web.Response:
    """ListJobs: by initiation time, ``completed`` / ``statuscode`` filters, opaque marker."""
    state, vault = _vault(request)
    limit = parse_limit(request, default=50, maximum=50)
    after = decode_marker(request)
    statuscode = request.query.get("statuscode")
    if statuscode is not None and statuscode not in STATUS_CODES:
        raise invalid_parameter(f"The job status code is not valid: {statuscode}")
    completed = request.query.get("completed")
    if completed is not None and completed not in ("true", "false"):
        raise invalid_parameter(f"The completed value is not valid: {completed}")
    state.expire_jobs()
    items = []
    for job in state.jobs.values():
        status = state.job_status(job)
        if job.vault != vault.name or statuscode not in (None, status):
            continue
        if completed is not None and (status != "InProgress") != (completed == "true"):
            continue
        items.append((f"{job.created:020.6f}/{job.job_id}", job))
    chosen, marker = page(sorted(items, key=lambda kv: kv[0]), after, limit)
    return json_response({"JobList": [job_json(state, j) for j in chosen], "Marker": marker})


def _parse_range(header: str, total: int) -> tuple[int, int]:
    match = HTTP_RANGE.fullmatch(header.strip())
    if match is None:
        raise invalid_parameter(f"Invalid Range: {header}")
    first = int(match[1])
    last = int(match[2]) if match[2] else total - 1
    if not first <= last < total:
        raise invalid_parameter(f"Invalid Range: {header} for output of {total} bytes")
    return first, last


async def get_job_output(request: web.Request) -> web.StreamResponse:
    """GetJobOutput: whole (200) or ranged (206) output, streamed from disk.

    ``x-amz-sha256-tree-hash`` is sent only for archive jobs whose retrieval range is
    tree-hash aligned, and only when the returned bytes are themselves a tree node.
    """
    state, vault = _vault(request)
    job = state.job(vault, request.match_info["job"])
    if state.job_status(job) != "Succeeded" or job.output_path is None:
        raise invalid_parameter(f"The job is not currently available for download: {job.job_id}")
    total = job.output_size
    headers = {"Accept-Ranges": "bytes"}
    range_header = request.headers.get("Range")
    if range_header:
        first, last = _parse_range(range_header, total)
        headers["Content-Range"] = f"bytes {first}-{last}/{total}"
        status = 206
    else:
        first, last, status = 0, total - 1, 200
    archive = job.archive
    if archive is not None:
        headers["Content-Type"] = "application/octet-stream"
        if archive.description:
            headers["x-amz-archive-description"] = archive.description
        retrieval_aligned = is_tree_hash_aligned(job.first, job.last, archive.size)
        if retrieval_aligned and is_tree_hash_aligned(first, last, total):
            headers["x-amz-sha256-tree-hash"] = range_tree_hash(
                archive.leaves, job.first + first, job.first + last
            )
        offset = job.first + first
    else:
        headers["Content-Type"] = (
            "text/csv" if job.inventory_format == "CSV" else "application/json"
        )
        offset = first
    return await send_file_range(
        request, job.output_path, offset, last - first + 1, status=status, headers=headers
    )

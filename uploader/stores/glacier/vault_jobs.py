"""The job calls of a Glacier vault: inventory and retrieval jobs, their state and their output.

A vault cannot list or read at once: an inventory job produces (hours later) the vault's last
daily inventory, a retrieval job stages an archive (or a MiB-aligned range of it) for about
24 h. :class:`VaultJobs` makes those calls for :class:`~.store.GlacierStore`, which offers them
as the :class:`~uploader.stores.base.InventoryJobs` and
:class:`~uploader.stores.base.RetrievalJobs` abilities; :mod:`.jobs` parses the answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from localbackup.logevents import get_logger
from uploader.stores.aws_client import AwsClient
from uploader.stores.base import TIER_NAMES, ObjectNotFound, PermanentStoreError, Tier
from uploader.stores.glacier.jobs import (
    IncompleteResponse,
    Inventory,
    JobInfo,
    JobOutputExpired,
    job_from_response,
    parse_inventory,
    retrieval_range,
)
from uploader.stores.glacier.wire import NoInventoryYet, errors, vault_args, verified_stream

log = get_logger(__name__)


class VaultJobs:
    """The job calls on one vault, through the store's open client."""

    def __init__(self, aws: AwsClient, vault: str, account_id: str) -> None:
        self._aws = aws
        self.vault = vault
        self.account_id = account_id

    def _args(self, **kwargs: Any) -> dict[str, Any]:
        return vault_args(self.account_id, self.vault, **kwargs)

    async def _initiate_job(
        self, parameters: dict[str, Any], what: str, not_found: type[PermanentStoreError]
    ) -> str:
        with errors(what, not_found):
            r = await self._aws.client.initiate_job(**self._args(jobParameters=parameters))
        if not r.get("jobId"):
            raise IncompleteResponse(f"{what}: no job id in the response")
        log.info(
            "glacier.job_initiated", vault=self.vault, job_id=r["jobId"], type=parameters["Type"]
        )
        return str(r["jobId"])

    async def initiate_inventory_job(self) -> str:
        """Ask for the vault's last inventory (JSON); returns the job id."""
        return await self._initiate_job(
            {"Type": "inventory-retrieval", "Format": "JSON"},
            f"starting an inventory of vault {self.vault}",
            NoInventoryYet,
        )

    async def initiate_retrieval_job(
        self,
        archive_id: str,
        tier: Tier = "Bulk",
        byte_range: tuple[int, int] | None = None,
        *,
        archive_size: int | None = None,
    ) -> str:
        """Stage an archive (or the half-open, MiB-aligned ``byte_range`` of it) for download;
        returns the job id. A range may end off a MiB boundary only at ``archive_size``."""
        if tier not in TIER_NAMES:
            raise PermanentStoreError(
                f"retrieval tier {tier!r} is not one of {', '.join(TIER_NAMES)}"
            )
        parameters = {"Type": "archive-retrieval", "ArchiveId": archive_id, "Tier": tier}
        if byte_range is not None:
            parameters["RetrievalByteRange"] = retrieval_range(byte_range, archive_size)
        return await self._initiate_job(
            parameters, f"retrieving archive {archive_id}", ObjectNotFound
        )

    async def describe_job(self, job_id: str) -> JobInfo:
        """The job's state (:class:`JobOutputExpired` once Glacier no longer knows it)."""
        what = f"describing job {job_id}"
        with errors(what, JobOutputExpired):
            r = await self._aws.client.describe_job(**self._args(jobId=job_id))
        return job_from_response(r, what)

    async def list_jobs(self) -> list[JobInfo]:
        """Jobs in progress and recently finished, oldest first."""
        what = f"listing the jobs of vault {self.vault}"
        out: list[JobInfo] = []
        with errors(what):
            async for page in self._aws.client.get_paginator("list_jobs").paginate(**self._args()):
                if "JobList" not in page:
                    raise IncompleteResponse(f"{what}: the response has no JobList")
                out.extend(job_from_response(j, what) for j in page["JobList"])
        return out

    async def get_inventory(self, job_id: str) -> Inventory:
        """The output of a succeeded inventory job, parsed."""
        raw = b"".join([chunk async for chunk in self.read_job_output(job_id)])
        return parse_inventory(raw, f"reading the inventory of job {job_id}")

    async def read_job_output(
        self,
        job_id: str,
        start: int = 0,
        end: int | None = None,
        *,
        require_tree_hash: bool = False,
    ) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of a job's output. The length is always checked, and the tree
        hash whenever Glacier sends one (tree-hash-aligned ranges of tree-hash-aligned
        retrievals, see :func:`.jobs.tree_hash_ranges`), at the end of the range: chunks are
        yielded as they arrive, so keep them only if iteration ends without an error.
        A cut connection raises :class:`TransientStoreError` (retry the range); an expired
        output :class:`JobOutputExpired`; with ``require_tree_hash``, a response without a
        tree hash :class:`MissingTreeHash` before any byte is yielded."""
        what = f"reading the output of job {job_id}"
        extra = {}
        if start > 0 or end is not None:
            if end is not None and end <= start:
                return
            extra["range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            with errors(what, JobOutputExpired):
                r = await self._aws.client.get_job_output(**self._args(jobId=job_id), **extra)
        except JobOutputExpired as exc:
            raise JobOutputExpired(
                f"{exc}. Job output is kept about 24 h after the job completes: start a new job"
            ) from exc
        async for chunk in verified_stream(r, what, require_tree_hash=require_tree_hash):
            yield chunk

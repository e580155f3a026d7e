"""An Amazon Glacier vault (the 2012-06-01 vault API) as a store, through aiobotocore.

Glacier has no keys: an archive is an ArchiveId plus a description fixed at upload. The store
maps the protocol's ``key`` to our archive description (:mod:`.description`) and reports
the ArchiveId in :attr:`ObjectInfo.archive_id`. Parts carry their byte range and SHA-256 tree
hash (kept in :attr:`PartInfo.etag`, which is what completion needs); the driver's base64 SHA-256
becomes the linear ``x-amz-content-sha256``, so each part is hashed once more, in a thread.

What Glacier cannot do at once is not faked: ``head`` knows only archives completed by this
store object; ``list_objects`` raises :class:`InventoryRequired` and ``read``
:class:`RetrievalRequired`. The job calls (inventory, retrieval, job output) are made by
:class:`.vault_jobs.VaultJobs`; the store offers them as the ``InventoryJobs`` and
``RetrievalJobs`` abilities of :mod:`uploader.stores.base`, and the vault's Vault Lock policy
(:mod:`.vault_lock`) as ``VaultLocking``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from localbackup.logevents import get_logger
from uploader.config import CONNECT_TIMEOUT, READ_TIMEOUT, GlacierStoreConfig
from uploader.stores.aws_client import AwsClient, AwsStore, default_region, total_attempts
from uploader.stores.base import (
    Capabilities,
    GiB,
    MiB,
    MultipartUploadInfo,
    ObjectInfo,
    ObjectNotFound,
    ObjectOptions,
    PartInfo,
    PermanentStoreError,
    Tier,
    TransientStoreError,
    UploadNotFound,
    VaultLockPolicy,
)
from uploader.stores.glacier.description import (
    ArchiveDescription,
    DescriptionError,
    parse_description,
)
from uploader.stores.glacier.jobs import (
    IncompleteResponse,
    Inventory,
    InventoryRequired,
    JobInfo,
    JobOutputExpired,
    RetrievalRequired,
    parse_time,
)
from uploader.stores.glacier.treehash import combine_tree_hashes, tree_hash
from uploader.stores.glacier.vault_jobs import VaultJobs
from uploader.stores.glacier.vault_lock import read_vault_lock
from uploader.stores.glacier.wire import (
    CONTENT_PARAM,
    NoInventoryYet,
    VaultNotFound,
    errors,
    failing,
    install_hooks,
    vault_args,
)

__all__ = [
    "GLACIER_CAPABILITIES",
    "GlacierStore",
    "IncompleteResponse",
    "Inventory",
    "InventoryRequired",
    "JobInfo",
    "JobOutputExpired",
    "NoInventoryYet",
    "RetrievalRequired",
    "VaultNotFound",
]

log = get_logger("uploader.stores.glacier.store")

GLACIER_CAPABILITIES = Capabilities(
    min_part_size=MiB,
    max_part_size=4 * GiB,
    max_parts=10_000,
    power_of_two_parts=True,
    immediate_listing=False,
    needs_retrieval=True,
    tree_hash_etags=True,
)


@dataclass(frozen=True, slots=True)
class _Upload:
    part_size: int
    description: ArchiveDescription | None


class GlacierStore(AwsStore):
    """One vault. ``account_id`` is ``-`` (the signing account) or a 12-digit account id.

    Parts of 1 MiB x 2^n, no immediate listing, reads through retrieval jobs."""

    def __init__(
        self,
        vault: str,
        account_id: str = "-",
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = 5,
        max_connections: int = 16,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        session: AioSession | None = None,
    ) -> None:
        self.vault = vault
        self.account_id = account_id
        self._session = session if session is not None else AioSession(profile=profile)
        self.region = region or default_region(profile, self._session)
        self.config = GlacierStoreConfig(
            vault,
            account_id,
            self.region,
            profile,
            endpoint_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._capabilities = GLACIER_CAPABILITIES
        self._endpoint_url = endpoint_url
        self._config = AioConfig(
            # botocore's max_attempts counts retries; total_max_attempts is the attempt count.
            retries={
                "mode": "standard",
                "total_max_attempts": total_attempts(self._session, max_attempts),
            },
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_connections,
        )
        self._aws = AwsClient(
            "glacier",
            self._session,
            self._config,
            region=self.region,
            endpoint_url=self._endpoint_url,
        )
        self._jobs = VaultJobs(self._aws, vault, account_id)
        self._uploads: dict[str, _Upload] = {}
        self._archives: dict[str, ObjectInfo] = {}  # completed by this object, by key

    async def __aenter__(self) -> Self:
        with errors("connecting to Glacier"):
            client = await self._aws.open()
        install_hooks(client.meta.events)  # this client's own copy of the handlers
        return self

    def _args(self, **kwargs: Any) -> dict[str, Any]:
        return vault_args(self.account_id, self.vault, **kwargs)

    # -- multipart -----------------------------------------------------------------------------

    async def create_multipart_upload(
        self,
        key: str,
        part_size: int,
        metadata: Mapping[str, str],
        options: ObjectOptions | None = None,
    ) -> str:
        """Start an upload whose archive description carries ``key`` and ``metadata`` (a
        vault has no storage classes: ``options`` change nothing)."""
        try:
            description = ArchiveDescription.from_metadata(key, metadata)
            text = description.render()
        except DescriptionError as exc:
            raise PermanentStoreError(f"starting the upload of {key}: {exc}") from None
        with errors(f"starting the upload of {key}"):
            r = await self.client.initiate_multipart_upload(
                **self._args(archiveDescription=text, partSize=str(part_size))
            )
        upload_id = r.get("uploadId")
        if not upload_id:
            raise IncompleteResponse(f"starting the upload of {key}: no upload id in the response")
        self._uploads[upload_id] = _Upload(part_size, description)
        return str(upload_id)

    async def _upload(self, key: str, upload_id: str) -> _Upload:
        """Part size and description of an upload (asked of Glacier after a restart)."""
        if upload_id not in self._uploads:
            with errors(f"looking up the upload of {key}", UploadNotFound):
                r = await self.client.list_parts(**self._args(uploadId=upload_id, limit="1"))
            self._remember(upload_id, r, f"looking up the upload of {key}")
        return self._uploads[upload_id]

    def _remember(self, upload_id: str, r: Mapping[str, Any], what: str) -> None:
        if not r.get("PartSizeInBytes"):
            raise IncompleteResponse(f"{what}: the response has no PartSizeInBytes")
        description = parse_description(r.get("ArchiveDescription"))
        self._uploads[upload_id] = _Upload(int(r["PartSizeInBytes"]), description)

    async def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes | bytearray, checksum: str
    ) -> PartInfo:
        """Send a part with its byte range and tree hash; its SHA-256 goes along too."""
        what = f"uploading part {number} of {key}"
        part_size = (await self._upload(key, upload_id)).part_size
        if not 0 < len(data) <= part_size or number < 1:
            raise PermanentStoreError(f"{what}: {len(data)} bytes for parts of {part_size}")
        try:
            linear = base64.b64decode(checksum, validate=True).hex()
        except binascii.Error:
            raise PermanentStoreError(f"{what}: checksum {checksum!r} is not base64") from None
        tree = await asyncio.to_thread(tree_hash, data) if len(data) > MiB else tree_hash(data)
        first = (number - 1) * part_size
        with errors(what, UploadNotFound):
            r = await self.client.upload_multipart_part(
                **self._args(uploadId=upload_id, range=f"bytes {first}-{first + len(data) - 1}/*"),
                checksum=tree,
                body=data,
                **{CONTENT_PARAM: linear},
            )
        if r.get("checksum") != tree:
            raise TransientStoreError(f"{what}: Glacier computed another tree hash for the part")
        return PartInfo(number, len(data), checksum, tree)

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """Parts with their tree hash (``etag``); ``checksum`` (a plain SHA-256) is only known
        for parts of at most 1 MiB, where it equals the tree hash, and is "" otherwise."""
        what = f"listing the parts of {key}"
        out = []
        with errors(what, UploadNotFound):
            pages = self.client.get_paginator("list_parts").paginate(
                **self._args(uploadId=upload_id)
            )
            async for page in pages:
                if "Parts" not in page:
                    raise IncompleteResponse(f"{what}: the response has no Parts")
                self._remember(upload_id, page, what)
                part_size = self._uploads[upload_id].part_size
                for p in page["Parts"]:
                    first, _, last = str(p["RangeInBytes"]).partition("-")
                    size, tree = int(last) - int(first) + 1, str(p["SHA256TreeHash"])
                    linear = base64.b64encode(bytes.fromhex(tree)).decode() if size <= MiB else ""
                    out.append(PartInfo(int(first) // part_size + 1, size, linear, tree))
        return sorted(out, key=lambda p: p.number)

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: Sequence[PartInfo]
    ) -> None:
        """Complete with the size and combined tree hash; a repeat gets the same ArchiveId."""
        what = f"completing the upload of {key}"
        try:
            upload = await self._upload(key, upload_id)
        except UploadNotFound:
            # Completed already (by a run that died before recording it, or whose response
            # was lost): Glacier answers a repeated completion with the same ArchiveId for a
            # while, so ask; it raises UploadNotFound if the upload is really gone.
            upload = _Upload(0, None)
        ordered = sorted(parts, key=lambda p: p.number)
        if any(len(p.etag) != 64 for p in ordered):
            raise PermanentStoreError(f"{what}: a part has no SHA-256 tree hash")
        size, tree = sum(p.size for p in ordered), combine_tree_hashes(p.etag for p in ordered)
        with errors(what, UploadNotFound):
            r = await self.client.complete_multipart_upload(
                **self._args(uploadId=upload_id, archiveSize=str(size), checksum=tree)
            )
        archive_id = r.get("archiveId")
        if not archive_id:  # completion is idempotent: a retry returns the same archive id
            raise IncompleteResponse(f"{what}: no archive id in the response")
        if r.get("checksum") not in (None, tree):
            raise PermanentStoreError(f"{what}: Glacier computed another archive tree hash")
        metadata = upload.description.metadata() if upload.description else {}
        self._archives[key] = ObjectInfo(
            key, size, metadata, None, datetime.now(UTC), archive_id=str(archive_id)
        )
        self._uploads.pop(upload_id, None)
        log.info("glacier.archive_created", key=key, archive_id=archive_id, bytes=size, tree=tree)

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        """Abort an upload; an unknown upload is not an error."""
        with (
            contextlib.suppress(UploadNotFound),
            errors(f"aborting the upload of {key}", UploadNotFound),
        ):
            await self.client.abort_multipart_upload(**self._args(uploadId=upload_id))
        self._uploads.pop(upload_id, None)

    async def list_multipart_uploads(self, prefix: str = "") -> list[MultipartUploadInfo]:
        """Our uploads in progress whose key starts with ``prefix`` (foreign ones are skipped)."""
        what = "listing uploads in progress"
        out = []
        with errors(what):
            async for page in self.client.get_paginator("list_multipart_uploads").paginate(
                **self._args()
            ):
                if "UploadsList" not in page:
                    raise IncompleteResponse(f"{what}: the response has no UploadsList")
                for u in page["UploadsList"]:
                    upload_id = str(u["MultipartUploadId"])
                    self._remember(upload_id, u, what)
                    desc = self._uploads[upload_id].description
                    if desc is not None and desc.key.startswith(prefix):
                        created = parse_time(u["CreationDate"], what)
                        out.append(MultipartUploadInfo(desc.key, upload_id, created))
        return out

    # -- objects -------------------------------------------------------------------------------

    async def head(self, key: str) -> ObjectInfo:
        """An archive this store object completed (size, metadata, ``archive_id``)."""
        info = self._archives.get(key)
        if info is None:
            raise ObjectNotFound(
                f"{key}: not completed by this store object, and a Glacier vault cannot look an "
                "archive up by key (its ArchiveId is in the catalogue or in a vault inventory)"
            )
        return info

    async def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        """Not possible at once: raises :class:`InventoryRequired`."""
        raise InventoryRequired(
            f"listing the archives of vault {self.vault}: Glacier has no immediate listing; "
            "an inventory job (initiate_inventory_job, then get_inventory) is needed"
        )

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Not possible at once: the iterator raises :class:`RetrievalRequired`."""
        return failing(
            RetrievalRequired(
                f"reading {key}: a Glacier archive is read through a retrieval job "
                "(initiate_retrieval_job, then read_job_output once it has succeeded)"
            )
        )

    async def delete(self, key: str) -> None:
        """Delete an archive: ``key`` is an ArchiveId, or a key completed by this object."""
        known = self._archives.get(key)
        if known is None and "/" in key:  # our keys always have a "/", ArchiveIds never do
            raise InventoryRequired(
                f"deleting {key}: its ArchiveId is needed (catalogue, inventory)"
            )
        await self.delete_archive(known.archive_id if known and known.archive_id else key)
        self._archives.pop(key, None)

    async def delete_archive(self, archive_id: str) -> None:
        """Delete an archive by id; an id that is already gone is not an error."""
        with contextlib.suppress(ObjectNotFound), errors(f"deleting archive {archive_id}"):
            await self.client.delete_archive(**self._args(archiveId=archive_id))
        for key, info in list(self._archives.items()):
            if info.archive_id == archive_id:
                del self._archives[key]

    async def vault_lock(self) -> VaultLockPolicy | None:
        """The vault's Vault Lock policy and its state (None: the vault has none)."""
        return await read_vault_lock(self.client, self._args(), self.vault)

    # -- jobs (InventoryJobs, RetrievalJobs): see vault_jobs ---------------------------------

    async def initiate_inventory_job(self) -> str:
        """Ask for the vault's last inventory (JSON); returns the job id."""
        return await self._jobs.initiate_inventory_job()

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
        return await self._jobs.initiate_retrieval_job(
            archive_id, tier, byte_range, archive_size=archive_size
        )

    async def describe_job(self, job_id: str) -> JobInfo:
        """The job's state (:class:`JobOutputExpired` once Glacier no longer knows it)."""
        return await self._jobs.describe_job(job_id)

    async def list_jobs(self) -> list[JobInfo]:
        """Jobs in progress and recently finished, oldest first."""
        return await self._jobs.list_jobs()

    async def get_inventory(self, job_id: str) -> Inventory:
        """The output of a succeeded inventory job, parsed."""
        return await self._jobs.get_inventory(job_id)

    def read_job_output(
        self,
        job_id: str,
        start: int = 0,
        end: int | None = None,
        *,
        require_tree_hash: bool = False,
    ) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of a job's output, checked (see
        :meth:`.vault_jobs.VaultJobs.read_job_output`)."""
        return self._jobs.read_job_output(job_id, start, end, require_tree_hash=require_tree_hash)

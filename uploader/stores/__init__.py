"""Stores: where archives go. One protocol (:mod:`.base`), one module per store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from uploader.stores.base import (
    BucketLock,
    Capabilities,
    ChecksumReports,
    ContainerNotFound,
    CredentialsMissing,
    CredentialsRejected,
    GiB,
    InventoryJobs,
    MiB,
    MultipartUploadInfo,
    ObjectChanged,
    ObjectChecksums,
    ObjectInfo,
    ObjectLocking,
    ObjectNotFound,
    ObjectOptions,
    ObjectRestore,
    ObjectVersion,
    PartChecksum,
    PartInfo,
    PermanentStoreError,
    PinnedReads,
    RestoreAlreadyInProgress,
    RestoreNotSupported,
    RetrievalJobs,
    Store,
    StoredChecksums,
    StoreError,
    Tier,
    TransientStoreError,
    UploadNotFound,
    VaultLocking,
    VaultLockPolicy,
)

if TYPE_CHECKING:
    from uploader.config import StoreConfig

__all__ = [
    "BucketLock",
    "Capabilities",
    "ChecksumReports",
    "ContainerNotFound",
    "CredentialsMissing",
    "CredentialsRejected",
    "GiB",
    "InventoryJobs",
    "MiB",
    "MultipartUploadInfo",
    "ObjectChanged",
    "ObjectChecksums",
    "ObjectInfo",
    "ObjectLocking",
    "ObjectNotFound",
    "ObjectOptions",
    "ObjectRestore",
    "ObjectVersion",
    "PartChecksum",
    "PartInfo",
    "PermanentStoreError",
    "PinnedReads",
    "RestoreAlreadyInProgress",
    "RestoreNotSupported",
    "RetrievalJobs",
    "Store",
    "StoreError",
    "StoreNotAvailable",
    "StoredChecksums",
    "Tier",
    "TransientStoreError",
    "UploadNotFound",
    "VaultLockPolicy",
    "VaultLocking",
    "open_store",
]


class StoreNotAvailable(Exception):
    """The configured store type cannot be used by this version (a configuration problem,
    not a store failure)."""


def open_store(config: StoreConfig) -> Store:
    """The store described by ``config``, ready to be entered with ``async with``."""
    from uploader.config import GlacierStoreConfig, LocalStoreConfig, S3StoreConfig

    if isinstance(config, LocalStoreConfig):
        from uploader.stores.local import LocalStore

        return LocalStore(config.path)
    if isinstance(config, S3StoreConfig):
        from uploader.stores.s3 import S3Store

        return S3Store(
            config.bucket,
            config.prefix,
            config.storage_class,
            region=config.region,
            profile=config.profile,
            endpoint_url=config.endpoint_url,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            object_lock=config.object_lock,
        )
    if isinstance(config, GlacierStoreConfig):
        from uploader.stores.glacier.store import GlacierStore

        return GlacierStore(
            config.vault,
            config.account_id,
            region=config.region,
            profile=config.profile,
            endpoint_url=config.endpoint_url,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
        )
    raise StoreNotAvailable(f"unknown store configuration {config!r}")

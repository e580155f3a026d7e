"""How to fix what went wrong: the line a command prints under an error.

The stores say what happened in their own terms (:mod:`uploader.stores.base`'s error types);
only here, where the configuration is known, can a hint name the file, the key to change and
the value it holds now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from uploader.config import GlacierStoreConfig, S3StoreConfig, StoreConfig
from uploader.stores import (
    ContainerNotFound,
    CredentialsMissing,
    CredentialsRejected,
    TransientStoreError,
)

if TYPE_CHECKING:
    from watcher.config import AppConfig

__all__ = ["fix_for"]

AGAIN = "run the same command again to resume (nothing sent so far is sent twice)"


def fix_for(exc: BaseException, config: AppConfig) -> str | None:
    """How to fix ``exc`` with this configuration, or None when there is nothing to say."""
    store = config.store
    where = f" in {config.file}" if config.file is not None else ""
    if isinstance(exc, CredentialsRejected) and isinstance(
        store, S3StoreConfig | GlacierStoreConfig
    ):
        return _credentials(exc, store, where)
    if isinstance(exc, ContainerNotFound):
        return _container(store, where)
    if isinstance(exc, TransientStoreError):
        if not isinstance(store, S3StoreConfig | GlacierStoreConfig):
            return f"the store did not answer in time or failed for now: {AGAIN}"
        endpoint = store.endpoint_url or "the AWS endpoint of the region"
        return (
            f"the store did not answer ({endpoint}): check the network and "
            f"store.endpoint_url{where}, then {AGAIN}"
        )
    return None


def _container(store: StoreConfig, where: str) -> str:
    if isinstance(store, S3StoreConfig):
        return (
            f"the bucket {store.bucket!r} does not exist (or is in another account): "
            f"create it, or set store.bucket{where} to an existing bucket"
        )
    if isinstance(store, GlacierStoreConfig):
        region = store.region or "the default region"
        return (
            f"the vault {store.vault!r} does not exist in {region}: create it, or fix "
            f"store.vault (and store.region){where}"
        )
    return f"mount the disk that holds the store folder, or fix store.path{where}"


def _credentials(
    exc: CredentialsRejected, store: S3StoreConfig | GlacierStoreConfig, where: str
) -> str:
    if isinstance(exc, CredentialsMissing):
        profile = f"store.profile = {store.profile!r}" if store.profile else "store.profile"
        return (
            "no AWS credentials were found: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            f"(or AWS_PROFILE), or set {profile}{where} to a profile of ~/.aws/credentials; "
            "credentials come from the standard AWS credential chain (environment, shared "
            "credentials and config files, SSO, container and instance roles), never from "
            "this configuration"
        )
    used = f"the profile {store.profile!r}" if store.profile else "the AWS credential chain"
    return (
        f"the store refused the credentials from {used}: check that the key is active and "
        "that its policy allows this request"
    )

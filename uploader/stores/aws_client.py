"""The aiobotocore client a store opens with ``async with`` and closes with it (S3, Glacier)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from uploader.stores.base import PermanentStoreError, StoreBase


def default_region(profile: str | None, session: AioSession | None = None) -> str | None:
    """The region the AWS configuration gives ``profile`` (``AWS_DEFAULT_REGION``, the
    profile's ``region``), or None; ``session`` is asked instead when given."""
    region = (session or AioSession(profile=profile)).get_config_variable("region")
    return None if region is None else str(region)


class AwsClient:
    """One client per open store: created on :meth:`open`, released on :meth:`close`."""

    def __init__(
        self,
        service: str,
        session: AioSession,
        config: AioConfig,
        *,
        region: str | None,
        endpoint_url: str | None,
    ) -> None:
        self._service = service
        self._session = session
        self._config = config
        self._region = region
        self._endpoint_url = endpoint_url
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def open(self) -> Any:
        """Create the client (for ``async with`` on the store)."""
        self._client = await self._stack.enter_async_context(
            self._session.create_client(
                self._service,
                region_name=self._region,
                endpoint_url=self._endpoint_url,
                config=self._config,
            )
        )
        return self._client

    async def close(self) -> None:
        """Close the client and release its connections."""
        self._client = None
        await self._stack.aclose()

    @property
    def client(self) -> Any:
        """The open client (:class:`PermanentStoreError` if the store is not open)."""
        if self._client is None:
            raise PermanentStoreError(f"the {self._service} store is not open (use 'async with')")
        return self._client


class AwsStore(StoreBase):
    """A store over one AWS client (S3, Glacier): ``__aenter__`` opens :attr:`_aws`, leaving
    ``async with`` closes it, :attr:`client` is the open client."""

    _aws: AwsClient

    @property
    def client(self) -> Any:
        """The open aiobotocore client."""
        return self._aws.client

    async def close(self) -> None:
        """Close the client and release its connections."""
        await self._aws.close()

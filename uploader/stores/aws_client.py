"""The aiobotocore client a store opens with ``async with`` and closes with it (S3, Glacier).

botocore retries a failed request on its own (the "standard" retry mode); each retry is said
as it happens, as a ``store.retrying`` warning with its reason and "retrying (n/N)", so that an
unreachable endpoint or a throttling service is visible while the command waits.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from localbackup.logevents import get_logger
from uploader.stores.base import PermanentStoreError, StoreBase

log = get_logger(__name__)

_PROBLEM = "glacier_backup_last_problem"  # our key in a request's botocore context


def default_region(profile: str | None, session: AioSession | None = None) -> str | None:
    """The region the AWS configuration gives ``profile`` (``AWS_DEFAULT_REGION``, the
    profile's ``region``), or None; ``session`` is asked instead when given."""
    region = (session or AioSession(profile=profile)).get_config_variable("region")
    return None if region is None else str(region)


def total_attempts(session: AioSession, default: int) -> int:
    """How many times botocore tries a request: the user's own AWS setting where there is one
    (``AWS_MAX_ATTEMPTS``, ``max_attempts`` in the profile), as the AWS CLI and SDKs do; else
    ``default``."""
    value = session.get_config_variable("max_attempts")
    return default if value is None else max(1, int(value))


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
        # A plain-http endpoint has no TLS to verify: without this, aiohttp's session still
        # loads and parses the whole CA bundle (0.1-1 s of CPU a command on a busy machine).
        plain_http = (self._endpoint_url or "").lower().startswith("http://")
        self._client = await self._stack.enter_async_context(
            self._session.create_client(
                self._service,
                region_name=self._region,
                endpoint_url=self._endpoint_url,
                config=self._config,
                verify=False if plain_http else None,
            )
        )
        events = self._client.meta.events
        events.register("needs-retry", _note_problem)
        events.register("request-created", self._say_retry)
        return self._client

    def _say_retry(self, request: Any, **kwargs: Any) -> None:
        """botocore makes the request again: say so, with why and how many tries are left."""
        retries = request.context.get("retries") or {}
        attempt, most = int(retries.get("attempt", 1)), int(retries.get("max", 0))
        if attempt < 2:
            return
        where = self._endpoint_url or f"{self._service} in {self._region or 'the default region'}"
        operation = str(kwargs.get("event_name", "")).rsplit(".", 1)[-1]
        problem = request.context.get(_PROBLEM, "no answer")
        log.warning(
            "store.retrying",
            operation=operation,
            attempt=attempt - 1,
            retries=most - 1,
            error=problem,
            message=f"{where}: {operation}: {problem}; retrying ({attempt - 1}/{most - 1})",
        )

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


def _note_problem(
    request_dict: Any, response: Any = None, caught_exception: Any = None, **_: Any
) -> None:
    """Remember why a request failed, for the retry that may follow (botocore decides)."""
    if caught_exception is not None:
        problem = str(caught_exception)
    elif response is not None and isinstance(response, tuple) and len(response) == 2:
        status = getattr(response[0], "status_code", 0)
        if status < 400:
            return
        code = (response[1] or {}).get("Error", {}).get("Code", "")
        problem = f"HTTP {status} {code}".strip()
    else:
        return
    request_dict.get("context", {})[_PROBLEM] = problem

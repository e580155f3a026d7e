"""Read and list what a store holds, whatever its capabilities: directly where the store can,
and on a Glacier vault through retrieval and inventory jobs on the emulator's virtual clock (the
hours a user waits pass in a few requests). Tests of every store use it instead of skipping the
stores that cannot read or list at once."""

from __future__ import annotations

from typing import Any

import pytest

from uploader.stores.base import Store
from uploader.stores.glacier.store import GlacierStore

HOUR = 3600.0


class StoreAccess:
    """Bound to a test (``store_access`` fixture): gets the emulator only when needed."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def _control(self) -> Any:
        return self._request.getfixturevalue("glacier_emulator").control

    async def read(self, store: Store, key: str, start: int = 0, end: int | None = None) -> bytes:
        """The bytes ``[start, end)`` of ``key`` (ObjectNotFound if there is no such object)."""
        if not store.capabilities.needs_retrieval:
            return b"".join([c async for c in store.read(key, start, end)])
        vault = _vault(store)
        info = await vault.head(key)  # ObjectNotFound for a key it does not hold
        assert info.archive_id is not None
        job = await vault.initiate_retrieval_job(info.archive_id, tier="Expedited")
        await self._until_done(vault, job)
        return b"".join([c async for c in vault.read_job_output(job, start, end)])

    async def objects(self, store: Store, prefix: str = "") -> list[tuple[str, int]]:
        """``(key, size)`` of every object under ``prefix``, sorted (on a vault: a fresh
        inventory, taken now)."""
        if store.capabilities.immediate_listing:
            return sorted((o.key, o.size) for o in await store.list_objects(prefix))
        vault = _vault(store)
        self._control().refresh_inventory(vault.vault)
        job = await vault.initiate_inventory_job()
        await self._until_done(vault, job)
        inventory = await vault.get_inventory(job)
        return sorted(
            (a.description.key, a.size)
            for a in inventory.ours()
            if a.description is not None and a.description.key.startswith(prefix)
        )

    async def keys(self, store: Store, prefix: str = "") -> list[str]:
        return [key for key, _ in await self.objects(store, prefix)]

    async def _until_done(self, vault: GlacierStore, job: str) -> None:
        control = self._control()
        for _ in range(48):
            if (await vault.describe_job(job)).succeeded:
                return
            control.advance(HOUR)  # virtual time: no waiting
        raise AssertionError(f"job {job} did not complete in 48 virtual hours")


def _vault(store: Store) -> GlacierStore:
    inner = getattr(store, "inner", store)  # test wrappers delegate to the real store
    assert isinstance(inner, GlacierStore), f"no way to read {store.name} without a retrieval"
    return inner


def part_size_for(store: Store, wanted: int) -> int:
    """``wanted``, or the smallest part size the store accepts if it refuses ``wanted``
    (Glacier: 1 MiB, a power of two; S3 servers that enforce it: 5 MiB)."""
    caps = store.capabilities
    return wanted if caps.check_part_size(wanted) is None else caps.min_part_size

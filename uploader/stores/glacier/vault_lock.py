"""Reading a vault's Vault Lock policy (GetVaultLock), for the store's ``VaultLocking`` ability."""

from __future__ import annotations

from typing import Any

from uploader.stores.base import PermanentStoreError, VaultLockPolicy
from uploader.stores.glacier.wire import errors


class _NoVaultLock(PermanentStoreError):
    """GetVaultLock found no policy on the vault."""


async def read_vault_lock(client: Any, args: dict[str, Any], vault: str) -> VaultLockPolicy | None:
    """The vault's lock policy and state, None when it has none."""
    try:
        with errors(f"reading the vault lock of {vault}", not_found=_NoVaultLock):
            r = await client.get_vault_lock(**args)
    except _NoVaultLock:
        return None
    return VaultLockPolicy(state=str(r.get("State", "")), policy=str(r.get("Policy", "")))

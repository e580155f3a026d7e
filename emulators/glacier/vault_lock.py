"""Vault Lock: InitiateVaultLock, CompleteVaultLock, AbortVaultLock, GetVaultLock, and what the
policy does to DeleteArchive.

As AWS documents it: InitiateVaultLock attaches a policy in the ``InProgress`` state (in effect
at once) and returns a lock id; CompleteVaultLock with that id within 24 hours makes it
``Locked`` for good; AbortVaultLock removes an ``InProgress`` policy, never a ``Locked`` one;
an ``InProgress`` policy not completed within 24 hours is dropped. The emulator evaluates the
statements AWS's own examples use to make archives immutable: ``Deny`` of
``glacier:DeleteArchive`` (or ``glacier:*``, ``*``), unconditionally or while
``glacier:ArchiveAgeInDays`` is ``NumericLessThan`` / ``NumericLessThanEquals`` a number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .clock import iso8601
from .errors import GlacierError, invalid_parameter, not_found
from .model import Archive, Vault
from .state import EmulatorState, new_long_id
from .wire import json_response, no_content, state_of

LOCK_DAY = 86400.0
IN_PROGRESS_FOR = LOCK_DAY  # an InProgress lock must be completed within 24 hours


@dataclass(slots=True)
class VaultLock:
    """A vault's lock policy and where it stands."""

    policy: str
    lock_id: str
    created: float
    locked: bool = False

    @property
    def state(self) -> str:
        """``InProgress`` or ``Locked``, as GetVaultLock says."""
        return "Locked" if self.locked else "InProgress"


def current(state: EmulatorState, vault: Vault) -> VaultLock | None:
    """The vault's lock (an InProgress one left uncompleted for 24 hours is dropped)."""
    lock = vault.lock
    if lock is not None and not lock.locked and state.clock.now() > lock.created + IN_PROGRESS_FOR:
        vault.lock = None
    return vault.lock


def check_delete(state: EmulatorState, vault: Vault, archive: Archive) -> None:
    """Raise AccessDeniedException when the vault's lock policy denies deleting ``archive``."""
    lock = current(state, vault)
    if lock is None:
        return
    age_days = (state.clock.now() - archive.created) / LOCK_DAY
    for statement in _statements(lock.policy):
        if _denies_delete(statement, age_days):
            raise GlacierError(
                "AccessDeniedException",
                f"DeleteArchive of {archive.archive_id} is denied by the vault lock policy of "
                f"{vault.name} (archive age {age_days:.1f} days)",
                status=403,
            )


def _statements(policy: str) -> list[dict[str, Any]]:
    doc = json.loads(policy)
    statements = doc.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _denies_delete(statement: dict[str, Any], age_days: float) -> bool:
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    if statement.get("Effect") != "Deny" or not {"glacier:DeleteArchive", "glacier:*", "*"} & set(
        actions
    ):
        return False
    condition = statement.get("Condition")
    if not condition:
        return True
    below = condition.get("NumericLessThan", {}).get("glacier:ArchiveAgeInDays")
    up_to = condition.get("NumericLessThanEquals", {}).get("glacier:ArchiveAgeInDays")
    return (below is not None and age_days < float(below)) or (
        up_to is not None and age_days <= float(up_to)
    )


def _vault(request: web.Request) -> tuple[EmulatorState, Vault]:
    state = state_of(request)
    state.check_account(request.match_info["account"])
    return state, state.vault(request.match_info["vault"])


async def initiate_vault_lock(request: web.Request) -> web.Response:
    """InitiateVaultLock: attach the policy (InProgress); 201 with ``x-amz-lock-id``."""
    state, vault = _vault(request)
    body = await request.json()
    policy = body.get("Policy") if isinstance(body, dict) else None
    if not isinstance(policy, str):
        raise invalid_parameter("Policy is required")
    try:
        _statements(policy)
    except (ValueError, AttributeError):
        raise invalid_parameter("Policy is not a valid JSON policy document") from None
    lock = current(state, vault)
    if lock is not None:
        raise GlacierError("InvalidParameterValueException", f"vault lock is {lock.state}")
    vault.lock = VaultLock(policy, new_long_id(), state.clock.now())
    return no_content(201, {"x-amz-lock-id": vault.lock.lock_id})


async def complete_vault_lock(request: web.Request) -> web.Response:
    """CompleteVaultLock: the lock id of the InProgress lock makes it Locked for good."""
    state, vault = _vault(request)
    lock = current(state, vault)
    if lock is None or lock.lock_id != request.match_info["lock"]:
        raise invalid_parameter("The lock ID is not valid for this vault")
    lock.locked = True
    return no_content(204)


async def abort_vault_lock(request: web.Request) -> web.Response:
    """AbortVaultLock: remove an InProgress lock; a Locked one stays."""
    state, vault = _vault(request)
    lock = current(state, vault)
    if lock is not None and lock.locked:
        raise GlacierError("AccessDeniedException", "the vault lock is Locked", status=403)
    vault.lock = None
    return no_content(204)


async def get_vault_lock(request: web.Request) -> web.Response:
    """GetVaultLock: the policy and its state; 404 when the vault has none."""
    state, vault = _vault(request)
    lock = current(state, vault)
    if lock is None:
        raise not_found(f"No vault lock policy found for vault {vault.name}")
    return json_response(
        {
            "Policy": lock.policy,
            "State": lock.state,
            "CreationDate": iso8601(lock.created),
            "ExpirationDate": None if lock.locked else iso8601(lock.created + IN_PROGRESS_FOR),
        }
    )

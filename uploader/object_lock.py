"""S3 Object Lock: how long each object we create stays undeletable, in one place.

``[store] object_lock = "governance" | "compliance"`` and ``lock_for = "auto" | DURATION`` make
a :class:`LockPolicy`. :func:`object_lock_for` turns it into the retention of one object created
at ``now``: an archive, and its metadata object, which gets the same retention as its archive
(call it with the archive's storage class and the same ``now``). The S3 store sends it as the
object-lock headers of the request that creates the object (CreateMultipartUpload, PutObject),
so no object of ours ever exists unlocked.

``auto`` locks for the storage class's minimum storage duration (DEEP_ARCHIVE 180 days, GLACIER
90 days, ...): an archive is locked exactly as long as deleting it would cost an early-deletion
fee, which is also how long ``[retention] min_age = "auto"`` keeps it.

A Glacier vault is made immutable another way: a Vault Lock policy that denies DeleteArchive
to archives younger than N days (:func:`vault_lock_days` reads N). Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from localbackup.configkit import DAY
from uploader.archive import MIN_STORAGE_DAYS


class LockMode(StrEnum):
    """S3's two retention modes: ``governance`` can be lifted by a principal holding
    ``s3:BypassGovernanceRetention``; ``compliance`` by nobody, the root account included."""

    GOVERNANCE = "governance"
    COMPLIANCE = "compliance"


@dataclass(frozen=True, slots=True)
class LockPolicy:
    """``[store] object_lock`` and ``lock_for`` (None: "auto", by storage class)."""

    mode: LockMode
    lock_for: float | None = None  # seconds


@dataclass(frozen=True, slots=True)
class ObjectLock:
    """The retention of one object: its mode and the instant it may be deleted from."""

    mode: LockMode
    retain_until: datetime

    def request_params(self) -> dict[str, object]:
        """The object-lock parameters of S3's CreateMultipartUpload / PutObject."""
        return {
            "ObjectLockMode": self.mode.value.upper(),
            "ObjectLockRetainUntilDate": self.retain_until,
        }

    def describe(self) -> str:
        """``governance until 2027-01-01 00:00 UTC``."""
        return f"{self.mode.value} until {self.retain_until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def auto_lock_days(storage_class: str) -> int:
    """What ``lock_for = "auto"`` means for ``storage_class``: its minimum storage duration in
    days (0 for a class without one: ``STANDARD``)."""
    return MIN_STORAGE_DAYS.get(storage_class, 0)


def lock_seconds(policy: LockPolicy, storage_class: str) -> float:
    """How long ``policy`` locks an object of ``storage_class``, in seconds."""
    if policy.lock_for is not None:
        return policy.lock_for
    return auto_lock_days(storage_class) * DAY


def object_lock_for(policy: LockPolicy, storage_class: str, now: datetime) -> ObjectLock:
    """The retention of an object created at ``now`` for an archive of ``storage_class``.

    The same for an archive and its metadata object (pass the archive's class): both stay
    exactly as long. ``retain_until`` is rounded up to a whole second (S3 keeps seconds)."""
    until = now.astimezone(UTC) + timedelta(seconds=lock_seconds(policy, storage_class))
    whole = datetime.fromtimestamp(math.ceil(until.timestamp()), UTC)
    return ObjectLock(policy.mode, whole)


def locked_at(retain_until: datetime | None, now: datetime) -> bool:
    """Whether an object retained until ``retain_until`` cannot be deleted at ``now``."""
    return retain_until is not None and retain_until > now


_DELETE_ACTIONS = frozenset({"glacier:DeleteArchive", "glacier:*", "*"})
_AGE = "glacier:ArchiveAgeInDays"


def vault_lock_days(policy: str) -> float | None:
    """The archive age in days below which a Vault Lock policy denies DeleteArchive: the
    ``Deny`` statements AWS documents for immutable archives (``NumericLessThan`` /
    ``NumericLessThanEquals`` on ``glacier:ArchiveAgeInDays``); ``inf`` for a statement that
    denies every delete; None when no statement denies deletes (or the text is not a policy)."""
    try:
        doc = json.loads(policy)
        statements = doc.get("Statement", [])
    except (ValueError, AttributeError):
        return None
    found: float | None = None
    for st in statements if isinstance(statements, list) else [statements]:
        if not isinstance(st, dict) or st.get("Effect") != "Deny":
            continue
        actions = st.get("Action", [])
        if not _DELETE_ACTIONS & set([actions] if isinstance(actions, str) else actions):
            continue
        days = _age_limit(st.get("Condition"))
        found = days if found is None else max(found, days)
    return found


def _age_limit(condition: object) -> float:
    if not condition or not isinstance(condition, dict):
        return math.inf
    limits = [
        float(condition[op][_AGE])
        for op in ("NumericLessThan", "NumericLessThanEquals")
        if isinstance(condition.get(op), dict) and _AGE in condition[op]
    ]
    return max(limits) if limits else math.inf

"""``init`` and ``status`` check that a bucket can do what ``[store] object_lock`` asks.

One GetBucketVersioning and one GetObjectLockConfiguration request, made only when
``object_lock`` is set: without Object Lock on the bucket every upload would be refused (the S3
store never uploads an archive unlocked), so the user hears it before that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from uploader.config import S3StoreConfig, StoreConfig
from uploader.object_lock import auto_lock_days


@dataclass(frozen=True, slots=True)
class LockCheck:
    """What the bucket said about Object Lock, for the configured policy."""

    mode: str
    lock_days: float
    auto: bool
    bucket_enabled: bool | None  # None: the bucket could not be asked
    problem: str | None  # what is wrong and how to fix it; None when all is well

    def as_json(self) -> dict[str, Any]:
        """The ``status --json`` form."""
        return {
            "mode": self.mode,
            "lock_for_days": round(self.lock_days, 3),
            "lock_for": "auto" if self.auto else "configured",
            "bucket_enabled": self.bucket_enabled,
            "problem": self.problem,
        }

    def lines(self) -> list[str]:
        """What ``status`` and ``init`` print."""
        how = "auto: the storage class's minimum storage duration" if self.auto else "lock_for"
        days = f"{self.lock_days:g} {'day' if self.lock_days == 1 else 'days'}"
        head = f"object lock: {self.mode}, {days} per archive ({how})"
        if self.problem is None:
            return [f"{head}; the bucket has Object Lock enabled"]
        return [head, f"WARNING: {self.problem}"]


def check_object_lock(store: StoreConfig) -> LockCheck | None:
    """Ask the bucket (None when ``object_lock`` is not set)."""
    if not isinstance(store, S3StoreConfig) or store.object_lock is None:
        return None
    import asyncio  # here: status without Object Lock never loads it

    return asyncio.run(_check(store))


async def _check(cfg: S3StoreConfig) -> LockCheck:
    from uploader.stores import ObjectLocking, StoreError, open_store

    policy = cfg.object_lock
    assert policy is not None
    days = (
        policy.lock_for / 86400
        if policy.lock_for is not None
        else auto_lock_days(cfg.storage_class)
    )
    fields: dict[str, Any] = {
        "mode": policy.mode.value,
        "lock_days": days,
        "auto": policy.lock_for is None,
    }
    try:
        async with open_store(cfg) as store:
            assert isinstance(store, ObjectLocking)
            state = await store.bucket_lock()
    except StoreError as exc:
        return LockCheck(**fields, bucket_enabled=None, problem=f"could not ask the bucket: {exc}")
    if state.enabled:
        return LockCheck(**fields, bucket_enabled=True, problem=None)
    return LockCheck(
        **fields,
        bucket_enabled=False,
        problem=(
            f"bucket {cfg.bucket} does not have Object Lock enabled, so every upload will be "
            "refused: enable it (aws s3api put-object-lock-configuration --bucket "
            f"{cfg.bucket} --object-lock-configuration ObjectLockEnabled=Enabled; it needs "
            "versioning) or remove [store] object_lock (docs/immutability.md)"
        ),
    )

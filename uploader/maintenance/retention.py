"""The ``[retention]`` section: how large the store may grow and what must be kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast, get_args

from localbackup.configkit import Section

# What an upload does when the store would go over max_store_size and pruning cannot make room:
# go ahead anyway, or wait until pruning makes room.
OverBudget = Literal["upload", "wait"]


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """How large the store may grow and what must be kept (see docs/retention.md)."""

    max_store_size: int | None = None  # bytes; None: no budget, nothing is pruned for size
    min_age: float | None = None  # seconds; None: "auto", by storage class (90d / 180d)
    keep_last: int = 2
    over_budget: OverBudget = "upload"
    # Calendar rules (restic/borg style), 0 = off: keep the newest archive of each of the last N
    # days / ISO weeks / months / years. When any is on, archives no rule keeps are pruned.
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0


def retention_config(section: Section) -> RetentionConfig:
    """Read ``[retention]``."""
    min_age: float | None = None
    if section.peek("min_age") == "auto":
        section.string("min_age", "auto")
    else:
        min_age = section.duration("min_age", None, zero="valid")
    cfg = RetentionConfig(
        max_store_size=section.size("max_store_size", None),
        min_age=min_age,
        keep_last=section.integer("keep_last", 2, minimum=1),
        over_budget=cast(OverBudget, section.choice("over_budget", "upload", get_args(OverBudget))),
        keep_daily=section.integer("keep_daily", 0, minimum=0),
        keep_weekly=section.integer("keep_weekly", 0, minimum=0),
        keep_monthly=section.integer("keep_monthly", 0, minimum=0),
        keep_yearly=section.integer("keep_yearly", 0, minimum=0),
    )
    section.finish()
    return cfg

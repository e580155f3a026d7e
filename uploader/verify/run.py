"""The ``verify`` use case: which archives, checked how, with what verdict.

:func:`select_archives` is the pure choice (named cycles, or all; ``--sample N`` picks at
random; a resumed ``--read-data`` run takes the archives the interrupted run had picked, kept
in :class:`ReadDataPlan`). :func:`verify_archives` runs the checks (:mod:`.in_store` without a
retrieval, :mod:`.read_data` reading the data) and returns one :class:`Verdict` per archive;
recording them is the caller's (:func:`verdicts_to_record`). Nothing in the store is ever
changed or deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from localbackup.atomic import atomic_write_bytes
from uploader import catalogue as cm
from uploader.catalogue import ArchiveRecord, Catalogue, Verification, VerifyMode
from uploader.crypto import Identity
from uploader.recovery.fetch import Unlock
from uploader.restore.cold import Sleep
from uploader.restore.request import RetrievalOptions
from uploader.restore.ui import RestoreUI
from uploader.stores.base import Store
from uploader.verify.checks import Check, Outcome
from uploader.verify.in_store import verify_in_store
from uploader.verify.read_data import read_archive

__all__ = [
    "NoSuchCycle",
    "ReadDataPlan",
    "Verdict",
    "select_archives",
    "verdicts_to_record",
    "verify_archives",
]


class NoSuchCycle(ValueError):
    """A cycle named on the command line has no archive of this host in the store."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One archive's result."""

    key: str
    cycle_id: str
    mode: VerifyMode
    outcome: Outcome | None  # None: waiting for a retrieval (read-data)
    checked: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    note: str = ""  # why unverified, or when the retrieval is expected

    def to_json(self) -> dict[str, object]:
        """The ``verify --json`` form."""
        return {
            "key": self.key,
            "cycle_id": self.cycle_id,
            "mode": str(self.mode),
            "outcome": "waiting" if self.outcome is None else str(self.outcome),
            "checked": list(self.checked),
            "problems": list(self.problems),
            "note": self.note,
        }


def select_archives(
    archives: Sequence[ArchiveRecord],
    cycles: Sequence[str],
    *,
    sample: int | None = None,
    rng: random.Random | None = None,
    keys: Sequence[str] | None = None,
) -> list[ArchiveRecord]:
    """The archives to verify, oldest first: ``keys`` (a resumed run's), else the named
    ``cycles`` (:class:`NoSuchCycle` for one without an archive), else all; then ``sample``
    of them at random."""
    if keys is not None:
        wanted = set(keys)
        return [a for a in archives if a.key in wanted]
    chosen = list(archives)
    if cycles:
        by_cycle = {a.cycle_id: a for a in archives}
        missing = [c for c in cycles if c not in by_cycle]
        if missing:
            known = ", ".join(sorted(by_cycle)) or "none"
            raise NoSuchCycle(f"no archive of cycle {', '.join(missing)} (archives: {known})")
        chosen = [by_cycle[c] for c in dict.fromkeys(cycles)]
    if sample is not None and sample < len(chosen):
        chosen = (rng or random.SystemRandom()).sample(chosen, sample)
    return sorted(chosen, key=lambda a: a.cycle_id)


@dataclass(frozen=True, slots=True)
class ReadDataPlan:
    """The archives a ``--read-data`` run picked, kept until it finishes (``--resume``)."""

    path: Path

    def load(self) -> list[str] | None:
        """The keys of the interrupted run, or None if there is none."""
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return None
        keys = data.get("keys") if isinstance(data, dict) else None
        return [str(k) for k in keys] if isinstance(keys, list) else None

    def save(self, keys: Sequence[str], started: datetime) -> None:
        """Remember the run's archives (atomically, 0600)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = {"keys": list(keys), "started": started.isoformat()}
        atomic_write_bytes(self.path, json.dumps(data).encode(), mode=0o600)

    def finish(self) -> None:
        """The run is over: nothing to resume."""
        self.path.unlink(missing_ok=True)


async def verify_archives(
    store: Store,
    catalogue: Catalogue,
    archives: Sequence[ArchiveRecord],
    *,
    read_data: bool,
    unlock: Unlock | None,
    ui: RestoreUI,
    options: RetrievalOptions | None = None,
    assume_yes: bool = False,
    work: Path | None = None,
    sleep: Sleep = asyncio.sleep,
) -> list[Verdict]:
    """Verify ``archives`` (see the module docstring); ``work`` holds ``--read-data``
    downloads (default: ``verify/`` in the state directory)."""
    checks = await verify_in_store(store, catalogue, list(archives), unlock=unlock)
    if not read_data:
        return [_verdict(a, VerifyMode.STORE, checks[a.key]) for a in archives]
    identities: list[Identity] | None = list(unlock.identities) if unlock else None
    scratch = work or catalogue.path.parent / "verify"
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    out = []
    for a in archives:
        ui.say(f"reading {a.key} ({a.size} bytes)", now=True)
        cycle = cm.stored_cycle(catalogue, a.host, a.cycle_id)
        sha = None if cycle is None else hashlib.sha256(cycle.render()).hexdigest()
        check = await read_archive(
            store,
            catalogue,
            a,
            identities=identities if a.key.endswith(".age") else None,
            cycle_sha256=sha,
            ui=ui,
            options=options or RetrievalOptions(),
            assume_yes=assume_yes,
            work=scratch,
            sleep=sleep,
        )
        if check is None:
            out.append(Verdict(a.key, a.cycle_id, VerifyMode.DATA, None, note="retrieval"))
            continue
        in_store = checks[a.key]
        if in_store.unverified and not check.problems:
            # the data itself was read and checked: that the store's report could not be
            # compared yet (a vault without an inventory) is only a note
            in_store.checked.append(f"not compared with the store: {in_store.unverified}")
            in_store.unverified = None
        check.add(in_store)
        out.append(_verdict(a, VerifyMode.DATA, check))
    return out


def _verdict(a: ArchiveRecord, mode: VerifyMode, check: Check) -> Verdict:
    return Verdict(
        a.key,
        a.cycle_id,
        mode,
        check.outcome,
        tuple(check.checked),
        tuple(check.problems),
        check.unverified or "",
    )


def verdicts_to_record(store: str, verdicts: Sequence[Verdict], at: datetime) -> list[Verification]:
    """The results the catalogue keeps: those that passed or failed (not the unverified or
    waiting ones)."""
    return [
        Verification(
            store,
            v.key,
            v.cycle_id,
            at,
            v.mode,
            v.outcome is Outcome.OK,
            "; ".join(v.problems) or "; ".join(v.checked),
        )
        for v in verdicts
        if v.outcome in (Outcome.OK, Outcome.FAILED)
    ]

"""``verify [CYCLE...] [--read-data [--sample N]] [--json]``: are the archives intact?

By default nothing is retrieved: each archive of this host (or of the named cycles) is compared
with what its store reports, and so is its metadata object (:mod:`uploader.verify`).
``--read-data`` reads the archives whole (retrieving them first from cold storage, with the
usual quote, consent, ``--tier``, ``--wait`` and ``--resume``), authenticates every age chunk
and checks every file against ``cycle.json``; ``--sample N`` does it for N archives picked at
random — a restore drill under a budget. Results go into the catalogue (``status`` shows the
last run); exit 1 names each archive that failed and why, and ``[notify]`` is sent a
``verify_failed`` event. Nothing is deleted or rewritten.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from localbackup.configkit import format_size
from uploader.catalogue import ArchiveRecord, Catalogue, record_verifications
from uploader.crypto import AgeError
from uploader.recovery import Unlock, unlock_for
from uploader.restore import RestoreDeclined, RestoreError
from uploader.stores import Store, StoreError, StoreNotAvailable, open_store
from uploader.verify import (
    NoSuchCycle,
    Outcome,
    ReadDataPlan,
    Verdict,
    select_archives,
    verdicts_to_record,
    verify_archives,
)
from watcher.commands.parsers import add_command, add_identity_option
from watcher.commands.restore_cold import add_cold_arguments, retrieval_options
from watcher.commands.terminal import TerminalUI, declined
from watcher.exitcodes import FAILURE, OK, USAGE, WARNINGS
from watcher.hosts import add_host_option
from watcher.notify.events import NoticeEvent
from watcher.outcomes import Outcomes

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig


def add_parser(sub: Subparsers) -> None:
    """Register ``verify``."""
    p = add_command(
        sub,
        "verify",
        summary="check archives against the store's own checksums, without a retrieval",
        description="Compare every archive of this host (or of the named cycles) with what "
        "the store reports about it: size, ETag and version, each part's SHA-256 (S3, a local "
        "store) or the tree hash in the latest vault inventory; each metadata object is "
        "checked too, and decrypted where a key is at hand. Nothing is retrieved, deleted or "
        "rewritten. --read-data downloads the archives (retrieving them first from cold "
        "storage, after a quote) and authenticates every age chunk and file. Exit 1 names "
        "each archive that failed.",
        examples=[
            "glacier-backup verify",
            "glacier-backup verify 20261126T040000Z --json",
            "glacier-backup verify --read-data --sample 1",
            "glacier-backup verify --read-data --resume",
        ],
    )
    p.add_argument("cycles", nargs="*", metavar="CYCLE", help="cycle ids (default: every one)")
    p.add_argument(
        "--read-data",
        action="store_true",
        help="read the archives whole (retrieving them first from cold storage): authenticate "
        "every age chunk and check every file against cycle.json; nothing is extracted",
    )
    p.add_argument(
        "--sample",
        type=_positive,
        metavar="N",
        help="--read-data: N archives picked at random (a restore drill under a budget)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_identity_option(p)
    p.add_argument(
        "--yes", action="store_true", help="--read-data: request the retrievals it needs"
    )
    add_host_option(p)
    add_cold_arguments(p)
    p.set_defaults(run=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return value


class _Refused(Exception):
    """The command line or the configuration cannot work: exit 2 with the message."""


def _key(args: argparse.Namespace, config: AppConfig) -> Unlock | None:
    """The key to decrypt with (``--read-data`` needs one for encrypted archives)."""
    if args.sample is not None and not args.read_data:
        raise _Refused("--sample goes with --read-data")
    try:
        unlock = unlock_for(config.encryption, args.identity)
    except (AgeError, OSError) as exc:
        if args.read_data or args.identity:
            raise _Refused(str(exc)) from None
        # the identity is often kept offline: metadata objects are then not decrypted
        print(f"glacier-backup: metadata objects are not decrypted: {exc}", file=sys.stderr)
        unlock = None
    if args.read_data and unlock is None and config.encryption.enabled:
        raise _Refused(
            "verify --read-data decrypts the archives: give the identity (--identity FILE, or "
            "[encryption] identity_file)"
        )
    return unlock


def run(args: argparse.Namespace, config: AppConfig) -> int:
    """Verify, record the results, print them; 1 if any archive failed (and notified)."""
    outcomes = Outcomes(config)
    try:
        return _checked(args, config, outcomes)
    except _Refused as exc:
        return _usage(str(exc))
    except StoreNotAvailable as exc:
        return _usage(f"configuration error: store: {exc}")
    except NoSuchCycle as exc:
        return _usage(str(exc))
    except RestoreDeclined as exc:
        return declined(exc)
    except (StoreError, RestoreError) as exc:
        print(f"glacier-backup: verify failed: {exc}", file=sys.stderr)
        outcomes.emit(outcomes.notice(NoticeEvent.VERIFY_FAILED, error=f"verify failed: {exc}"))
        return FAILURE
    finally:
        outcomes.close()


def _checked(args: argparse.Namespace, config: AppConfig, outcomes: Outcomes) -> int:
    unlock = _key(args, config)
    with Catalogue.in_state_dir(config.state_dir) as catalogue:
        done = _verify(args, config, catalogue, unlock)
        if done is None:
            return OK
        verdicts, sizes = done
        _notify_failures(outcomes, verdicts, catalogue)
    return _report(verdicts, sizes, as_json=args.json)


def _notify_failures(outcomes: Outcomes, verdicts: list[Verdict], catalogue: Catalogue) -> None:
    """One ``verify_failed`` notice naming every archive that failed and why (none if none)."""
    failed = [v for v in verdicts if v.outcome is Outcome.FAILED]
    if not failed:
        return
    notice = outcomes.notice(
        NoticeEvent.VERIFY_FAILED,
        cycle=failed[0].cycle_id if len(failed) == 1 else None,
        error=f"{len(failed)} of {len(verdicts)} archive(s) failed verification",
        message="; ".join(f"{v.key}: {', '.join(v.problems)}" for v in failed),
        details={v.key: "; ".join(v.problems) for v in failed},
    )
    outcomes.emit(notice, catalogue)


def _verify(
    args: argparse.Namespace, config: AppConfig, catalogue: Catalogue, unlock: Unlock | None
) -> tuple[list[Verdict], dict[str, int]] | None:
    """Verify the chosen archives and record the results; with the archives' sizes (None:
    this host has no archives)."""
    store = open_store(config.store)
    host = config.backup.host
    archives = [a for a in catalogue.archives(store=store.name) if a.host == host]
    if not archives:
        print(
            f"no archives of host {host} in {store.name} to verify (on a new machine: "
            "'glacier-backup inventory' first)"
        )
        return None
    plan = ReadDataPlan(config.state_dir / "verify" / "plan.json")
    keys = plan.load() if args.read_data and args.resume else None
    if args.read_data and args.resume and keys is None:
        print("no interrupted 'verify --read-data' to resume: verifying as asked")
    chosen = select_archives(archives, args.cycles, sample=args.sample, keys=keys)
    now = datetime.now(UTC)
    if args.read_data:
        plan.save([a.key for a in chosen], now)
    verdicts = asyncio.run(_run(store, catalogue, chosen, args, unlock))
    record_verifications(catalogue, verdicts_to_record(store.name, verdicts, now))
    if args.read_data and all(v.outcome is not None for v in verdicts):
        plan.finish()
    return verdicts, {a.key: a.size for a in chosen}


async def _run(
    store: Store,
    catalogue: Catalogue,
    chosen: list[ArchiveRecord],
    args: argparse.Namespace,
    unlock: Unlock | None,
) -> list[Verdict]:
    async with store as s:
        return await verify_archives(
            s,
            catalogue,
            chosen,
            read_data=args.read_data,
            unlock=unlock,
            ui=TerminalUI(out=sys.stderr if args.json else None),
            options=retrieval_options(args),
            assume_yes=args.yes,
        )


def _report(verdicts: list[Verdict], sizes: dict[str, int], *, as_json: bool) -> int:
    failed = [v for v in verdicts if v.outcome is Outcome.FAILED]
    pending = [v for v in verdicts if v.outcome in (None, Outcome.UNVERIFIED)]
    if as_json:
        print(json.dumps({"ok": not failed, "archives": [v.to_json() for v in verdicts]}, indent=2))
    else:
        for v in verdicts:
            size = format_size(sizes.get(v.key, 0))
            if v.outcome is Outcome.OK:
                print(f"ok      {v.key} ({size}): {', '.join(v.checked)}")
            elif v.outcome is Outcome.FAILED:
                print(f"FAILED  {v.key} ({size}): {'; '.join(v.problems)}")
            elif v.outcome is Outcome.UNVERIFIED:
                print(f"not verified  {v.key}: {v.note}")
            else:
                print(f"waiting {v.key}: its retrieval is not ready (--resume later, or --wait)")
        good = sum(v.outcome is Outcome.OK for v in verdicts)
        print(f"{good} of {len(verdicts)} archives verified, {len(failed)} failed")
    for v in failed:
        print(
            f"glacier-backup: {v.key} failed verification: {'; '.join(v.problems)}", file=sys.stderr
        )
    if failed:
        return FAILURE
    return WARNINGS if pending else OK


def _usage(message: str) -> int:
    print(f"glacier-backup: {message}", file=sys.stderr)
    return USAGE

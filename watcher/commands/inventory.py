"""``inventory [--request] [--wait] [--rebuild]``: reconcile the catalogue with the store.

S3 and local stores are listed at once. A Glacier vault only knows its inventory jobs: this
advances them (polls, fetches a finished job's output); ``--request`` asks for a new inventory
(it takes hours), ``--wait`` polls until the job has finished and reconciles.

Recovery: on a lost host's new machine (an empty state directory) reconciliation adopts the
host's archives and metadata objects; this command then reads every metadata object it has not
read yet with the identity (``--identity`` or ``[encryption] identity_file``), so that
``files``, ``status`` and ``restore --path`` answer as they did on the lost host
(:mod:`uploader.recovery`). ``--rebuild`` asks for a fresh listing or inventory and reads them
all again. In a vault each metadata object needs a (small) retrieval job first: its cost is
said, and asked (``--yes``), before it is requested.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from localbackup.configkit import format_size
from uploader.catalogue import Catalogue
from uploader.crypto import AgeError
from uploader.maintenance import MaintenanceReport, ReconcileKind
from uploader.recovery import RecoveryReport, WrongKey, recover_metadata, unlock_for
from uploader.restore import RestoreDeclined, RetrievalOptions
from uploader.stores import StoreNotAvailable, open_store
from watcher import output
from watcher.commands.parsers import add_command, add_identity_option
from watcher.commands.terminal import TerminalUI, declined
from watcher.exitcodes import FAILURE, OK, USAGE, WARNINGS
from watcher.hints import fix_for
from watcher.hosts import add_host_option
from watcher.maintenance_loop import maintenance_pass
from watcher.outcomes import Outcomes

if TYPE_CHECKING:
    from watcher.commands.parsers import Subparsers
    from watcher.config import AppConfig

LABELS: dict[ReconcileKind, str] = {
    "adopt": "adopted (ours, rebuilt into the catalogue)",
    "foreign": "foreign (left alone)",
    "missing": "MISSING (in the catalogue, absent from the store)",
    "mismatch": "MISMATCH (size or checksum differs)",
    "deletion_confirmed": "deletion confirmed",
    "deletion_failed": "still listed after its deletion",
    "not_judged": "too recent for this listing (not judged)",
    "metadata_adopt": "metadata objects adopted (read next, with the identity)",
    "metadata_missing": "metadata objects MISSING (sent again)",
    "metadata_mismatch": "metadata objects MISMATCH (size differs)",
    "metadata_pruned": "metadata objects of pruned archives (deleted)",
    "metadata_orphan": "metadata objects without their archive (left alone)",
}


def add_parser(sub: Subparsers) -> None:
    """Register ``inventory``."""
    p = add_command(
        sub,
        "inventory",
        summary="reconcile the catalogue with the store; recover a lost host's catalogue",
        description="Compare the catalogue with what the store holds: archives confirmed, "
        "flagged MISSING or MISMATCH, foreign archives noted, deletions confirmed. S3 and the "
        "local store are listed at once; a Glacier vault needs an inventory job (hours): "
        "--request asks for one, --wait waits for it. Then each unread metadata object of "
        "this host is read: on a new machine (an empty state directory, or --rebuild) this "
        "rebuilds the catalogue from the store alone, so that files, cycles, status and "
        "restore --path answer as on the lost host (docs/recovery.md).",
        examples=[
            "glacier-backup inventory",
            "glacier-backup inventory --request --wait",
            "glacier-backup inventory --rebuild --identity ~/identity.txt",
            "glacier-backup inventory --host oldbox --yes",
        ],
    )
    p.add_argument(
        "--request", action="store_true", help="Glacier: ask for a new inventory (takes hours)"
    )
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="rebuild the catalogue from the store: a fresh listing (Glacier: a new inventory "
        "job), then read every metadata object of this host again",
    )
    add_identity_option(p, " to read metadata objects with")
    p.add_argument(
        "--yes", action="store_true", help="Glacier: request the metadata retrieval jobs"
    )
    p.add_argument(
        "--tier",
        choices=("Expedited", "Standard", "Bulk"),
        help="Glacier: tier of the metadata retrieval jobs (default Standard)",
    )
    add_host_option(p)
    p.add_argument(
        "--wait", action="store_true", help="Glacier: poll until the job finishes, then reconcile"
    )
    p.add_argument(
        "--poll-interval",
        "--poll-every",
        dest="poll_every",
        type=_seconds,
        metavar="SECONDS",
        help="Glacier: check a job in progress if its last check is this old (default "
        f"{POLL_EVERY:.0f}); with --wait, the seconds between checks",
    )
    p.set_defaults(run=run)


POLL_EVERY = 900.0  # the state machine's own poll interval (InventorySettings.poll_every)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def run(args: argparse.Namespace, config: AppConfig) -> int:
    """Reconcile (advancing a vault's inventory jobs), then read unread metadata objects."""
    outcomes = Outcomes(config)
    try:
        with Catalogue.in_state_dir(config.state_dir) as catalogue:
            report = asyncio.run(_run(args, config, catalogue, outcomes))
            code = print_report(report)
            unreachable = could_not_reach(report, config)
            if unreachable is not None:  # nothing to recover from either
                return unreachable
            recovered = asyncio.run(_recover(args, config, catalogue))
    except (AgeError, OSError) as exc:  # the identity file (read only when it is needed)
        print(f"glacier-backup: {exc}", file=sys.stderr)
        return USAGE
    except StoreNotAvailable as exc:
        print(f"glacier-backup: configuration error: store: {exc}", file=sys.stderr)
        return USAGE
    except WrongKey as exc:
        print(f"glacier-backup: {exc}", file=sys.stderr)
        return FAILURE
    except RestoreDeclined as exc:
        return declined(exc)
    finally:
        outcomes.close()
    return max(code, print_recovery(recovered, config))


async def _recover(
    args: argparse.Namespace, config: AppConfig, catalogue: Catalogue
) -> RecoveryReport:
    options = RetrievalOptions(
        tier=args.tier,
        wait=args.wait,
        poll_interval=args.poll_every or POLL_EVERY,
        poll_max=args.poll_every or POLL_EVERY,
    )
    async with open_store(config.store) as store:
        return await recover_metadata(
            store,
            catalogue,
            host=config.backup.host,
            unlock=lambda: unlock_for(config.encryption, args.identity),
            ui=TerminalUI(),
            retrieval=options,
            assume_yes=args.yes,
            reread=args.rebuild,
        )


def print_recovery(r: RecoveryReport, config: AppConfig) -> int:
    """Say what the recovery did and what is left; the exit code (3 while incomplete)."""
    host = config.backup.host
    if r.read:
        print(f"recovered: {len(r.read)} metadata object(s) of host {host} read into the catalogue")
    if r.requested:
        print(f"requested {r.requested} metadata retrieval job(s)")
    for w in r.waiting:
        print(f"waiting for the retrieval of {w}: run 'glacier-backup inventory' again then")
    if r.needs_key:
        print(
            f"{len(r.needs_key)} metadata object(s) of host {host} are not read yet: they need "
            "the identity (--identity FILE, or [encryption] identity_file); until then files, "
            "cycles and restore --path do not know their cycles",
            file=sys.stderr,
        )
    for d in r.damaged:
        print(f"problem: {d}", file=sys.stderr)
    return OK if r.complete else WARNINGS


def could_not_reach(report: MaintenanceReport, config: AppConfig) -> int | None:
    """FAILURE (said, with how to fix it) when the pass could not learn what the store holds:
    the command did not do its job. None otherwise."""
    if report.failure is None:
        return None
    output.error(
        str(report.failure), fix=fix_for(report.failure, config), event="maintenance.unreachable"
    )
    return FAILURE


async def _run(
    args: argparse.Namespace, config: AppConfig, catalogue: Catalogue, outcomes: Outcomes
) -> MaintenanceReport:
    # --wait polls the job at its own interval: the state machine would otherwise poll a job
    # in progress at most every 15 minutes, whatever the interval of this loop.
    every = args.poll_every or POLL_EVERY
    poll = every if args.wait or args.poll_every else None
    report = await maintenance_pass(
        config,
        catalogue,
        datetime.now(UTC),
        prune=False,
        request_inventory=args.request or args.rebuild,
        poll_every=poll,
        outcomes=outcomes,
    )
    while args.wait and report.reconciliation is None and report.jobs_in_flight:
        print(f"{report.inventory_status}; checking again in {every:g} s", flush=True)
        await asyncio.sleep(every)
        report = await maintenance_pass(
            config, catalogue, datetime.now(UTC), prune=False, poll_every=poll, outcomes=outcomes
        )
    return report


def print_report(report: MaintenanceReport) -> int:
    """Print what a pass found; returns the exit code (3 for problems, MISSING or mismatched
    archives, and deletions that did not take effect even when asked again)."""
    print(f"store {report.store}: {report.inventory_status}")
    rec = report.reconciliation
    warn = bool(report.problems)
    if rec is None:
        print("no listing or inventory to reconcile with in this pass")
    else:
        print(f"reconciled with the store's state as of {rec.as_of.isoformat(timespec='seconds')}")
        counts = rec.counts()
        print(f"  confirmed: {counts.get('confirmed', 0)}")
        if counts.get("metadata_confirmed"):
            print(f"  metadata objects confirmed: {counts['metadata_confirmed']}")
        for kind, label in LABELS.items():
            items = rec.of(kind)
            if not items:
                continue
            print(f"  {label}: {len(items)}")
            for a in items:
                size = f" ({format_size(a.listed.size)})" if a.listed else ""
                name = a.key or (a.listed.store_id if a.listed else "?")
                again = "; deleted again" if a.key in report.deleted_again else ""
                print(f"    {name}{size}: {a.detail}{again}")
        not_deleted = [a for a in rec.of("deletion_failed") if a.key not in report.deleted_again]
        bad: tuple[ReconcileKind, ...] = (
            "missing",
            "mismatch",
            "metadata_missing",
            "metadata_mismatch",
        )
        warn = warn or bool(any(rec.of(k) for k in bad) or not_deleted)
        if rec.of("missing"):
            print(
                "  MISSING archives were uploaded before this listing but are not in it: "
                "see docs/retention.md (what MISSING means and what to do)"
            )
    for key in report.metadata_sent:
        print(f"  metadata object sent: {key}")
    for p in report.problems:
        print(f"problem: {p}", file=sys.stderr)
    return WARNINGS if warn else OK

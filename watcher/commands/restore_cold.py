"""``restore`` from cold storage: request a retrieval, wait or exit, resume, download, restore.

S3 objects in GLACIER / DEEP_ARCHIVE get a ``restore_object``; archives in a Glacier vault an
archive-retrieval job. The request is recorded in the catalogue, so the command can exit while
it runs (hours) and ``restore --resume`` later checks on it, downloads and restores.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from localbackup.configkit import format_size
from localbackup.extract import ExtractOptions, ExtractStats, IntegrityError
from localbackup.staging import check_target
from uploader import catalogue as cr
from uploader.catalogue import Catalogue, RetrievalState, archive_id_of
from uploader.crypto import HeaderError, Identity, PayloadError
from uploader.restore import ArchiveRef, CorruptArchive, OnPlan, RestoreError
from uploader.restore import download as dl
from uploader.restore import retrieval as rt
from uploader.stores.base import MiB, Store

Sleep = Callable[[float], Awaitable[None]]

POLL_FIRST = 60.0  # --wait: seconds before the second check, growing by half each time ...
POLL_MAX = 1800.0  # ... up to this

# Failures meaning the downloaded bytes are bad (not the key, the target or the disk): the
# download is discarded so that --resume fetches it again.
_BAD_DOWNLOAD = (HeaderError, PayloadError, IntegrityError, CorruptArchive)


class RetrievalDeclined(RestoreError):
    """The retrieval was not confirmed (no terminal and no --yes, or the user said no)."""


def add_cold_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cold storage (S3 GLACIER / DEEP_ARCHIVE, Glacier vaults)")
    g.add_argument(
        "--tier",
        choices=("Expedited", "Standard", "Bulk"),
        help="retrieval tier (default: Bulk for DEEP_ARCHIVE, Standard otherwise)",
    )
    g.add_argument(
        "--days", type=int, default=3, help="S3: days the restored copy stays (default 3)"
    )
    g.add_argument("--wait", action="store_true", help="wait for the retrieval, then restore")
    g.add_argument(
        "--poll-interval",
        type=_seconds,
        default=POLL_FIRST,
        metavar="SECONDS",
        help=f"--wait: first interval between checks, growing by half each time "
        f"(default {POLL_FIRST:.0f})",
    )
    g.add_argument(
        "--poll-max",
        type=_seconds,
        default=POLL_MAX,
        metavar="SECONDS",
        help=f"--wait: longest interval between checks (default {POLL_MAX:.0f})",
    )
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue a recorded retrieval: say if it is still running, else download "
        "(skipping ranges already verified) and restore",
    )
    g.add_argument(
        "--parallel", type=int, default=dl.DEFAULT_PARALLEL, help="concurrent range downloads"
    )
    g.add_argument(
        "--range-size",
        type=int,
        default=dl.DEFAULT_RANGE // MiB,
        metavar="MIB",
        help="download range size in MiB (Glacier: a power of two; default 32)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


async def cold_class(store: Store, key: str) -> str | None:
    """The cold class of ``key`` (``GLACIER``, ``DEEP_ARCHIVE``, a vault), or None if readable."""
    if rt.is_vault(store):
        return rt.VAULT
    if not store.capabilities.needs_retrieval:
        return None
    info = await store.head(key)
    return info.storage_class if info.storage_class in rt.COLD_CLASSES else None


async def restore_cold(
    store: Store,
    catalogue: Catalogue,
    archive: ArchiveRef,
    storage_class: str,
    args: argparse.Namespace,
    *,
    identities: list[Identity] | None,
    at: int | datetime | None,
    to: Path,
    options: ExtractOptions,
    on_plan: OnPlan,
    sleep: Sleep = asyncio.sleep,
) -> ExtractStats | None:
    """Restore once the archive is retrieved; None (after saying so) while it is not yet.

    The target's preconditions (empty unless --force, writable) are checked first: a
    retrieval is billed and a download may take hours, neither is wasted on a bad ``--to``.
    """
    path = dl.download_path(to, archive.key)
    check_target(to, force=args.force, download_dir=path.parent)
    record = await asyncio.to_thread(cr.find_retrieval, catalogue, store.name, archive.key)
    if record is None:
        if args.resume:
            print(f"no retrieval of {archive.key} is recorded: requesting one")
        record = await _request(store, catalogue, archive, storage_class, args)
    try:
        status = await rt.status(store, record)
    except rt.RetrievalExpired as exc:
        print(f"glacier-backup: {exc}", file=sys.stderr)
        print("requesting the retrieval again")
        record = await _request(store, catalogue, archive, storage_class, args)
        status = await rt.status(store, record)
    if not status.ready and args.wait:
        first = getattr(args, "poll_interval", POLL_FIRST)
        status = await _wait(store, record, sleep, first, getattr(args, "poll_max", POLL_MAX))
    if not status.ready:
        when = rt.format_when(status.expected_ready or rt.expected_ready(record))
        print(
            f"waiting: retrieval of {archive.key} ({record.tier} tier, requested "
            f"{rt.format_when(record.requested_at)}) is not ready yet ({status.detail}); "
            f"expected around {when}.\n"
            f"run the same command with --resume then (or --wait to wait here)"
        )
        return None
    if record.state is not RetrievalState.READY:
        await asyncio.to_thread(cr.mark_ready, catalogue, record.id)
    path = dl.resume_path(to, archive.key, record.download_path)
    print(f"downloading {archive.key} ({format_size(record.size)}) into {path.parent}")
    fetched = await dl.download(
        store,
        catalogue,
        record,
        path,
        range_size=args.range_size * MiB,
        parallel=args.parallel,
        on_range=_progress,
    )
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"  {fetched} ranges downloaded and verified")
    try:
        result = await dl.restore_downloaded(
            path,
            to,
            identities=identities,
            at=at,
            force=args.force,
            options=options,
            on_plan=on_plan,
        )
    except _BAD_DOWNLOAD as exc:
        await asyncio.to_thread(dl.forget_download, catalogue, record, path)
        raise type(exc)(
            f"{exc} (the downloaded copy of {archive.key} failed this check and was discarded: "
            "run the same command with --resume to download it again)"
        ) from exc
    dl.remove_download(path)
    await asyncio.to_thread(cr.drop_retrieval, catalogue, record.id)
    return result.stats


async def _request(
    store: Store,
    catalogue: Catalogue,
    archive: ArchiveRef,
    storage_class: str,
    args: argparse.Namespace,
) -> cr.RetrievalRecord:
    archive_id = None
    if storage_class == rt.VAULT:
        archive_id = await asyncio.to_thread(archive_id_of, catalogue, store.name, archive.key)
        if not archive_id:
            raise RestoreError(
                f"the catalogue has no Glacier ArchiveId for {archive.key}: run "
                "'glacier-backup inventory' (it requests the vault inventory and records the ids "
                "once it is ready), then restore again"
            )
    tier = args.tier or rt.default_tier(storage_class)
    est = rt.estimate(storage_class, tier, archive.size)
    if storage_class != rt.VAULT:
        under_way = await rt.s3_restore_under_way(store, archive.key)
        if under_way is not None:  # nothing to ask for (nor pay): just keep track of it
            what = "a restored copy is there" if under_way == "restored" else "a restore runs"
            print(f"{archive.key}: {what} already: nothing to request")
            return await rt.request(
                store,
                catalogue,
                key=archive.key,
                archive_id=None,
                size=archive.size,
                storage_class=storage_class,
                tier=tier,
                days=args.days,
                ask=False,
            )
    where = "a Glacier vault" if storage_class == rt.VAULT else f"S3 {storage_class}"
    print(
        f"{archive.key} ({format_size(archive.size)}) is in {where}: it must be retrieved first.\n"
        f"  tier {tier}: typically ready {est.wait_text} "
        f"(around {rt.format_when(datetime.now(UTC) + est.wait)})\n"
        f"  estimated retrieval cost: ${est.cost_usd:.4f} (list price estimate, without "
        "request fees and data transfer)"
    )
    _confirm(args)
    return await rt.request(
        store,
        catalogue,
        key=archive.key,
        archive_id=archive_id,
        size=archive.size,
        storage_class=storage_class,
        tier=tier,
        days=args.days,
    )


def _confirm(args: argparse.Namespace) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise RetrievalDeclined("a retrieval is billed: add --yes to request it")
    if input("request this retrieval? [y/N] ").strip().lower() not in ("y", "yes"):
        raise RetrievalDeclined("retrieval not requested")


async def _wait(
    store: Store,
    record: cr.RetrievalRecord,
    sleep: Sleep,
    first: float = POLL_FIRST,
    maximum: float = POLL_MAX,
) -> rt.Status:
    """Poll with backoff until ready, with a status line: ``first`` seconds (1 min by default)
    between the first checks, half as long again each time, up to ``maximum`` (30 min; never
    below ``first``)."""
    delay = first
    maximum = max(maximum, first)
    waited = 0
    while True:
        status = await rt.status(store, record)
        if status.ready:
            if waited:
                print(f"\n  ready after {waited} check{'s' if waited > 1 else ''}")
            return status
        when = rt.format_when(status.expected_ready or rt.expected_ready(record))
        shown = f"{delay:.0f}" if delay >= 10 else f"{delay:.2g}"
        print(f"\r  {status.detail}; expected around {when}; next check in {shown}s", end="")
        sys.stdout.flush()
        await sleep(delay)
        waited += 1
        delay = min(delay * 1.5, maximum)


def _progress(done: int, total: int, left: int) -> None:
    if sys.stderr.isatty():
        line = f"\r  {format_size(done)} of {format_size(total)}, {left} ranges left"
        print(line, end="", file=sys.stderr, flush=True)

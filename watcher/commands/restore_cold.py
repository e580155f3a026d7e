"""``restore``'s cold-storage options: the argument group and the :class:`RetrievalOptions`.

S3 objects in GLACIER / DEEP_ARCHIVE and archives in a Glacier vault must be retrieved before
they can be read; :mod:`uploader.restore` does it (request, wait or resume, download, restore).
"""

from __future__ import annotations

import argparse

from uploader.restore import (
    DEFAULT_DAYS,
    DEFAULT_PARALLEL,
    DEFAULT_RANGE,
    POLL_FIRST,
    POLL_MAX,
    TIER_CHOICES,
    RetrievalOptions,
)
from uploader.stores import MiB


def add_cold_arguments(p: argparse.ArgumentParser) -> None:
    """The cold-storage argument group of ``restore``."""
    g = p.add_argument_group("cold storage (S3 GLACIER / DEEP_ARCHIVE, Glacier vaults)")
    g.add_argument(
        "--tier",
        choices=TIER_CHOICES,
        help="retrieval tier (default: Bulk for DEEP_ARCHIVE, Standard otherwise)",
    )
    g.add_argument(
        "--days",
        type=int,
        default=DEFAULT_DAYS,
        help="S3: days the restored copy stays (default 3)",
    )
    g.add_argument("--wait", action="store_true", help="wait for the retrieval, then restore")
    g.add_argument(
        "--poll-interval",
        type=seconds,
        default=POLL_FIRST,
        metavar="SECONDS",
        help=f"--wait: first interval between checks, growing by half each time "
        f"(default {POLL_FIRST:.0f})",
    )
    g.add_argument(
        "--poll-max",
        type=seconds,
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
        "--parallel", type=int, default=DEFAULT_PARALLEL, help="concurrent range downloads"
    )
    g.add_argument(
        "--range-size",
        type=int,
        default=DEFAULT_RANGE // MiB,
        metavar="MIB",
        help="download range size in MiB (Glacier: a power of two; default 32)",
    )


def retrieval_options(args: argparse.Namespace) -> RetrievalOptions:
    """The parsed cold-storage arguments."""
    return RetrievalOptions(
        tier=args.tier,
        days=args.days,
        wait=args.wait,
        resume=args.resume,
        poll_interval=args.poll_interval,
        poll_max=args.poll_max,
        parallel=args.parallel,
        range_size=args.range_size * MiB,
    )


def seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value

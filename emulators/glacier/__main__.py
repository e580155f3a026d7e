"""``python -m emulators.glacier --host 127.0.0.1 --port 0 --data DIR``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import socket
import sys
from pathlib import Path

from aiohttp import web

from .server import create_app
from .state import DEFAULT_OUTPUT_TTL, EmulatorState


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m emulators.glacier", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--data", type=Path, required=True, help="data directory")
    parser.add_argument("--account-id", default="123456789012")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument(
        "--tier-delays",
        default="{}",
        help='JSON seconds per tier, e.g. \'{"Expedited": 0, "Standard": 10}\'',
    )
    parser.add_argument("--output-ttl", type=float, default=DEFAULT_OUTPUT_TTL)
    parser.add_argument("--freeze-clock", action="store_true", help="start with time stopped")
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Run until SIGTERM or SIGINT."""
    state = EmulatorState(
        args.data,
        account_id=args.account_id,
        region=args.region,
        tier_delays={k: float(v) for k, v in json.loads(args.tier_delays).items()},
        output_ttl=args.output_ttl,
    )
    if args.freeze_clock:
        state.clock.freeze()
    runner = web.AppRunner(create_app(state), access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    site = web.SockSite(runner, sock)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = sock.getsockname()[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What holds the memory of a ``glacier-backup`` command: tracemalloc at its high-water mark.

    .venv/bin/python bench/profile_memory.py [--probe MODULE:FUNC ...] [--top 15] -- \\
        --config C backup

Runs the CLI in this process with tracemalloc on. Every probe (a function, ``module:Qualname``)
is wrapped: when it returns and the traced memory is the highest seen so far (by 5 %), a
snapshot is taken. At the end the allocation sites of the largest snapshot are printed,
grouped by file and line, with tracemalloc's own peak. Pick probes that return while the big
structures are still alive (the default set covers backup, restore and files). tracemalloc
slows the command down 2-4x and counts Python allocations only (not zstd's own buffers).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
import tracemalloc
from typing import Any

DEFAULT_PROBES = (
    "localbackup.index:write_index",  # backup: the new index is complete, before encoding
    "localbackup.index:_encode",  # backup: the encoded columns
    "localbackup.extract:Extractor.apply_tar",  # restore: one increment applied, tar still open
    "localbackup.extract:Extractor.finish",  # restore: the deletions and metadata pass
    "localbackup.index:read_index",
    "watcher.commands.files:IncrementIndex.load",  # files: every index loaded
    "watcher.commands.files:all_indexes",
)


class Watch:
    def __init__(self) -> None:
        self.best: tracemalloc.Snapshot | None = None
        self.best_size = 0
        self.where = ""

    def check(self, where: str) -> None:
        current, _ = tracemalloc.get_traced_memory()
        if current > self.best_size * 1.05:
            self.best = tracemalloc.take_snapshot()
            self.best_size = current
            self.where = where


def wrap(spec: str, watch: Watch) -> None:
    module_name, _, qual = spec.partition(":")
    try:
        owner: Any = importlib.import_module(module_name)
    except ImportError as e:
        print(f"probe {spec}: {e}", file=sys.stderr)
        return
    *path, name = qual.split(".")
    for part in path:
        owner = getattr(owner, part)
    fn = getattr(owner, name, None)
    if fn is None:
        print(f"probe {spec}: not found", file=sys.stderr)
        return

    @functools.wraps(fn)
    def probed(*args: Any, **kwargs: Any) -> Any:
        watch.check(f"{spec} (entry)")
        result = fn(*args, **kwargs)
        watch.check(f"{spec} (return)")
        return result

    setattr(owner, name, probed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--probe", action="append", default=[])
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--frames", type=int, default=1, help="traceback depth kept per allocation")
    ap.add_argument("cli", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cli = args.cli[1:] if args.cli[:1] == ["--"] else args.cli
    tracemalloc.start(args.frames)
    watch = Watch()
    from watcher import cli as cli_module

    for spec in args.probe or DEFAULT_PROBES:
        wrap(spec, watch)
    code = cli_module.main(cli)
    watch.check("exit")
    _, peak = tracemalloc.get_traced_memory()
    with open("/proc/self/status") as f:
        hwm = next(line for line in f if line.startswith("VmHWM:")).split()[1]
    print(
        f"exit {code}; tracemalloc peak {peak / 2**20:.1f} MiB; VmHWM {int(hwm) / 1024:.1f} MiB "
        f"(tracemalloc's own overhead included)",
        file=sys.stderr,
    )
    if watch.best is None:
        return
    snap = watch.best.filter_traces((tracemalloc.Filter(False, tracemalloc.__file__),))
    stats = snap.statistics("lineno")
    total = sum(s.size for s in stats)
    print(f"largest snapshot: {total / 2**20:.1f} MiB traced, at {watch.where}", file=sys.stderr)
    for s in stats[: args.top]:
        frame = s.traceback[0]
        print(
            f"  {s.size / 2**20:8.1f} MiB {s.size / total:6.1%} {s.count:>9} blocks  "
            f"{frame.filename.split('/wt/perf/')[-1]}:{frame.lineno}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()

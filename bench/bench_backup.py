"""Local backup benchmark: our backups vs GNU tar | zstd, side by side, medians.

    /work/venv/bin/python bench/bench_backup.py [--tree DIR] [--files 50000] [--size-mib 1100]
        [--reps 3] [--inc-reps 11] [--no-cli]

Generates (unless --tree is given) a tree of >= 1 GiB and 50,000 files — mostly small
text-like files, a few large ones, compressible content — then, in the same run and with a
warm page cache, alternates the contenders and reports medians:

- full:             write_increment(base=None)        vs  tar -cf - TREE | zstd -3 -T0
- incremental:      write_increment(base=full index)  vs  tar --listed-incremental=SNAP (2nd run)
                    on the unchanged tree, each in a fresh interpreter: start-up, imports,
                    reading the base index, scan, compare, writing the (empty) tar and the index
- CLI incremental:  ``glacier-backup backup`` (the installed command) on the unchanged tree,
                    after a first run wrote the full: all of the above plus the CLI's imports,
                    configuration, spool lock and recovery, planning, fsyncs and the manifest

Our runs are child processes; peak RSS is their VmHWM (the CLI's from one extra run). They run with
Python's bytecode cache enabled (in a private PYTHONPYCACHEPREFIX, warmed before timing), as
an installed package would: a PYTHONDONTWRITEBYTECODE environment would otherwise make every
run compile our modules from source.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = [
    "backup",
    "glacier",
    "archive",
    "cold",
    "storage",
    "cycle",
    "increment",
    "index",
    "restore",
    "vault",
    "bucket",
    "part",
    "upload",
    "seal",
    "marker",
    "spool",
    "zstd",
    "tar",
    "pax",
    "header",
    "block",
    "record",
    "file",
    "directory",
    "symlink",
    "inode",
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "from",
    "at",
    "or",
    "an",
    "have",
    "not",
    "data",
    "value",
    "error",
    "return",
    "self",
    "def",
    "class",
    "import",
    "none",
    "true",
    "false",
    "config",
    "option",
    "level",
]


def make_pool(size: int, rng: random.Random) -> bytes:
    """Text-like bytes (random words, numbers, line breaks): compresses about 3-4x."""
    out = bytearray()
    while len(out) < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
        out += f"{line} {rng.randint(0, 10**6)}\n".encode()
    return bytes(out[:size])


def generate_tree(root: Path, files: int, size_mib: int, seed: int = 1) -> tuple[int, int]:
    rng = random.Random(seed)
    pool = make_pool(32 << 20, rng)
    large = max(1, files // 500)  # 0.2 % large files carry about 60 % of the bytes
    small_total = int(size_mib * (1 << 20) * 0.4)
    large_each = int(size_mib * (1 << 20) * 0.6) // large
    small_mean = small_total // (files - large)
    total = 0
    for i in range(files):
        d = root / f"d{i // 2000:02d}" / f"s{(i // 40) % 50:02d}"
        if i % 40 == 0:
            d.mkdir(parents=True, exist_ok=True)
        size = large_each if i < large else min(int(rng.expovariate(1 / small_mean)), 1 << 20)
        off = rng.randrange(0, len(pool) - min(size, len(pool) - 1))
        data = pool[off : off + size]
        while len(data) < size:
            data += pool[: size - len(data)]
        (d / f"f{i:06d}.txt").write_bytes(data)
        total += size
    return files, total


# The child runs from ``python -c`` so that its start-up imports only what a real backup run
# imports (not this script's argparse, random, subprocess, ...).
CHILD = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from localbackup.increment import IncrementOptions, write_increment
from localbackup.index import read_index
mode, tree, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
base = None
if len(sys.argv) > 4:
    with open(sys.argv[4], "rb") as f:
        base = read_index(f)
with open(out / f"{mode}.tar.zst", "wb") as t, open(out / f"{mode}.index.zst", "wb") as i:
    r = write_increment(IncrementOptions(sources=(Path(tree),)), base, t, i)
seconds = time.perf_counter() - t0
with open("/proc/self/status") as f:  # peak RSS of this process image (not the forked parent's)
    rss = int(next(line for line in f if line.startswith("VmHWM:")).split()[1]) * 1024
print(json.dumps({"seconds": seconds, "written": r.files_written, "scanned": r.files_scanned,
                  "bytes_out": r.bytes_out, "rss": rss}))
"""

# Runs the CLI and then reports its peak RSS: wait4's ru_maxrss would include the memory of
# the (forked) benchmark process, since Linux carries the high-water mark across exec.
CLI_RSS = """
import runpy, sys
sys.argv = ["glacier-backup", *sys.argv[1:]]
try:
    runpy.run_module("watcher", run_name="__main__")
finally:
    with open("/proc/self/status") as f:
        print(next(line for line in f if line.startswith("VmHWM:")).split()[1])
"""

CLI_CONFIG = """
state_dir = "{work}/state"
[backup]
sources = ["{tree}"]
spool_dir = "{work}/spool"
increments_per_cycle = 1000
[encryption]
mode = "none"
[store]
type = "local"
path = "{work}/vault"
"""


class Child:
    """Runs our processes with the bytecode cache on."""

    def __init__(self, work: Path) -> None:
        self.env = dict(os.environ)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")

    def run(self, argv: list[str]) -> tuple[float, bytes]:
        """(wall seconds, stdout)."""
        t0 = time.perf_counter()
        res = subprocess.run(argv, stdout=subprocess.PIPE, env=self.env, check=True)
        return time.perf_counter() - t0, res.stdout

    def function(self, mode: str, tree: Path, out: Path, base: Path | None) -> dict[str, float]:
        argv = [sys.executable, "-c", CHILD, mode, str(tree), str(out)]
        if base is not None:
            argv.append(str(base))
        wall, stdout = self.run(argv)
        data: dict[str, float] = json.loads(stdout)
        data["wall"] = wall
        return data

    def cli(self, command: list[str], config: Path) -> float:
        return self.run([*command, *_cli_args(config)])[0]

    def cli_rss(self, config: Path) -> int:
        stdout = self.run([sys.executable, "-c", CLI_RSS, *_cli_args(config)])[1]
        return int(stdout.split()[-1]) * 1024


def _cli_args(config: Path) -> list[str]:
    return ["--config", str(config), "--log-level", "error", "backup"]


def run_shell(cmd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)
    return time.perf_counter() - t0


def cli_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m watcher``."""
    script = Path(sys.executable).parent / "glacier-backup"
    return [str(script)] if script.exists() else [sys.executable, "-m", "watcher"]


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def report(label: str, ours: list[float], tar: list[float], target: float) -> None:
    o, t = med(ours), med(tar)
    ok = "met" if o / t <= target else "MISSED"
    print(f"{label:<16} ours {o:7.3f}s  tar {t:7.3f}s  ratio {o / t:5.2f}  (target <= {target}: "
          f"{ok})  min ours {min(ours):.3f}s tar {min(tar):.3f}s  n={len(ours)}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tree", type=Path, help="back up this tree instead of generating one")
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--size-mib", type=int, default=1100)
    ap.add_argument("--reps", type=int, default=3, help="full backups of each contender")
    ap.add_argument("--inc-reps", type=int, default=11, help="incrementals of each contender")
    ap.add_argument("--no-cli", action="store_true", help="skip the glacier-backup CLI runs")
    ap.add_argument("--keep", action="store_true", help="keep the generated tree and outputs")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    try:
        if args.tree:
            tree = args.tree.resolve()
        else:
            tree = work / "tree"
            t0 = time.perf_counter()
            n, size = generate_tree(tree, args.files, args.size_mib)
            print(f"generated {n} files, {size / 2**30:.2f} GiB in {time.perf_counter() - t0:.1f}s")
        out = work / "out"
        out.mkdir()
        child = Child(work)
        os.sync()  # a freshly generated tree is still being written back: don't time that
        rel = str(tree).lstrip("/")
        subprocess.run(["tar", "-cf", "/dev/null", "-C", "/", rel], check=True)  # warm the cache
        child.function("warmup", tree, out, None)  # also fills the bytecode cache

        # Alternate the contenders and flush writeback between runs, so that neither pays
        # for the other's dirty pages.
        ours_full: list[dict[str, float]] = []
        tar_full: list[float] = []
        for _ in range(args.reps):
            ours_full.append(child.function("full", tree, out, None))
            os.sync()
            tar_full.append(
                run_shell(f"tar -cf - -C / {rel} | zstd -3 -T0 -q -c > {out}/tar-full.tar.zst")
            )
            os.sync()
        snap0 = out / "snap0"
        run_shell(
            f"tar --listed-incremental={snap0} -cf - -C / {rel} | zstd -3 -T0 -q -c > /dev/null"
        )

        def tar_inc() -> float:
            shutil.copy(snap0, out / "snap")
            return run_shell(
                f"tar --listed-incremental={out}/snap -cf - -C / {rel} | zstd -3 -T0 -q -c "
                f"> {out}/tar-inc.tar.zst"
            )

        ours_inc: list[dict[str, float]] = []
        tar_inc_runs: list[float] = []
        for _ in range(args.inc_reps):
            ours_inc.append(child.function("inc", tree, out, out / "full.index.zst"))
            tar_inc_runs.append(tar_inc())

        cli_inc: list[float] = []
        tar_cli_runs: list[float] = []
        cli_rss = 0
        if not args.no_cli:
            config = work / "config.toml"
            config.write_text(CLI_CONFIG.format(work=work, tree=tree))
            command = cli_command()
            cli_full = child.cli(command, config)  # the cycle's full (and bytecode warm-up)
            os.sync()
            for _ in range(args.inc_reps):
                cli_inc.append(child.cli(command, config))
                tar_cli_runs.append(tar_inc())
            cli_rss = child.cli_rss(config)

        full_size = (out / "full.tar.zst").stat().st_size
        tar_size = (out / "tar-full.tar.zst").stat().st_size
        print(f"cpus: {os.cpu_count()}  entries scanned: {int(ours_full[0]['scanned'])}  "
              f"written by the incrementals: {int(ours_inc[0]['written'])}")  # fmt: skip
        report("full", [r["wall"] for r in ours_full], tar_full, 1.3)
        report("incremental", [r["wall"] for r in ours_inc], tar_inc_runs, 2.0)
        if cli_inc:
            report("CLI incremental", cli_inc, tar_cli_runs, 2.0)
            print(f"CLI full (one run, includes the CLI start-up): {cli_full:.2f}s")
        print(f"size        ours {full_size / 2**20:.1f} MiB  tar {tar_size / 2**20:.1f} MiB")
        rss = {
            "full": max(r["rss"] for r in ours_full),
            "incremental": max(r["rss"] for r in ours_inc),
            "CLI incremental": cli_rss,
        }
        print("peak RSS    " + "  ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in rss.items() if v))
        print("all runs (s): ours full", [round(r["wall"], 3) for r in ours_full],
              "tar full", [round(x, 3) for x in tar_full],
              "ours inc", [round(r["wall"], 3) for r in ours_inc],
              "tar inc", [round(x, 3) for x in tar_inc_runs],
              "CLI inc", [round(x, 3) for x in cli_inc],
              "tar inc (CLI)", [round(x, 3) for x in tar_cli_runs])  # fmt: skip
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

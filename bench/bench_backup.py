"""Local backup benchmark: our write_increment vs GNU tar | zstd, side by side.

    /work/venv/bin/python bench/bench_backup.py [--tree DIR] [--files 50000] [--size-mib 1100]

Generates (unless --tree is given) a tree of >= 1 GiB and 50,000 files — mostly small
text-like files, a few large ones, compressible content — then, in the same run and with a
warm page cache, times each contender twice and keeps the best:

- full:        write_increment(base=None)       vs  tar -cf - TREE | zstd -3 -T0
- incremental: write_increment(base=full index)  vs  tar --listed-incremental=SNAP (2nd run)
               on the unchanged tree

Our runs happen in a child process so its peak RSS (ru_maxrss) is ours alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
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
import json, resource, sys, time
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
print(json.dumps({"seconds": time.perf_counter() - t0, "written": r.files_written,
                  "scanned": r.files_scanned, "bytes_out": r.bytes_out,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def run_ours(mode: str, tree: Path, out: Path, base: Path | None) -> dict[str, float]:
    argv = [sys.executable, "-c", CHILD, mode, str(tree), str(out)]
    if base is not None:
        argv.append(str(base))
    t0 = time.perf_counter()
    res = subprocess.run(argv, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    data: dict[str, float] = json.loads(res.stdout)
    data["wall"] = wall
    return data


def run_shell(cmd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tree", type=Path, help="back up this tree instead of generating one")
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--size-mib", type=int, default=1100)
    ap.add_argument("--reps", type=int, default=2)
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
        os.sync()  # a freshly generated tree is still being written back: don't time that
        rel = str(tree).lstrip("/")
        subprocess.run(["tar", "-cf", "/dev/null", "-C", "/", rel], check=True)  # warm the cache

        # Alternate the contenders and flush writeback between runs, so that neither pays
        # for the other's dirty pages.
        ours_full: list[dict[str, float]] = []
        tar_full: list[float] = []
        for _ in range(args.reps):
            ours_full.append(run_ours("full", tree, out, None))
            os.sync()
            tar_full.append(
                run_shell(f"tar -cf - -C / {rel} | zstd -3 -T0 -q -c > {out}/tar-full.tar.zst")
            )
            os.sync()
        snap0 = out / "snap0"
        run_shell(
            f"tar --listed-incremental={snap0} -cf - -C / {rel} | zstd -3 -T0 -q -c > /dev/null"
        )
        inc_reps = max(args.reps, 5)  # cheap and noisy: take a few more
        ours_inc = [run_ours("inc", tree, out, out / "full.index.zst") for _ in range(inc_reps)]
        tar_inc = []
        for _ in range(inc_reps):
            shutil.copy(snap0, out / "snap")
            tar_inc.append(run_shell(
                f"tar --listed-incremental={out}/snap -cf - -C / {rel} | zstd -3 -T0 -q -c "
                f"> {out}/tar-inc.tar.zst"
            ))  # fmt: skip

        of = min(r["wall"] for r in ours_full)
        tf = min(tar_full)
        oi = min(r["wall"] for r in ours_inc)
        ti = min(tar_inc)
        full_size = (out / "full.tar.zst").stat().st_size
        tar_size = (out / "tar-full.tar.zst").stat().st_size
        rss_full = max(r["rss"] for r in ours_full) / 2**20
        rss_inc = max(r["rss"] for r in ours_inc) / 2**20
        print(f"cpus: {os.cpu_count()}  files scanned: {int(ours_full[0]['scanned'])}")
        print(
            f"full        ours {of:7.2f}s  tar|zstd {tf:7.2f}s  ratio {of / tf:5.2f}  "
            f"(target <= 1.3)  size ours {full_size / 2**20:.1f} MiB tar {tar_size / 2**20:.1f} MiB"
        )
        print(
            f"incremental ours {oi:7.2f}s  tar -g    {ti:7.2f}s  ratio {oi / ti:5.2f}  "
            f"(target <= 2.0)  written {int(ours_inc[0]['written'])}"
        )
        print(f"peak RSS    full {rss_full:.0f} MiB  incremental {rss_inc:.0f} MiB")
        print("all runs (s): ours full", [round(r["wall"], 2) for r in ours_full],
              "tar full", [round(x, 2) for x in tar_full],
              "ours inc", [round(r["wall"], 2) for r in ours_inc],
              "tar inc", [round(x, 2) for x in tar_inc])  # fmt: skip
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

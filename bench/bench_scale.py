"""Scale benchmark (issue 15): 200k and 1M small files, our CLI vs GNU tar side by side.

    .venv/bin/python bench/bench_scale.py [--files 200000] [--rounds 3]
        [--only backup,incremental,restore,upload,files,startup] [--work /dev/shm/glacier-bench]
        [--cycles 50] [--verify] [--profile DIR [--profiler cprofile|py-spy]] [--clean]

Every "ours" run is the installed ``glacier-backup`` command in a child process (start-up,
imports and configuration included), with Python's bytecode cache on in a private
``PYTHONPYCACHEPREFIX`` (as an installed package has it). Every run, ours and tar's, is wrapped
in ``/usr/bin/time``: wall clock (measured here), user + system CPU of the process tree, and the
peak RSS of the largest process of the tree (``ru_maxrss``; ``time`` itself is ~2 MiB, so the
figure is the command's own, not this script's as a plain ``wait4`` would report after a fork).
Contenders alternate (ours first in odd rounds, tar first in even ones); the report gives
medians, the ratio of the medians, the per-round ratios and the peak RSS.

Sections (``--only``):

- ``backup``: full backup. ``glacier-backup backup`` into an empty spool (a new cycle, its full)
  vs ``tar -cf - TREE | zstd -3 -T0 > out``.
- ``incremental``: unchanged incremental. ``glacier-backup backup`` on a spool whose open cycle
  already holds the full vs ``tar --listed-incremental=SNAP -cf - TREE | zstd -3 -T0 > out``
  with SNAP a fresh copy of the snapshot of a first run (so every tar run is a second run).
- ``restore``: a chained cycle, full + 7 increments each with a few changes (files modified,
  added, deleted, a directory renamed), sealed. ``glacier-backup restore --from-spool latest
  --to DIR`` vs ``tar --zstd -xf`` of the same 8 increment files in turn into one directory:
  the same bytes, the same number of extractions (tar does not apply the deletions). Both
  targets are under ``--work`` (a tmpfs by default), removed between runs.
- ``upload``: ``glacier-backup upload`` of the sealed chain cycle into a local store (age
  encryption to a fresh recipient), then ``glacier-backup restore latest --to DIR`` from that
  store (download, decrypt, extract). No peer: time, CPU and peak RSS.
- ``files``: ``glacier-backup files PATTERN`` over ``--cycles`` cycles of 8 increments. The
  cycles are copies of the chain cycle under new ids (data files hard-linked, ``cycle.json``
  rewritten), each uploaded with ``glacier-backup upload`` to a local store (unencrypted), so
  that the catalogue holds their indexes exactly as an upload leaves them; the spool copies
  and the store are deleted afterwards (cycles pruned locally), so the query reads the
  catalogue. Reports the query's time and peak RSS and the catalogue's bytes per stored file
  version. (Baseline code: 50 cycles of 200k files take ~9 minutes per query; ``--cycles 2``
  for a quick look.)
- ``startup``: wall time of ``glacier-backup status`` and ``glacier-backup backup --help`` vs
  ``python -c pass`` (medians of ``--startup-runs``), and ``python -X importtime``'s top imports.

The tree (``--files`` files in ~files/100 leaf directories, ~350 bytes of text on average,
0.05 % larger files of 64-256 KiB, a few symlinks and hardlinks) is generated from ``--seed``
and cached under ``--work`` between runs, as is the chain cycle; ``--clean`` removes the cache
of this size at the end. The tree is put back as generated after the chain's changes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

GENERATOR_VERSION = 1
SECTIONS = ("backup", "incremental", "restore", "upload", "files", "startup")
CHAIN_STEPS = 7  # increments after the full: a cycle of 8, sealed by the 8th backup
MiB = 1 << 20

_TEXT = (
    "backup glacier archive cold storage cycle increment index restore vault bucket part upload "
    "seal marker spool zstd tar pax header block record file directory symlink inode the of and "
    "to in is that for it as with was on be by this are from at or an have not data value error "
    "return self def class import none true false config option level"
)
WORDS = _TEXT.split()


# -- the tree ---------------------------------------------------------------------------------


def make_pool(size: int, rng: random.Random) -> bytes:
    """Text-like bytes (words, numbers, line breaks): compresses about 3-4x."""
    out = bytearray()
    while len(out) < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
        out += f"{line} {rng.randint(0, 10**6)}\n".encode()
    return bytes(out[:size])


@dataclass(frozen=True, slots=True)
class Layout:
    """Where every file of the tree is and what it holds: a pure function of (files, seed)."""

    root: Path
    files: int
    seed: int
    sizes: list[int]
    offsets: list[int]
    pool: bytes
    links: int  # symlinks, and as many hardlinks

    @property
    def leaves(self) -> int:
        return max(1, self.files // 100)

    def leaf(self, n: int) -> Path:
        return self.root / f"a{n // 100:03d}" / f"b{(n // 10) % 10}" / f"c{n % 10}"

    def path(self, i: int) -> Path:
        return self.leaf(i % self.leaves) / f"f{i:07d}.txt"

    def content(self, i: int) -> bytes:
        off = self.offsets[i]
        return self.pool[off : off + self.sizes[i]]

    def plain(self, i: int) -> bool:
        """Not a hardlink or symlink target: the chain's changes touch only these."""
        return i % 997 != 0


def layout(root: Path, files: int, seed: int) -> Layout:
    rng = random.Random(seed)
    pool = make_pool(8 * MiB, rng)
    large_every = 2000  # 0.05 % larger files
    sizes = []
    offsets = []
    for i in range(files):
        if i % large_every == large_every - 1:
            size = rng.randint(64 << 10, 256 << 10)
        else:
            size = min(int(rng.expovariate(1 / 300)), 16 << 10)
        sizes.append(size)
        offsets.append(rng.randrange(0, len(pool) - size))
    links = min(max(2, files // 10_000), (files + 996) // 997)  # targets: files 0, 997, ...
    return Layout(root, files, seed, sizes, offsets, pool, links)


def _write(
    path: Path | str, data: bytes, flags: int = os.O_WRONLY | os.O_CREAT | os.O_EXCL
) -> None:
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def generate(lay: Layout) -> dict[str, int]:
    """Write the tree (``lay.root`` must not exist); returns its counts."""
    for n in range(lay.leaves):
        lay.leaf(n).mkdir(parents=True)
    total = 0
    leaves = lay.leaves
    leaf_dirs = [os.fspath(lay.leaf(n)) for n in range(leaves)]
    for i in range(lay.files):
        _write(f"{leaf_dirs[i % leaves]}/f{i:07d}.txt", lay.content(i))
        total += lay.sizes[i]
    # a few symlinks (relative, to a sibling) and hardlinks (to a file of another directory)
    for j in range(lay.links):
        i = j * 997
        target = lay.path(i)
        os.symlink(target.name, target.parent / f"sym{j:05d}")
        other = lay.leaf((i + 1) % leaves)
        os.link(target, other / f"hard{j:05d}")
    tops = {n // 100 for n in range(leaves)}
    mids = {n // 10 for n in range(leaves)}
    dirs = 1 + len(tops) + len(mids) + leaves
    return {"files": lay.files, "bytes": total, "links": 2 * lay.links, "dirs": dirs}


def ensure_tree(work: Path, files: int, seed: int) -> tuple[Layout, dict[str, object]]:
    root = work / f"tree-{files}-s{seed}"
    stamp = work / f"tree-{files}-s{seed}.json"
    lay = layout(root, files, seed)
    if stamp.exists() and root.is_dir():
        info = json.loads(stamp.read_text())
        if info.get("version") == GENERATOR_VERSION:
            return lay, info
    if root.exists():
        shutil.rmtree(root)
    t0 = time.perf_counter()
    counts = generate(lay)
    seconds = time.perf_counter() - t0
    info = {"version": GENERATOR_VERSION, **counts, "seconds": round(seconds, 1)}
    stamp.write_text(json.dumps(info))
    print(f"generated {root}: {info}", flush=True)
    return lay, info


# -- the chain's changes ----------------------------------------------------------------------


@dataclass(slots=True)
class Changes:
    """What one step of the chain did to the tree, so that it can be undone."""

    modified: list[int] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    renamed: tuple[str, str] | None = None


@dataclass(slots=True)
class Taken:
    """What earlier steps of the chain changed: a later step leaves it alone."""

    files: set[int] = field(default_factory=set)
    leaves: set[int] = field(default_factory=set)  # renamed


def _pick_files(lay: Layout, rng: random.Random, k: int, taken: Taken) -> list[int]:
    out: list[int] = []
    while len(out) < k:
        i = rng.randrange(lay.files)
        if lay.plain(i) and i not in taken.files and i % lay.leaves not in taken.leaves:
            taken.files.add(i)
            out.append(i)
    return out


def _pick_leaf(lay: Layout, rng: random.Random, taken: Taken) -> int:
    while True:
        n = rng.randrange(lay.leaves)
        if n not in taken.leaves:
            return n


def apply_changes(lay: Layout, step: int, taken: Taken) -> Changes:
    """Step ``step`` of the chain: ~0.1 % of the files modified, ~0.025 % added, ~0.01 %
    deleted, one leaf directory (~100 files) renamed."""
    rng = random.Random(lay.seed * 1000 + step)
    ch = Changes()
    n = lay.files
    for i in _pick_files(lay, rng, max(10, n // 1000), taken):
        _write(
            lay.path(i), lay.content(i) + b"changed in step %d\n" % step, os.O_WRONLY | os.O_TRUNC
        )
        ch.modified.append(i)
    for j in range(max(5, n // 4000)):
        p = lay.leaf(_pick_leaf(lay, rng, taken)) / f"new-s{step}-{j:05d}.txt"
        _write(p, lay.pool[j * 100 : j * 100 + rng.randint(0, 2000)])
        ch.added.append(os.fspath(p))
    for i in _pick_files(lay, rng, max(2, n // 10_000), taken):
        os.unlink(lay.path(i))
        ch.deleted.append(i)
    while True:  # a leaf without links in it: the links stay where the generator put them
        leaf_n = _pick_leaf(lay, rng, taken)
        leaf = lay.leaf(leaf_n)
        if not any(leaf.glob("hard*")) and not any(leaf.glob("sym*")):
            break
    new = leaf.with_name(leaf.name + f"-renamed-s{step}")
    os.rename(leaf, new)
    ch.renamed = (os.fspath(leaf), os.fspath(new))
    taken.leaves.add(leaf_n)
    return ch


def undo_changes(lay: Layout, steps: list[Changes]) -> None:
    for ch in reversed(steps):
        if ch.renamed:
            os.rename(ch.renamed[1], ch.renamed[0])
        for p in ch.added:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        for i in ch.deleted:
            _write(lay.path(i), lay.content(i))
        for i in ch.modified:
            _write(lay.path(i), lay.content(i), os.O_WRONLY | os.O_TRUNC)


# -- running and timing -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    wall: float  # seconds, spawn to exit
    cpu: float  # user + system seconds of the process tree
    rss: int  # bytes: peak RSS of the largest process of the tree


class Runner:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.env = dict(os.environ)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        script = Path(sys.executable).parent / "glacier-backup"
        self.cli = [str(script)] if script.exists() else [sys.executable, "-m", "watcher"]
        self.profile_dir: Path | None = None
        self.profiler = "cprofile"
        if not Path("/usr/bin/time").exists():
            sys.exit("needs /usr/bin/time (Debian: apt-get install time)")

    def run(self, argv: list[str], *, ours: bool = True, quiet: bool = True) -> Sample:
        with tempfile.NamedTemporaryFile("r", dir=self.work, suffix=".time") as tf:
            t0 = time.perf_counter()
            res = subprocess.run(
                ["/usr/bin/time", "-f", "%U %S %M", "-o", tf.name, *argv],
                env=self.env if ours else None,
                stdout=subprocess.DEVNULL if quiet else None,
                stderr=subprocess.PIPE,
                check=False,
            )
            wall = time.perf_counter() - t0
            if res.returncode not in (0, 3):
                sys.stderr.write(res.stderr.decode(errors="replace"))
                raise SystemExit(f"failed ({res.returncode}): {' '.join(argv)}")
            user, system, rss_kib = tf.read().split()[-3:]
        return Sample(wall, float(user) + float(system), int(rss_kib) * 1024)

    def ours(self, config: Path, *args: str) -> Sample:
        return self.run([*self.cli, "--config", str(config), "--log-level", "error", *args])

    def shell(self, cmd: str) -> Sample:
        return self.run(["bash", "-o", "pipefail", "-c", cmd], ours=False)

    def profile(self, name: str, config: Path, *args: str, before: object = None) -> None:
        """One more run of ours under the profiler (``--profile``); ``before`` prepares it."""
        if self.profile_dir is None:
            return
        if callable(before):
            before()
        argv = ["--config", str(config), "--log-level", "error", *args]
        out = self.profile_dir / name
        if self.profiler == "py-spy":
            spy = Path(sys.executable).parent / "py-spy"
            cmd = [
                str(spy),
                "record",
                "--rate",
                "250",
                "--format",
                "raw",
                "--nonblocking",
                "-o",
                f"{out}.txt",
                "--",
                sys.executable,
                "-m",
                "watcher",
                *argv,
            ]
        else:
            cmd = [sys.executable, "-m", "cProfile", "-o", f"{out}.prof", "-m", "watcher", *argv]
        subprocess.run(cmd, env=self.env, stdout=subprocess.DEVNULL, check=True)
        print(f"  profile written: {out}.{'txt' if self.profiler == 'py-spy' else 'prof'}")


CONFIG = """\
state_dir = "{state}"
[backup]
sources = ["{tree}"]
spool_dir = "{spool}"
increments_per_cycle = {ipc}
compression_level = 3
compression_threads = 0
host = "bench"
[encryption]
{encryption}
[store]
type = "local"
path = "{vault}"
"""


def write_config(
    path: Path,
    *,
    tree: Path,
    base: Path,
    ipc: int,
    recipient: str = "",
    identity: Path | None = None,
) -> Path:
    if recipient:
        enc = f'recipients = ["{recipient}"]\nidentity_file = "{identity}"'
    else:
        enc = 'mode = "none"'
    path.write_text(
        CONFIG.format(
            state=base / "state",
            tree=tree,
            spool=base / "spool",
            ipc=ipc,
            encryption=enc,
            vault=base / "vault",
        )
    )
    return path


def reset(*paths: Path) -> None:
    for p in paths:
        if p.exists() or p.is_symlink():
            _chmod_rmtree(p)


def _chmod_rmtree(p: Path) -> None:
    def onerror(func: object, path: str, exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), 0o700)
        with contextlib.suppress(OSError):
            os.chmod(path, 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)

    shutil.rmtree(p, onerror=onerror)  # restored trees may hold read-only directories


# -- reporting --------------------------------------------------------------------------------


@dataclass(slots=True)
class Report:
    files: int
    lines: list[str] = field(default_factory=list)
    data: dict[str, object] = field(default_factory=dict)
    rss: dict[str, int] = field(default_factory=dict)

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)

    def pair(
        self,
        label: str,
        ours: list[Sample],
        peer: list[Sample],
        target: float | None,
        peer_name: str = "tar",
    ) -> None:
        ow, pw = statistics.median(s.wall for s in ours), statistics.median(s.wall for s in peer)
        oc, pc = statistics.median(s.cpu for s in ours), statistics.median(s.cpu for s in peer)
        ratio = ow / pw
        verdict = (
            ""
            if target is None
            else f" (target <= {target}: {'met' if ratio <= target else 'MISSED'})"
        )
        rounds = ", ".join(f"{o.wall / p.wall:.2f}" for o, p in zip(ours, peer, strict=True))
        orss, prss = max(s.rss for s in ours), max(s.rss for s in peer)
        self.say(
            f"{label:<22} ours {ow:8.3f} s  {peer_name} {pw:8.3f} s  ratio {ratio:5.2f}{verdict}\n"
            f"{'':22} CPU ours {oc:7.2f} s  {peer_name} {pc:7.2f} s  ratio {oc / pc:5.2f}  "
            f"peak RSS ours {orss / MiB:6.1f} MiB  {peer_name} {prss / MiB:5.1f} MiB\n"
            f"{'':22} per round: {rounds}  (n={len(ours)})"
        )
        self.rss[label] = orss
        self.data[label] = {
            "ours": [s.__repr__() for s in ours],
            "peer": [s.__repr__() for s in peer],
            "ratio": round(ratio, 3),
            "cpu_ratio": round(oc / pc, 3),
            "ours_wall": ow,
            "peer_wall": pw,
            "ours_rss": orss,
        }

    def single(self, label: str, ours: list[Sample], extra: str = "") -> None:
        ow = statistics.median(s.wall for s in ours)
        oc = statistics.median(s.cpu for s in ours)
        rss = max(s.rss for s in ours)
        runs = ", ".join(f"{s.wall:.2f}" for s in ours)
        self.say(
            f"{label:<22} ours {ow:8.3f} s  CPU {oc:7.2f} s  peak RSS {rss / MiB:6.1f} MiB"
            f"  runs: {runs}{extra}"
        )
        self.rss[label] = rss
        self.data[label] = {"ours": [repr(s) for s in ours], "wall": ow, "rss": rss}


def alternate(rounds: int, ours: object, peer: object) -> tuple[list[Sample], list[Sample]]:
    """Run both ``rounds`` times, ours first in odd rounds, the peer first in even ones."""
    o: list[Sample] = []
    p: list[Sample] = []
    for r in range(rounds):
        if r % 2 == 0:
            o.append(ours())  # type: ignore[operator]
            p.append(peer())  # type: ignore[operator]
        else:
            p.append(peer())  # type: ignore[operator]
            o.append(ours())  # type: ignore[operator]
    return o, p


# -- sections ---------------------------------------------------------------------------------


def section_backup(run: Runner, rep: Report, tree: Path, work: Path, rounds: int) -> None:
    base = work / "full"
    base.mkdir(exist_ok=True)
    config = write_config(base / "config.toml", tree=tree, base=base, ipc=1000)
    rel = str(tree).lstrip("/")
    out = base / "tar-full.tar.zst"

    def ours() -> Sample:
        reset(base / "spool", base / "state")
        os.sync()
        return run.ours(config, "backup")

    def tar() -> Sample:
        out.unlink(missing_ok=True)
        os.sync()
        return run.shell(f"tar -cf - -C / {rel} | zstd -3 -T0 -q -c > {out}")

    o, p = alternate(rounds, ours, tar)
    rep.pair("full backup", o, p, 1.3)
    size = sum(f.stat().st_size for f in (base / "spool").rglob("inc-0000.tar.zst"))
    rep.say(
        f"{'':22} compressed: ours {size / MiB:.1f} MiB, tar {out.stat().st_size / MiB:.1f} MiB"
    )
    run.profile(
        "backup-full", config, "backup", before=lambda: reset(base / "spool", base / "state")
    )
    reset(base)


def section_incremental(run: Runner, rep: Report, tree: Path, work: Path, rounds: int) -> None:
    base = work / "inc"
    reset(base)
    base.mkdir()
    config = write_config(base / "config.toml", tree=tree, base=base, ipc=10_000)
    rel = str(tree).lstrip("/")
    run.ours(config, "backup")  # the cycle's full
    snap0 = base / "snap0"
    run.shell(f"tar --listed-incremental={snap0} -cf - -C / {rel} | zstd -3 -T0 -q -c > /dev/null")

    def tar() -> Sample:
        shutil.copy(snap0, base / "snap")
        return run.shell(
            f"tar --listed-incremental={base}/snap -cf - -C / {rel} | zstd -3 -T0 -q -c "
            f"> {base}/tar-inc.tar.zst"
        )

    o, p = alternate(rounds, lambda: run.ours(config, "backup"), tar)
    rep.pair("unchanged incremental", o, p, 1.3)
    run.profile("backup-incremental", config, "backup")
    reset(base)


def ensure_chain(run: Runner, rep: Report, lay: Layout, work: Path, verify: bool) -> Path:
    """The sealed chain cycle (full + 7 increments with changes); returns its spool base."""
    base = work / f"chain-{lay.files}-s{lay.seed}"
    stamp = work / f"chain-{lay.files}-s{lay.seed}.json"
    if stamp.exists() and base.is_dir():
        info = json.loads(stamp.read_text())
        rep.say(f"chain cycle (cached): {info}")
        return base
    reset(base)
    base.mkdir()
    config = write_config(base / "config.toml", tree=lay.root, base=base, ipc=CHAIN_STEPS)
    t0 = time.perf_counter()
    steps: list[Changes] = []
    taken = Taken()
    times = [run.ours(config, "backup").wall]
    try:
        for step in range(1, CHAIN_STEPS + 1):
            steps.append(apply_changes(lay, step, taken))
            times.append(run.ours(config, "backup").wall)
        if verify:
            verify_restore(run, rep, config, lay, base)
    finally:
        undo_changes(lay, steps)
    cycle = sealed_cycle(base / "spool")
    sizes = {p.name: p.stat().st_size for p in sorted(cycle.iterdir()) if p.name.endswith(".zst")}
    info = {
        "cycle": cycle.name,
        "seconds": round(time.perf_counter() - t0, 1),
        "backup_seconds": [round(t, 2) for t in times],
        "tar_mib": round(sum(v for k, v in sizes.items() if ".tar." in k) / MiB, 1),
        "index_mib": round(sum(v for k, v in sizes.items() if ".index." in k) / MiB, 2),
    }
    stamp.write_text(json.dumps(info))
    rep.say(f"chain cycle built: {info}")
    return base


def sealed_cycle(spool: Path) -> Path:
    cycles = sorted(p.parent for p in (spool / "cycles").glob("*/cycle.json"))
    if not cycles:
        raise SystemExit(f"no sealed cycle in {spool}")
    return cycles[-1]


def verify_restore(run: Runner, rep: Report, config: Path, lay: Layout, base: Path) -> None:
    """Restore the chain's last point in time and compare it with the tree (still changed)."""
    target = base / "verify"
    run.ours(config, "restore", "--from-spool", "latest", "--to", str(target))
    restored = target / str(lay.root).lstrip("/")
    res = subprocess.run(
        ["diff", "-r", "--no-dereference", "-q", str(lay.root), str(restored)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        print(res.stdout[:3000])
        raise SystemExit("the restored tree differs from the source")
    reset(target)
    rep.say("chain restore verified: the restored tree equals the source (diff -r)")


def section_restore(run: Runner, rep: Report, chain: Path, work: Path, rounds: int) -> None:
    config = chain / "config.toml"
    cycle = sealed_cycle(chain / "spool")
    incs = sorted(cycle.glob("inc-*.tar.zst"))
    ours_to, tar_to = work / "restore-ours", work / "restore-tar"
    reset(ours_to, tar_to)

    def ours() -> Sample:
        s = run.ours(config, "restore", "--from-spool", "latest", "--to", str(ours_to))
        reset(ours_to)
        return s

    def tar() -> Sample:
        tar_to.mkdir()
        cmds = " && ".join(f"tar --zstd -xf {f} -C {tar_to}" for f in incs)
        s = run.shell(cmds)
        reset(tar_to)
        return s

    o, p = alternate(rounds, ours, tar)
    rep.pair(f"restore {len(incs)} increments", o, p, 1.3)
    run.profile("restore", config, "restore", "--from-spool", "latest", "--to", str(ours_to))
    reset(ours_to)


def keygen(run: Runner, work: Path) -> tuple[str, Path]:
    key = work / "identity.txt"
    if not key.exists():
        out = subprocess.run(
            [*run.cli, "keygen", "-o", str(key)],
            env=run.env,
            capture_output=True,
            text=True,
            check=True,
        )
        m = re.search(r"age1[0-9a-z]+", out.stdout + out.stderr)
        if not m:
            raise SystemExit("keygen printed no recipient")
        (work / "recipient.txt").write_text(m.group(0))
    return (work / "recipient.txt").read_text().strip(), key


def section_upload(run: Runner, rep: Report, chain: Path, work: Path, rounds: int) -> None:
    recipient, key = keygen(run, work)
    base = work / "upload"
    reset(base)
    base.mkdir()
    (base / "spool").symlink_to(chain / "spool")  # the sealed chain cycle, read only
    config = write_config(
        base / "config.toml",
        tree=work,
        base=base,
        ipc=CHAIN_STEPS,
        recipient=recipient,
        identity=key,
    )
    to = work / "restore-store"
    up: list[Sample] = []
    down: list[Sample] = []
    for _ in range(rounds):
        reset(base / "state", base / "vault", to)
        up.append(run.ours(config, "upload"))
        down.append(run.ours(config, "restore", "latest", "--to", str(to)))
    size = sum(p.stat().st_size for p in (base / "vault").rglob("*") if p.is_file())
    rep.single("upload (local store)", up, f"  (archive {size / MiB:.1f} MiB, age)")
    rep.single("restore from the store", down)
    run.profile("upload", config, "upload", before=lambda: reset(base / "state", base / "vault"))
    run.profile(
        "restore-store", config, "restore", "latest", "--to", str(to), before=lambda: reset(to)
    )
    reset(base, to)


def ensure_files_catalogue(
    run: Runner, rep: Report, chain: Path, work: Path, files: int, cycles: int
) -> Path:
    base = work / f"files-{files}-c{cycles}"
    stamp = work / f"files-{files}-c{cycles}.json"
    if stamp.exists() and base.is_dir():
        rep.say(f"files catalogue (cached): {json.loads(stamp.read_text())}")
        return base
    reset(base)
    (base / "spool" / "cycles").mkdir(parents=True)
    config = write_config(base / "config.toml", tree=work, base=base, ipc=CHAIN_STEPS)
    src = sealed_cycle(chain / "spool")
    meta = json.loads((src / "cycle.json").read_text())
    t0 = time.perf_counter()
    batch = 5  # cycles per upload command: bounded store size on the tmpfs
    for first in range(0, cycles, batch):
        for k in range(first, min(first + batch, cycles)):
            cid = f"{2030 + k // 300}{1 + (k // 28) % 12:02d}{1 + k % 28:02d}T000000Z"
            d = base / "spool" / "cycles" / cid
            d.mkdir()
            for f in src.iterdir():
                if f.name != "cycle.json":
                    os.link(f, d / f.name)
            (d / "cycle.json").write_text(json.dumps({**meta, "cycle_id": cid}))
        run.ours(config, "upload")
        reset(base / "vault")
        for d in list((base / "spool" / "cycles").iterdir()):
            reset(d)
    catalogue = sum(p.stat().st_size for p in (base / "state").rglob("*") if p.is_file())
    info = {
        "cycles": cycles,
        "increments": cycles * (CHAIN_STEPS + 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "catalogue_bytes": catalogue,
        **catalogue_tables(base / "state" / "catalogue.sqlite3", files, cycles),
    }
    stamp.write_text(json.dumps(info))
    rep.say(f"files catalogue built: {info}")
    return base


def catalogue_tables(db_file: Path, files: int, cycles: int) -> dict[str, object]:
    """Bytes of each table and index of the catalogue (SQLite's dbstat), and those of the
    path search tables per stored file version (one version = a path in one increment)."""
    import sqlite3

    db = sqlite3.connect(db_file)
    try:
        sizes = dict(db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    except sqlite3.OperationalError:  # SQLite built without dbstat
        return {}
    finally:
        db.close()
    search = sum(v for k, v in sizes.items() if "path" in k or "version_cycles" in k)
    versions = files * cycles * (CHAIN_STEPS + 1)
    return {
        "table_bytes": sizes,
        "search_tables_bytes": search,
        "search_bytes_per_file_version": round(search / versions, 2),
    }


def section_files(
    run: Runner, rep: Report, chain: Path, work: Path, files: int, cycles: int, rounds: int
) -> None:
    base = ensure_files_catalogue(run, rep, chain, work, files, cycles)
    config = base / "config.toml"
    pattern = "f000012?.txt"  # a name glob: 10 paths, every version of each
    runs = [run.ours(config, "files", pattern) for _ in range(rounds)]
    catalogue = sum(p.stat().st_size for p in (base / "state").rglob("*") if p.is_file())
    versions = cycles * (CHAIN_STEPS + 1) * files
    rep.single(
        f"files PATTERN, {cycles} cycles",
        runs,
        f"\n{'':22} catalogue {catalogue / MiB:.1f} MiB = {catalogue / versions:.2f} bytes "
        f"per stored file version ({cycles} cycles x {CHAIN_STEPS + 1} increments x "
        f"{files} files)",
    )
    run.profile("files", config, "files", pattern)


def section_startup(run: Runner, rep: Report, work: Path, n: int) -> None:
    base = work / "startup"
    reset(base)
    base.mkdir()
    config = write_config(base / "config.toml", tree=work, base=base, ipc=7)
    py = sys.executable
    variants = {
        "python -c pass": [py, "-c", "pass"],
        "status": [*run.cli, "--config", str(config), "status"],
        "backup --help": [*run.cli, "backup", "--help"],
    }
    for argv in variants.values():  # warm the bytecode cache and the catalogue
        run.run(argv)
    results: dict[str, list[Sample]] = {k: [] for k in variants}
    for _ in range(n):
        for k, argv in variants.items():
            results[k].append(run.run(argv))
    floor = statistics.median(s.wall for s in results["python -c pass"])
    for k, samples in results.items():
        w = statistics.median(s.wall for s in samples)
        rss = max(s.rss for s in samples)
        rep.say(
            f"start-up {k:<14} {w * 1000:7.1f} ms  (+{(w - floor) * 1000:6.1f} ms over "
            f"python -c pass)  CPU {statistics.median(s.cpu for s in samples) * 1000:6.1f} ms"
            f"  RSS {rss / MiB:5.1f} MiB  n={n}"
        )
        rep.data[f"startup {k}"] = {"ms": w * 1000, "rss": rss}
    for k in ("status", "backup --help"):
        argv = [py, "-X", "importtime", "-m", "watcher", *variants[k][1:]]
        res = subprocess.run(argv, env=run.env, capture_output=True, text=True, check=False)
        rep.say(f"importtime {k}: " + top_imports(res.stderr))
    reset(base)


def top_imports(stderr: str, n: int = 8) -> str:
    """Total import time and the slowest top-level imports (cumulative) from -X importtime."""
    rows = []
    total = 0
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        total += int(m.group(1))
        if len(m.group(3)) == 1:  # a top-level import
            rows.append((int(m.group(2)), m.group(4)))
    rows.sort(reverse=True)
    top = ", ".join(f"{name} {us / 1000:.0f}" for us, name in rows[:n])
    return f"{total / 1000:.0f} ms in imports; top (ms, cumulative): {top}"


# -- main ---------------------------------------------------------------------------------------


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    ap.add_argument("--work", type=Path, default=Path("/dev/shm/glacier-bench"))
    ap.add_argument("--cycles", type=int, default=50, help="files: cycles in the catalogue")
    ap.add_argument("--files-rounds", type=int, default=None, help="files: runs (default --rounds)")
    ap.add_argument("--startup-runs", type=int, default=20)
    ap.add_argument("--verify", action="store_true", help="check the chain's restore (diff -r)")
    ap.add_argument("--profile", type=Path, help="also run ours once per section under a profiler")
    ap.add_argument("--profiler", choices=("cprofile", "py-spy"), default="cprofile")
    ap.add_argument(
        "--clean", action="store_true", help="remove this size's cached data at the end"
    )
    ap.add_argument("--generate-only", action="store_true")
    args = ap.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections: {', '.join(sorted(unknown))} (known: {', '.join(SECTIONS)})")
    work = args.work.absolute()
    work.mkdir(parents=True, exist_ok=True)
    run = Runner(work)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        run.profile_dir = args.profile.absolute()
        run.profiler = args.profiler
    rep = Report(args.files)
    fs = subprocess.run(
        ["stat", "-f", "-c", "%T", str(work)], capture_output=True, text=True, check=False
    ).stdout.strip()
    rep.say(
        f"# bench_scale: {args.files} files, rounds {args.rounds}, work {work} ({fs}); {machine()}"
    )
    lay, info = ensure_tree(work, args.files, args.seed)
    rep.say(f"tree {lay.root}: {info}")
    if args.generate_only:
        return
    run.run([*run.cli, "--help"])  # compile every module into the bytecode cache
    t_start = time.perf_counter()
    if "backup" in only:
        section_backup(run, rep, lay.root, work, args.rounds)
    if "incremental" in only:
        section_incremental(run, rep, lay.root, work, args.rounds)
    chain = None
    if {"restore", "upload", "files"} & set(only):
        chain = ensure_chain(run, rep, lay, work, args.verify)
    if "restore" in only and chain:
        section_restore(run, rep, chain, work, args.rounds)
    if "upload" in only and chain:
        section_upload(run, rep, chain, work, args.rounds)
    if "files" in only and chain:
        section_files(
            run, rep, chain, work, args.files, args.cycles, args.files_rounds or args.rounds
        )
    if "startup" in only:
        section_startup(run, rep, work, args.startup_runs)
    if rep.rss:
        rep.say(
            "peak RSS (ours): " + ", ".join(f"{k} {v / MiB:.0f} MiB" for k, v in rep.rss.items())
        )
    rep.say(f"# done in {time.perf_counter() - t_start:.0f} s; {machine()}")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (work / f"results-{args.files}-{stamp}.json").write_text(
        json.dumps(
            {
                "args": vars(args) | {"work": str(work), "profile": str(args.profile)},
                "lines": rep.lines,
                "data": rep.data,
            },
            indent=1,
            default=str,
        )
    )
    if args.clean:
        for p in work.glob(f"*-{args.files}-*"):
            if not p.name.startswith("results-"):
                reset(p)


if __name__ == "__main__":
    main()

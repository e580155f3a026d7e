"""Soak: the ``watch`` service for hundreds of cycles with random faults and random SIGKILLs.

    .venv/bin/python bench/soak.py [--cycles 200] [--stores glacier,moto,seaweedfs]
        [--seed 1] [--kill-every 6] [--fault-rate 0.5] [--work DIR]

Not part of CI (it runs for a long while). For each store (the Glacier emulator, moto and
SeaweedFS, the S3 servers behind the fault proxy; see bench/soak_targets.py) it:

1. writes a configuration (age encryption to a fresh identity, two backups per cycle, small part
   sizes, a 2 s read timeout, maintenance every 20 s) and starts ``glacier-backup watch``;
2. runs ``glacier-backup backup`` over a changing tree (small files changed, added and deleted
   each time; every eighth cycle carries 6-11 MiB of incompressible data, so that uploads have
   several parts) until 2 x ``--cycles`` backups went through, i.e. ``--cycles`` cycles sealed;
   now and then a backup is itself SIGKILLed (it does not count: the next one recovers);
3. meanwhile, after each backup, plans a random fault with probability ``--fault-rate`` (an
   error, throttling, a reset, a dropped answer, a stall past the read timeout, a cut request,
   for the next one to three matching requests; a fault not fired by then is replaced, so
   faults do not pile up into an outage) and SIGKILLs the service every ``--kill-every``
   seconds on average, starting it again at once;
4. then lets it finish: faults off, no more kills, one clean restart, until every marker is
   filed under ``done/``;
5. checks the store with plain boto3: every sealed cycle (every marker written) has exactly one
   archive, and each archive, decrypted with the ``age`` CLI, is a tar whose ``cycle.json`` has
   the SHA-256 the marker recorded and whose every file has the size and SHA-256 its
   ``cycle.json`` gives.

It prints, per store and in total: cycles backed up, cycles uploaded, service kills, backups
killed, faults injected (fired), then lost / duplicated / corrupt / failed markers, which must
all be 0 (exit 1 otherwise). The figures of a run are in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.soak_targets import Target, open_target
from tests.support.killpoints import glacier_backup, write_config
from tests.support.servers import FAKE_AWS

HOST = "soakhost"


@dataclass
class Tally:
    """What one store's soak did and found."""

    store: str
    backups: int = 0
    cycles_sealed: int = 0
    cycles_uploaded: int = 0
    service_kills: int = 0
    backups_killed: int = 0
    faults_planned: int = 0
    faults_fired: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    failed_markers: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    uploads_left: int = 0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """Nothing lost, duplicated, corrupt, failed or unexpected."""
        return not (
            self.lost or self.duplicated or self.corrupt or self.failed_markers or self.unexpected
        )


class ServiceUnderFire:
    """``glacier-backup watch`` as a child, SIGKILLed at random moments and started again."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv, self.env, self.log = argv, env, log
        self.kills = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._cease = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the service (its output appended to the log)."""
        with self._lock, open(self.log, "ab") as out:
            self._proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=out)

    def fire(self, seed: int, mean_seconds: float) -> None:
        """SIGKILL the service every ``mean_seconds`` on average (exponential intervals) and
        start it again at once, until :meth:`cease_fire`."""
        rng = random.Random(seed)

        def loop() -> None:
            while not self._cease.wait(rng.expovariate(1 / mean_seconds)):
                with self._lock:
                    proc = self._proc
                if proc is None or proc.poll() is not None:
                    continue
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                self.kills += 1
                self.start()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def cease_fire(self) -> None:
        """No more kills (waits for the killing thread)."""
        self._cease.set()
        if self._thread is not None:
            self._thread.join()

    def restart(self) -> None:
        """A clean stop and start: every pending marker is looked at again at once."""
        self.stop()
        self.start()

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL if it does not end)."""
        with self._lock:
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _mutate(src: Path, rng: random.Random, cycle: int) -> None:
    """Change the tree a little: edits, new files, deletions; a big file every 8th cycle."""
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.name != "big.bin")
    for p in rng.sample(files, min(len(files), rng.randint(0, 3))):
        p.unlink()
    for _ in range(rng.randint(1, 4)):
        d = src / f"d{rng.randint(0, 5)}"
        d.mkdir(exist_ok=True)
        (d / f"f{rng.randint(0, 40)}.txt").write_bytes(os.urandom(rng.randint(1, 64 << 10)))
    big = src / "big.bin"
    if cycle % 8 == 7:
        big.write_bytes(os.urandom(rng.randint(6, 11) << 20))
    else:
        big.unlink(missing_ok=True)


def _markers(marker_dir: Path) -> dict[str, dict[str, object]]:
    """Every marker written so far (pending or filed), by cycle id."""
    out = {}
    for sub in ("", "done", "failed", "quarantine"):
        for p in (marker_dir / sub).glob("cycle-*.json"):
            m = json.loads(p.read_text())
            out[str(m["cycle_id"])] = m | {"where": sub or "pending"}
    return out


def _backup(config: Path, env: dict[str, str], rng: random.Random, tally: Tally) -> None:
    """One ``backup``; one in fifteen is SIGKILLed part-way (the next one recovers)."""
    if rng.random() < 1 / 15:
        proc = subprocess.Popen(
            glacier_backup(config, "backup"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.05, 0.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            tally.backups_killed += 1
        proc.wait()
        return
    r = subprocess.run(glacier_backup(config, "backup"), env=env, capture_output=True, check=False)
    if r.returncode not in (0, 3):
        raise RuntimeError(f"backup failed ({r.returncode}): {r.stderr.decode()[-2000:]}")
    tally.backups += 1


def _setup(work: Path, target: Target) -> tuple[Path, Path]:
    """The source tree, an age identity and the configuration; returns (config, identity)."""
    (work / "src").mkdir(parents=True)
    identity = work / "identity.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = next(
        line.split(": ")[1]
        for line in identity.read_text().splitlines()
        if line.startswith("# public key: ")
    )
    store = target.store_table() | {"connect_timeout": "2s", "read_timeout": "2s"}
    config = write_config(
        work / "config.toml",
        {
            "state_dir": work / "state",
            "backup": {
                "sources": [str(work / "src")],
                "spool_dir": work / "spool",
                "host": HOST,
                "increments_per_cycle": 1,
                "compression_level": 1,
            },
            "watch": {
                "marker_dir": work / "spool" / "markers",
                "keep_local_cycles": 1,
                "stop_timeout": "5s",
                "maintenance_every": "20s",
            },
            "encryption": {"recipients": [recipient], "identity_file": str(identity)},
            "store": store,
            "upload": {"part_size": target.part_size, "concurrency": 2, "retries": 3},
        },
    )
    return config, identity


def soak(target: Target, work: Path, args: argparse.Namespace, rng: random.Random) -> Tally:
    """Run one store's soak (see the module docstring) and check what it left."""
    tally = Tally(target.name)
    started = time.monotonic()
    config, identity = _setup(work, target)
    env = {**os.environ, **FAKE_AWS}
    marker_dir = work / "spool" / "markers"
    service = ServiceUnderFire(glacier_backup(config, "watch"), env, work / "service.log")
    service.start()
    service.fire(rng.randrange(1 << 30), args.kill_every)
    try:
        step = 0
        while tally.backups < 2 * args.cycles:  # a killed backup does not count: it is redone
            _mutate(work / "src", rng, step // 2)
            _backup(config, env, rng, tally)
            if rng.random() < args.fault_rate:
                target.inject(rng)
                tally.faults_planned += 1
            if step % 20 == 19:
                done = len(list((marker_dir / "done").glob("*.json")))
                faults = target.faults_injected()
                print(
                    f"  {target.name}: {step + 1} backups, {done} cycles uploaded, "
                    f"{service.kills} kills, {faults} faults",
                    flush=True,
                )
            step += 1
        # Seal what is open, so that every backup taken is in some cycle.
        subprocess.run(glacier_backup(config, "seal"), env=env, capture_output=True, check=True)
    finally:
        service.cease_fire()
        tally.faults_fired = target.faults_injected()
        target.clear_faults()
    service.restart()
    try:
        _wait_until_filed(marker_dir, args.settle)
    finally:
        service.stop()
    tally.service_kills = service.kills
    _check(target, identity, marker_dir, tally)
    tally.seconds = time.monotonic() - started
    return tally


def _wait_until_filed(marker_dir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not list(marker_dir.glob("cycle-*.json")):
            return
        time.sleep(1)


def _check(target: Target, identity: Path, marker_dir: Path, tally: Tally) -> None:
    """Every marker's cycle: exactly one archive, which decrypts and matches its cycle.json."""
    markers = _markers(marker_dir)
    tally.cycles_sealed = len(markers)
    tally.failed_markers = sorted(c for c, m in markers.items() if m["where"] != "done")
    by_cycle: dict[str, list[str]] = {}
    stored = target.archives()
    for item in stored:
        name = item.key.rsplit("/", 1)[-1].split(".", 1)[0]
        if not item.key.startswith(f"{HOST}/") or name not in markers:
            tally.unexpected.append(item.key)
            continue
        by_cycle.setdefault(name, []).append(item.key)
    tally.lost = sorted(set(markers) - set(by_cycle))
    tally.duplicated = sorted(c for c, keys in by_cycle.items() if len(keys) > 1)
    tally.cycles_uploaded = len(by_cycle)
    for item in stored:
        name = item.key.rsplit("/", 1)[-1].split(".", 1)[0]
        if name in markers:
            problem = _archive_problem(target.fetch(item), identity, markers[name])
            if problem:
                tally.corrupt.append(f"{item.key}: {problem}")
    tally.uploads_left = target.uploads_in_progress()


def _archive_problem(blob: bytes, identity: Path, marker: dict[str, object]) -> str | None:
    """Why an archive is not the sealed cycle its marker names, or None."""
    age = subprocess.run(
        ["age", "-d", "-i", str(identity)], input=blob, capture_output=True, check=False
    )
    if age.returncode:
        return f"age -d failed: {age.stderr.decode().strip()}"
    with tarfile.open(fileobj=io.BytesIO(age.stdout), mode="r:") as tar:
        members = tar.getmembers()
        first = tar.extractfile(members[0])
        cycle_json = first.read() if first is not None else b""
        if hashlib.sha256(cycle_json).hexdigest() != marker["cycle_json_sha256"]:
            return "cycle.json is not the one the marker recorded"
        cycle = json.loads(cycle_json)
        contents = {m.name.split("/", 1)[1]: tar.extractfile(m) for m in members[1:] if m.isfile()}
        for f in cycle["files"]:
            data = contents.get(f["name"])
            body = data.read() if data is not None else None
            if body is None or len(body) != f["size"]:
                return f"{f['name']}: missing or of another size"
            if hashlib.sha256(body).hexdigest() != f["sha256"]:
                return f"{f['name']}: SHA-256 differs from cycle.json"
    return None


def _report(tallies: list[Tally]) -> None:
    cols = ["store", "backups", "sealed", "uploaded", "kills", "backups killed", "faults",
            "lost", "dup", "corrupt", "failed", "unexpected", "uploads left",
            "minutes"]  # fmt: skip
    rows = [
        [t.store, t.backups, t.cycles_sealed, t.cycles_uploaded, t.service_kills,
         t.backups_killed, t.faults_fired, len(t.lost), len(t.duplicated), len(t.corrupt),
         len(t.failed_markers), len(t.unexpected), t.uploads_left, f"{t.seconds / 60:.1f}"]
        for t in tallies
    ]  # fmt: skip
    total = ["total", *(sum(int(r[i]) for r in rows) for i in range(1, len(cols) - 1))]
    rows.append([*total, f"{sum(t.seconds for t in tallies) / 60:.1f}"])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(v) for v in r) + " |")
    for t in tallies:
        for what in ("lost", "duplicated", "corrupt", "failed_markers", "unexpected"):
            for item in getattr(t, what):
                print(f"{t.store}: {what}: {item}")


def main() -> int:
    """Run the soak on each store; exit 1 unless every store came out clean."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=200, help="cycles per store")
    p.add_argument("--stores", default="glacier,moto,seaweedfs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--kill-every", type=float, default=6.0, help="mean seconds between kills")
    p.add_argument("--fault-rate", type=float, default=0.5, help="chance of a fault per backup")
    p.add_argument("--settle", type=float, default=1800.0, help="seconds to let uploads finish")
    p.add_argument("--work", type=Path, help="keep the run's files here (default: a temp dir)")
    args = p.parse_args()
    rng = random.Random(args.seed)
    os.environ.update(FAKE_AWS)
    tallies = []
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        root = args.work or Path(tmp)
        for name in args.stores.split(","):
            work = root / name
            print(f"{name}: {args.cycles} cycles, seed {args.seed}", flush=True)
            with open_target(name, work) as target:
                tallies.append(soak(target, work, args, rng))
    _report(tallies)
    return 0 if all(t.clean for t in tallies) else 1


if __name__ == "__main__":
    sys.exit(main())

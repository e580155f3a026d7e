"""Upload benchmarks: our encrypted multipart upload vs boto3's managed transfer, and memory.

    /work/venv/bin/python bench/bench_upload.py [--size-mib 512] [--part-mib 16] [--concurrency 4]

1. Throughput, same moto server, same part size and concurrency: ``upload_cycle`` (bundle +
   age encryption + SHA-256 part checksums) of a sealed cycle vs ``boto3 upload_file`` of the
   plaintext data file. Prints both rates and the ratio (target >= 1.0).
2. Peak RSS of an upload into the local store, in a child process, with a 1 GiB and a 4 GiB
   bundle (sparse data files): must agree within 10% and stay under
   64 MiB + (concurrency + 1) x part size.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

MiB = 1 << 20
HERE = Path(__file__).resolve()
ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def make_cycle(spool: Path, size: int, sparse: bool) -> Path:
    """A sealed cycle with one data file of ``size`` bytes (sparse, or a repeated random block)."""
    from localbackup.cycle import CycleFile, IncrementManifest, SealedCycle

    d = spool / "cycles" / "20260101T000000Z"
    d.mkdir(parents=True)
    h = hashlib.sha256()
    block = bytes(MiB) if sparse else os.urandom(MiB)
    with open(d / "inc-0000.tar.zst", "wb") as f:
        if sparse:
            f.truncate(size)
        for _ in range(size // MiB):
            if not sparse:
                f.write(block)
            h.update(block)
    (d / "inc-0000.index.zst").write_bytes(b"")
    t = datetime(2026, 1, 1, tzinfo=UTC)
    inc = IncrementManifest(
        0,
        "full",
        None,
        t,
        t,
        CycleFile("inc-0000.tar.zst", size, h.hexdigest()),
        CycleFile("inc-0000.index.zst", 0, hashlib.sha256().hexdigest()),
    )
    cycle = SealedCycle("bench", "20260101T000000Z", "incremental", t, t, (inc,))
    (d / "cycle.json").write_bytes(cycle.render())
    return d


def recipient() -> str:
    from uploader.crypto import generate_identity

    return generate_identity().recipient().to_string()


async def our_upload(cycle_dir: Path, store: object, state: Path, part: int, conc: int) -> None:
    from uploader.catalogue import Catalogue
    from uploader.config import EncryptionConfig, UploadConfig
    from uploader.upload import upload_cycle

    with Catalogue.in_state_dir(state) as cat:
        async with store as s:  # type: ignore[attr-defined]
            await upload_cycle(
                cycle_dir,
                s,
                cat,
                EncryptionConfig(recipients=(recipient(),)),
                UploadConfig(part_size=part, concurrency=conc, retries=3),
            )


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("moto did not start")


def throughput(size: int, part: int, conc: int, work: Path) -> tuple[float, float]:
    import boto3
    from boto3.s3.transfer import TransferConfig

    from uploader.stores.s3 import S3Store

    os.environ.update(ENV)
    proc, url = start_moto()
    try:
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
        client.create_bucket(Bucket="bench")
        cycle = make_cycle(work / "spool", size, sparse=False)
        data_file = cycle / "inc-0000.tar.zst"
        warm = make_cycle(work / "warm", MiB, sparse=False)
        cfg = TransferConfig(
            multipart_threshold=part, multipart_chunksize=part, max_concurrency=conc
        )

        def run_ours(tag: str, d: Path) -> float:
            t0 = time.perf_counter()
            store = S3Store("bench", f"{tag}/", "STANDARD", endpoint_url=url, region="us-east-1")
            asyncio.run(our_upload(d, store, work / f"state-{tag}", part, conc))
            elapsed = time.perf_counter() - t0
            client.delete_object(Bucket="bench", Key=f"{tag}/bench/20260101T000000Z.tar.age")
            return elapsed

        def run_boto3(tag: str, path: Path) -> float:
            t0 = time.perf_counter()
            client.upload_file(str(path), "bench", f"{tag}/plain", Config=cfg)
            elapsed = time.perf_counter() - t0
            client.delete_object(Bucket="bench", Key=f"{tag}/plain")
            return elapsed

        # Warm both (imports, service models, page cache), then keep the best of two runs each.
        run_ours("warm", warm)
        run_boto3("warm", warm / "inc-0000.tar.zst")
        subprocess.run(["cat", str(data_file)], stdout=subprocess.DEVNULL, check=True)
        ours = min(run_ours(f"ours{i}", cycle) for i in range(2))
        theirs = min(run_boto3(f"boto{i}", data_file) for i in range(2))
        return ours, theirs
    finally:
        proc.terminate()
        proc.wait(10)


def child_memory(cycle_dir: str, vault: str, state: str, part: int, conc: int) -> None:
    from uploader.stores.local import LocalStore

    asyncio.run(our_upload(Path(cycle_dir), LocalStore(Path(vault)), Path(state), part, conc))
    # ru_maxrss keeps the high-water mark the forked parent had before exec; VmHWM belongs to
    # this process image only, so it is the one reported (both are printed).
    hwm = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, hwm)


def peak_rss(size: int, part: int, conc: int, work: Path) -> int:
    base = work / f"mem-{size}"
    cycle = make_cycle(base / "spool", size, sparse=True)
    out = subprocess.run(
        [
            sys.executable,
            str(HERE),
            "--child-memory",
            str(cycle),
            str(base / "vault"),
            str(base / "state"),
            str(part),
            str(conc),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    shutil.rmtree(base)
    return int(out.split()[-1])  # VmHWM


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size-mib", type=int, default=512)
    p.add_argument("--part-mib", type=int, default=16)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--child-memory", nargs=5)
    a = p.parse_args()
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if a.child_memory:
        c, v, s, part, conc = a.child_memory
        child_memory(c, v, s, int(part), int(conc))
        return
    part, conc, size = a.part_mib * MiB, a.concurrency, a.size_mib * MiB
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        work = Path(tmp)
        ours, theirs = throughput(size, part, conc, work)
        print(f"## throughput: {a.size_mib} MiB, part {a.part_mib} MiB, concurrency {conc}, moto")
        for label, secs in (
            ("glacier-backup (bundle+age+sha256)", ours),
            ("boto3 upload_file", theirs),
        ):
            print(f"{label:36} {secs:6.2f} s {size / MiB / secs:7.1f} MiB/s")
        print(f"ratio (ours / boto3 throughput): {theirs / ours:.2f}  (target >= 1.0)")
        if a.skip_memory:
            return
        small = peak_rss(1 << 30, part, conc, work)
        large = peak_rss(4 << 30, part, conc, work)
        bound = 64 * MiB + (conc + 1) * part
        print(f"## peak RSS, local store, part {a.part_mib} MiB, concurrency {conc}")
        print(f"1 GiB bundle: {small / MiB:.1f} MiB   4 GiB bundle: {large / MiB:.1f} MiB")
        print(
            f"difference: {abs(large - small) / small:.1%} (limit 10%)   "
            f"bound 64 MiB + {conc + 1} x part = {bound / MiB:.0f} MiB: "
            f"{'ok' if max(small, large) <= bound and abs(large - small) <= small / 10 else 'FAIL'}"
        )


if __name__ == "__main__":
    main()

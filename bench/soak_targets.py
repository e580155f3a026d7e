"""The stores bench/soak.py runs the service against, each behind its fault injector.

- ``glacier``: the project's Glacier emulator (a process on 127.0.0.1), faults through its
  control API (errors, throttling, cut requests and answers, dropped connections);
- ``moto`` and ``seaweedfs``: the two S3 servers of the tests, each behind the fault proxy of
  tests/support/faultproxy.py (503 SlowDown, 500, resets, dropped answers, stalls longer than the
  configured read timeout).

Each target lists what the store holds and fetches every archive with plain boto3 (Glacier:
inventory and archive-retrieval jobs on the emulator's virtual clock), independently of the
code under test, so that bench/soak.py can check each archive for itself.
"""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3

from emulators.glacier import run_emulator
from tests.support.faultproxy import INTERNAL_ERROR, SLOW_DOWN, FaultProxy, FaultRule
from tests.support.servers import FAKE_AWS, moto_server_process, seaweedfs_server_process

REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class Stored:
    """One archive in the store: its key (from the object key or the vault description) and a
    way to fetch its bytes."""

    key: str
    ident: str  # S3 key, or Glacier ArchiveId


class Target(Protocol):
    """A store for the soak: its ``[store]`` table, faults, and an independent look inside."""

    name: str
    part_size: str

    def store_table(self) -> dict[str, Any]:
        """The ``[store]`` section of the configuration (the endpoint the service uses)."""
        ...

    def inject(self, rng: random.Random) -> str:
        """Plan one random fault (replacing one not fired yet); what it is."""
        ...

    def faults_injected(self) -> int:
        """Faults that fired so far."""
        ...

    def clear_faults(self) -> None:
        """No more faults."""
        ...

    def archives(self) -> list[Stored]:
        """Every archive the store holds now."""
        ...

    def fetch(self, item: Stored) -> bytes:
        """The bytes of one archive."""
        ...

    def uploads_in_progress(self) -> int:
        """Multipart uploads left in progress."""
        ...


@dataclass
class S3Target:
    """moto or SeaweedFS, behind the fault proxy."""

    name: str
    server: str
    proxy: FaultProxy
    storage_class: str
    bucket: str = field(default_factory=lambda: f"soak-{uuid.uuid4().hex[:12]}")
    part_size: str = "5MiB"

    def __post_init__(self) -> None:
        self._s3 = boto3.client("s3", endpoint_url=self.server, region_name=REGION, **_keys())
        self._s3.create_bucket(Bucket=self.bucket)

    def store_table(self) -> dict[str, Any]:
        return {
            "type": "s3",
            "bucket": self.bucket,
            "storage_class": self.storage_class,
            "endpoint_url": self.proxy.url,
            "region": REGION,
        }

    def inject(self, rng: random.Random) -> str:
        op = rng.choice(
            ["UploadPart", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload",
             "HeadObject", "ListParts", "ListObjectsV2"]
        )  # fmt: skip
        kind = rng.choice(["error", "error", "reset", "drop", "stall"])
        self.proxy.clear()
        rule = FaultRule(
            op,
            kind,
            error=rng.choice([SLOW_DOWN, INTERNAL_ERROR]),
            times=rng.randint(1, 3),
            seconds=3.0 if kind == "stall" else None,  # longer than the read timeout
        )
        self.proxy.add(rule)
        return f"{op} {kind}"

    def faults_injected(self) -> int:
        return self.proxy.injected()

    def clear_faults(self) -> None:
        self.proxy.clear()

    def archives(self) -> list[Stored]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [Stored(o["Key"], o["Key"]) for p in pages for o in p.get("Contents", [])]

    def fetch(self, item: Stored) -> bytes:
        return bytes(self._s3.get_object(Bucket=self.bucket, Key=item.ident)["Body"].read())

    def uploads_in_progress(self) -> int:
        return len(self._s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []))


@dataclass
class GlacierTarget:
    """The Glacier emulator and one vault."""

    emulator: Any
    name: str = "glacier"
    vault: str = field(default_factory=lambda: f"soak-{uuid.uuid4().hex[:12]}")
    part_size: str = "1MiB"

    def __post_init__(self) -> None:
        self._glacier = boto3.client(
            "glacier", endpoint_url=self.emulator.endpoint_url, region_name=REGION, **_keys()
        )
        self._glacier.create_vault(accountId="-", vaultName=self.vault)

    def store_table(self) -> dict[str, Any]:
        return {
            "type": "glacier",
            "vault": self.vault,
            "region": REGION,
            "endpoint_url": self.emulator.endpoint_url,
        }

    def inject(self, rng: random.Random) -> str:
        control = self.emulator.control
        op = rng.choice(
            ["UploadMultipartPart", "UploadMultipartPart", "InitiateMultipartUpload",
             "CompleteMultipartUpload", "ListParts"]
        )  # fmt: skip
        kind = rng.choice(["error", "throttle", "cut_request", "drop"])
        count = rng.randint(1, 3)
        control.clear_faults()
        if kind == "error":
            control.fail_next(count, status=rng.choice([500, 503]), operation=op)
        elif kind == "throttle":
            control.throttle_next(count, operation=op)
        elif kind == "cut_request" and op == "UploadMultipartPart":
            control.cut_request(rng.randint(1, 512 << 10), operation=op, count=count)
        else:
            kind = "drop"
            control.drop_next(count, operation=op)
        return f"{op} {kind}"

    def faults_injected(self) -> int:
        return sum(self.emulator.control.state()["faults_injected"].values())

    def clear_faults(self) -> None:
        self.emulator.control.clear_faults()

    def _job_output(self, params: dict[str, Any]) -> bytes:
        job = self._glacier.initiate_job(accountId="-", vaultName=self.vault, jobParameters=params)
        self.emulator.control.advance(13 * 3600)  # done (every tier), output not yet expired
        out = self._glacier.get_job_output(accountId="-", vaultName=self.vault, jobId=job["jobId"])
        return bytes(out["body"].read())

    def archives(self) -> list[Stored]:
        self.emulator.control.refresh_inventory(self.vault)
        inventory = json.loads(self._job_output({"Type": "inventory-retrieval"}))
        out = []
        for a in inventory["ArchiveList"]:
            try:
                key = str(json.loads(a["ArchiveDescription"])["key"])
            except (ValueError, KeyError, TypeError):
                key = f"(not ours) {a['ArchiveDescription'][:40]}"
            out.append(Stored(key, a["ArchiveId"]))
        return out

    def fetch(self, item: Stored) -> bytes:
        return self._job_output(
            {"Type": "archive-retrieval", "ArchiveId": item.ident, "Tier": "Expedited"}
        )

    def uploads_in_progress(self) -> int:
        r = self._glacier.list_multipart_uploads(accountId="-", vaultName=self.vault)
        return len(r.get("UploadsList", []))


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": FAKE_AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
    }


@contextlib.contextmanager
def open_target(name: str, work: Path) -> Iterator[Target]:
    """Start the server(s) of ``name`` (glacier, moto, seaweedfs) and yield the target."""
    if name == "glacier":
        with run_emulator(work / "emulator") as emu:
            yield GlacierTarget(emu)
        return
    server = (
        moto_server_process() if name == "moto" else seaweedfs_server_process(work / "seaweedfs")
    )
    # moto refuses reads of DEEP_ARCHIVE objects until restored; SeaweedFS only labels them.
    storage_class = "STANDARD" if name == "moto" else "DEEP_ARCHIVE"
    with server as url, FaultProxy(url) as proxy:
        yield S3Target(name, url, proxy, storage_class)

"""A user's vault to migrate: several cycles backed up from a changing tree, uploaded into a
Glacier emulator vault with the old configuration, and a new configuration for an S3 bucket
(moto). Tests drive ``glacier-backup migrate`` as a real process, or the use case in-process
with the emulator's virtual clock."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import structlog

from emulators.glacier import Emulator
from localbackup.config import BackupConfig
from localbackup.step import run_backup_step
from tests.localbackup.test_extract import Snapshot, _mutations, snapshot
from tests.support.killpoints import glacier_backup, write_config
from tests.support.servers import FAKE_AWS
from tests.uploader.conftest import make_bucket
from tests.uploader.glacier_support import glacier_client, make_vault
from uploader.archive import METADATA_FORMAT
from uploader.catalogue import Catalogue
from uploader.crypto import write_identity_file
from uploader.maintenance import storage_class_for
from uploader.migrate import MigrateOutcome, MigrateRequest, MigrateSetup, migrate
from uploader.stores import open_store
from watcher.cli import main as cli_main
from watcher.commands import inventory, upload
from watcher.config import AppConfig, load_config

HOST = "h"
HOUR = 3600.0
DAY = 24 * HOUR
PART = 8 << 20  # the smallest power-of-two part S3 takes (5 MiB minimum)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def cli(config: AppConfig, command: Any, *argv: str) -> int:
    """Run one command's ``run`` in this process (fast: uploads, inventories)."""
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.run(args, config))


@dataclass
class Vault:
    """The old (vault) and new (S3) configurations of one user, and what was backed up."""

    root: Path
    emu: Emulator
    moto: str
    src: Path
    identity: Path
    vault: str
    bucket: str
    old: Path
    new: Path
    snapshots: dict[str, list[Snapshot]] = field(default_factory=dict)

    @property
    def old_config(self) -> AppConfig:
        return load_config(self.old)

    @property
    def new_config(self) -> AppConfig:
        return load_config(self.new)

    def argv(self, *args: str) -> list[str]:
        """``glacier-backup --config NEW --log-format json migrate --from OLD ARGS``."""
        return glacier_backup(self.new, "migrate", "--from", str(self.old), *args)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **FAKE_AWS}
        return subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=300, env=env, check=False
        )

    def main(
        self, *args: str, config: Path | None = None, source: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The same command line through ``watcher.cli.main`` in this process (no start-up
        cost); stdout and stderr captured. ``config`` and ``source`` replace the two files."""
        argv = self.argv(*args)
        argv = argv[argv.index("--config") :]
        for option, path in (("--config", config), ("--from", source)):
            if path is not None:
                argv[argv.index(option) + 1] = str(path)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli_main(argv)
            finally:
                structlog.reset_defaults()
        return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())

    def point(self, *, old: str | None = None, new: str | None = None) -> None:
        """Send the vault's (``old``) or the bucket's (``new``) traffic to another endpoint
        (a relay proxy); the stores keep their names."""
        for path, url, was in ((self.old, old, self.emu.endpoint_url), (self.new, new, self.moto)):
            if url is not None:
                path.write_text(path.read_text().replace(json.dumps(was), json.dumps(url)))

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.moto, region_name="us-east-1")

    def objects(self) -> dict[str, bytes]:
        """Every object in the bucket, by key (cold ones restored first: moto at once)."""
        client = self.s3()
        listed = client.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        out = {}
        for o in listed:
            if o.get("StorageClass") in ("GLACIER", "DEEP_ARCHIVE"):
                client.restore_object(
                    Bucket=self.bucket,
                    Key=o["Key"],
                    RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Bulk"}},
                )
            out[o["Key"]] = client.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
        return out

    def open_uploads(self) -> list[dict[str, Any]]:
        return list(self.s3().list_multipart_uploads(Bucket=self.bucket).get("Uploads", []))

    def vault_archives(self) -> list[str]:
        """The vault's archives: the cycles' (and the original tool's), not the cycles'
        metadata objects (which ``migrate`` leaves: the destination makes them again)."""
        vault = self.emu.control.state()["vaults"][self.vault]
        described = vault["descriptions"]
        return [a for a in vault["archive_ids"] if METADATA_FORMAT not in described.get(a, "")]

    def requests(self, operation: str) -> int:
        return self.emu.control.request_count(operation)

    def catalogue(self) -> Catalogue:
        return Catalogue.in_state_dir(self.new_config.state_dir)

    def inventory_ready(self) -> None:
        """The vault's daily inventory taken, and its job (`inventory --request`) finished:
        the next migrate fetches it."""
        self.emu.control.refresh_inventory(self.vault)
        assert cli(self.old_config, inventory, "inventory", "--request") == 0
        self.emu.control.advance(5 * HOUR)

    def now(self) -> datetime:
        """The emulator's virtual time: the clock of in-process migrations."""
        return datetime.fromtimestamp(self.emu.control.now(), UTC)

    async def sleep(self, seconds: float) -> None:
        """Waiting, on the virtual clock: no real time passes."""
        self.emu.control.advance(seconds)

    def migrate(self, request: MigrateRequest, ui: Any) -> MigrateOutcome:
        """The use case in this process, on the emulator's clock."""
        return asyncio.run(self._migrate(request, ui))

    async def _migrate(self, request: MigrateRequest, ui: Any) -> MigrateOutcome:
        old, new = self.old_config, self.new_config
        with Catalogue.in_state_dir(new.state_dir) as catalogue:
            async with open_store(old.store) as source, open_store(new.store) as dest:
                setup = MigrateSetup(
                    source=source,
                    dest=dest,
                    catalogue=catalogue,
                    old_catalogue=catalogue,
                    host=HOST,
                    upload=new.upload,
                    spool_root=new.state_dir / "migrate-spool",
                    dest_class=storage_class_for(new.store),
                )
                return await migrate(setup, request, ui, clock=self.now, sleep=self.sleep)


def make_vault_user(
    root: Path,
    emu: Emulator,
    moto: str,
    *,
    cycles: int = 2,
    big: int = 0,
    storage_class: str = "STANDARD",
    concurrency: int = 2,
) -> Vault:
    """``cycles`` cycles of a full and one incremental (the tree changing before each backup;
    ``big`` random bytes in the first cycle only), uploaded into a new emulator vault."""
    src = root / "src"
    src.mkdir(parents=True)
    identity = root / "identity.txt"
    write_identity_file(identity)
    recipient = next(
        line.split(": ", 1)[1] for line in identity.read_text().splitlines() if "public key" in line
    )
    vault, bucket = make_vault(emu.endpoint_url), make_bucket(moto)
    base = {
        "state_dir": str(root / "state"),
        "backup": {
            "sources": [str(src)],
            "spool_dir": str(root / "spool"),
            "host": HOST,
            "increments_per_cycle": 1,
        },
        "encryption": {"recipients": [recipient], "identity_file": str(identity)},
    }
    old = {
        **base,
        "store": {
            "type": "glacier",
            "vault": vault,
            "region": "us-east-1",
            "endpoint_url": emu.endpoint_url,
        },
    }
    new = {
        **base,
        "store": {
            "type": "s3",
            "bucket": bucket,
            "prefix": "backups/",
            "storage_class": storage_class,
            "region": "us-east-1",
            "endpoint_url": moto,
        },
        "upload": {"part_size": "8MiB", "concurrency": concurrency},
    }
    write_config(root / "old.toml", old)
    write_config(root / "new.toml", new)
    v = Vault(root, emu, moto, src, identity, vault, bucket, root / "old.toml", root / "new.toml")
    _back_up(v, cycles, big)
    assert cli(v.old_config, upload, "upload") == 0
    return v


def _back_up(v: Vault, cycles: int, big: int) -> None:
    cfg = BackupConfig(
        sources=(v.src,), spool_dir=v.root / "spool", increments_per_cycle=1, host=HOST
    )
    steps = _mutations(v.src)
    for i in range(2 * cycles):
        if i < len(steps):
            steps[i]()
        else:
            (v.src / f"more-{i}.txt").write_text(f"change {i}\n")
        if i == 0 and big:  # the first cycle's archive takes several parts
            (v.src / "big.bin").write_bytes(os.urandom(big))
        elif i == 2 and big:
            (v.src / "big.bin").unlink()
        result = run_backup_step(cfg, v.root / "markers", now=T0 + timedelta(days=i))
        v.snapshots.setdefault(result.cycle_id, []).append(snapshot(v.src))


def put_legacy_archive(v: Vault, data: bytes, name: str) -> str:
    """An archive the original tool uploaded: its description is the archive's local path."""
    r = glacier_client(v.emu.endpoint_url).upload_archive(
        vaultName=v.vault, archiveDescription=f"/var/backups/{name}", body=data
    )
    return str(r["archiveId"])

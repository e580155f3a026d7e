"""Glacier Vault Lock: the emulator enforces AWS's immutable-archive policy, and pruning plans
around it (a delete the policy denies is never sent)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emulators.glacier import Emulator, run_emulator
from tests.uploader.glacier_support import glacier_client, glacier_store, make_vault
from uploader.catalogue import Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.maintenance.executor import MaintenanceConfig, run_maintenance
from uploader.maintenance.retention import RetentionConfig
from uploader.object_lock import vault_lock_days
from uploader.upload import upload_cycle

from .conftest import build_cycle

DAY = 86400.0
HOST = "testhost"


def deny_younger_than(days: int, vault: str = "v") -> str:
    """The policy AWS documents for immutable archives: no delete before ``days`` days."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "deny-based-on-archive-age",
                    "Principal": "*",
                    "Effect": "Deny",
                    "Action": "glacier:DeleteArchive",
                    "Resource": [f"arn:aws:glacier:us-east-1:012345678901:vaults/{vault}"],
                    "Condition": {"NumericLessThan": {"glacier:ArchiveAgeInDays": str(days)}},
                }
            ],
        }
    )


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator of our own: these tests move its virtual clock by weeks."""
    with run_emulator(tmp_path_factory.mktemp("vault-lock")) as e:
        yield e


def _lock(endpoint: str, vault: str, policy: str, *, complete: bool = True) -> str:
    g = glacier_client(endpoint)
    lock_id = g.initiate_vault_lock(vaultName=vault, policy={"Policy": policy})["lockId"]
    if complete:
        g.complete_vault_lock(vaultName=vault, lockId=lock_id)
    return str(lock_id)


def test_the_emulator_enforces_a_completed_vault_lock(emu: Emulator, aws_env: None) -> None:
    g = glacier_client(emu.endpoint_url)
    vault = make_vault(emu.endpoint_url)
    archive = g.upload_archive(vaultName=vault, body=b"x" * 100)["archiveId"]
    lock_id = _lock(emu.endpoint_url, vault, deny_younger_than(10), complete=False)
    assert g.get_vault_lock(vaultName=vault)["State"] == "InProgress"
    g.complete_vault_lock(vaultName=vault, lockId=lock_id)
    got = g.get_vault_lock(vaultName=vault)
    assert got["State"] == "Locked" and vault_lock_days(got["Policy"]) == 10
    with pytest.raises(g.exceptions.ClientError, match="AccessDenied"):
        g.abort_vault_lock(vaultName=vault)  # a completed lock stays for good
    with pytest.raises(g.exceptions.ClientError, match="AccessDeniedException"):
        g.delete_archive(vaultName=vault, archiveId=archive)
    emu.control.advance(11 * DAY)
    g.delete_archive(vaultName=vault, archiveId=archive)


def test_reading_a_policy() -> None:
    assert vault_lock_days(deny_younger_than(365)) == 365
    unconditional = json.dumps(
        {"Statement": [{"Effect": "Deny", "Action": ["glacier:*"], "Principal": "*"}]}
    )
    assert vault_lock_days(unconditional) == float("inf")
    allow = json.dumps({"Statement": [{"Effect": "Allow", "Action": "glacier:DeleteArchive"}]})
    assert vault_lock_days(allow) is None
    assert vault_lock_days("not json") is None


async def test_prune_plans_around_the_vault_lock_and_sends_no_denied_delete(
    tmp_path: Path, emu: Emulator, aws_env: None
) -> None:
    vault = make_vault(emu.endpoint_url)
    _lock(emu.endpoint_url, vault, deny_younger_than(30, vault))
    async with glacier_store(emu.endpoint_url, vault) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            keys = []
            for day in (1, 2):
                d = build_cycle(
                    tmp_path / "spool", [2000], host=HOST, cycle_id=f"2026010{day}T000000Z"
                )
                rec = await upload_cycle(
                    d, store, cat, EncryptionConfig(mode="none"), UploadConfig()
                )
                keys.append(rec.key)
            uploaded = max(a.uploaded_at for a in cat.archives())
            config = MaintenanceConfig(
                # room for one archive; a min_age shorter than the lock: the lock keeps it
                retention=RetentionConfig(
                    max_store_size=max(a.size for a in cat.archives()), keep_last=1, min_age=DAY
                ),
                storage_class="GLACIER_VAULT",
                host=HOST,
                sweep_orphans=False,
            )

            emu.control.advance(2 * DAY)
            deletes = emu.control.request_count("DeleteArchive")
            report = await run_maintenance(store, cat, config, uploaded + timedelta(days=2))
            assert report.plan is not None and report.deleted == []
            old = next(d for d in report.plan.decisions if d.key == keys[0])
            assert (old.action, old.rule) == ("keep", "locked")
            until = (old.created + timedelta(days=30)).astimezone(UTC)
            assert old.reason.startswith(f"locked until {until:%Y-%m-%d %H:%M} UTC")
            assert emu.control.request_count("DeleteArchive") == deletes  # none was sent

            emu.control.advance(29 * DAY)  # past the policy's 30 days
            later = await run_maintenance(store, cat, config, uploaded + timedelta(days=31))
            assert later.deleted == [keys[0]] and later.problems == []
    assert datetime.now(UTC) < until  # the real clock never moved: the emulator's did

"""run_maintenance against the Glacier emulator through the glacier store (virtual clock).

The emulator makes inventories only when told (``refresh_inventory``, AWS's daily pass), jobs
finish after their tier delay of virtual time, and finished jobs vanish after the output TTL.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emulators.glacier import Emulator, run_emulator
from tests.uploader.glacier_support import REGION, glacier_client, glacier_store, make_vault
from uploader import catalogue as cm
from uploader.catalogue import CATALOGUE_FILE, Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.maintenance.executor import MaintenanceConfig, MaintenanceReport, run_maintenance
from uploader.maintenance.retention import RetentionConfig
from uploader.stores.glacier.description import ArchiveDescription
from uploader.stores.glacier.store import GlacierStore
from uploader.upload import upload_cycle
from watcher.config import AppConfig, config_from_dict

from .conftest import build_cycle, with_metadata

HOST = "testhost"
H = 3600.0
PLAIN = EncryptionConfig(mode="none")


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator of our own: these tests move its virtual clock by days."""
    with run_emulator(
        tmp_path_factory.mktemp("glacier-maintenance"),
        tier_delays={"Standard": 4 * H},
        output_ttl=24 * H,
    ) as e:
        yield e


def _now(emu: Emulator) -> datetime:
    return datetime.fromtimestamp(emu.control.now(), UTC)


def _config(request: bool = False, **retention: object) -> MaintenanceConfig:
    return MaintenanceConfig(
        retention=RetentionConfig(**retention),  # type: ignore[arg-type]
        storage_class="GLACIER_VAULT",
        host=HOST,
        request_inventory=request,
    )


async def _pass(
    store: GlacierStore, cat: Catalogue, emu: Emulator, cfg: MaintenanceConfig | None = None
) -> MaintenanceReport:
    report = await run_maintenance(store, cat, cfg or _config(), _now(emu))
    assert report.problems == []
    return report


async def _upload(store: GlacierStore, cat: Catalogue, spool: Path, day: int) -> str:
    d = build_cycle(spool, [3000 + day], cycle_id=f"202601{day:02d}T000000Z", seed=day)
    return (await upload_cycle(d, store, cat, PLAIN, UploadConfig())).key


async def test_first_run_with_no_inventory_yet(
    emu: Emulator, tmp_path: Path, aws_env: None
) -> None:
    async with glacier_store(emu.endpoint_url) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            await _upload(store, cat, tmp_path / "spool", 1)
            report = await _pass(store, cat, emu)
            assert "no inventory yet" in report.inventory_status
            assert report.reconciliation is None and report.plan is not None
            # asked again only after the retry delay, and still no error
            assert "no inventory yet" in (await _pass(store, cat, emu)).inventory_status


async def test_inventory_lag_and_reconcile(emu: Emulator, tmp_path: Path, aws_env: None) -> None:
    vault = make_vault(emu.endpoint_url)
    async with glacier_store(emu.endpoint_url, vault) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            first = await _upload(store, cat, tmp_path / "spool", 1)
            emu.control.refresh_inventory(vault)  # AWS's daily pass
            emu.control.advance(2 * 24 * H)
            late = await _upload(store, cat, tmp_path / "spool", 2)  # after the inventory
            report = await _pass(store, cat, emu)
            assert report.jobs_in_flight == 1 and "in progress" in report.inventory_status
            emu.control.advance(5 * H)
            report = await _pass(store, cat, emu)
            rec = report.reconciliation
            assert rec is not None
            assert [a.key for a in rec.of("confirmed")] == [first]
            assert [a.key for a in rec.of("metadata_confirmed")] == with_metadata(first)[:1]
            # never MISSING, nor is its metadata object
            assert sorted(a.key for a in rec.of("not_judged")) == with_metadata(late)
            assert rec.of("missing") == []
            assert cm.archive_id_of(cat, store.name, first)  # the ArchiveId is now known


async def test_expired_job_output_is_requested_again(
    emu: Emulator, tmp_path: Path, aws_env: None
) -> None:
    vault = make_vault(emu.endpoint_url)
    async with glacier_store(emu.endpoint_url, vault) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            await _upload(store, cat, tmp_path / "spool", 1)
            emu.control.refresh_inventory(vault)
            await _pass(store, cat, emu, _config(request=True))
            (job,) = cm.inventory_state(cat, store.name).jobs
            emu.control.advance(4 * H + 24 * H + 60)  # finished, then its output expired
            report = await _pass(store, cat, emu)
            assert report.reconciliation is None
            (again,) = cm.inventory_state(cat, store.name).jobs
            assert again.job_id != job.job_id and again.status == "InProgress"


async def test_several_finished_jobs_in_one_pass(
    emu: Emulator, tmp_path: Path, aws_env: None
) -> None:
    vault = make_vault(emu.endpoint_url)
    async with glacier_store(emu.endpoint_url, vault) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            key = await _upload(store, cat, tmp_path / "spool", 1)
            emu.control.refresh_inventory(vault)
            for _ in range(3):  # e.g. started by earlier runs whose catalogue was lost
                await store.initiate_inventory_job()
            emu.control.advance(5 * H)
            report = await _pass(store, cat, emu)  # finds them with list_jobs
            assert report.reconciliation is not None
            assert [a.key for a in report.reconciliation.of("confirmed")] == [key]
            assert cm.inventory_state(cat, store.name).jobs == ()
            assert cat.query("SELECT COUNT(*) FROM inventories")[0][0] == 1


async def test_lost_catalogue_rebuilt_and_foreign_left_alone(
    emu: Emulator, tmp_path: Path, aws_env: None
) -> None:
    vault = make_vault(emu.endpoint_url)
    raw = glacier_client(emu.endpoint_url)
    raw.upload_archive(vaultName=vault, archiveDescription="holiday photos", body=b"p" * 4000)
    other = ArchiveDescription(key="otherhost/20250101T000000Z.tar", host="otherhost").render()
    raw.upload_archive(vaultName=vault, archiveDescription=other, body=b"o" * 4000)
    async with glacier_store(emu.endpoint_url, vault) as store:
        with Catalogue(tmp_path / "old.sqlite3") as old:
            keys = [await _upload(store, old, tmp_path / "spool", d) for d in (1, 2, 3)]
            sizes = {a.key: a.size for a in old.archives()}
            metas = {m.archive_key: m.expected.size for m in cm.metadata_objects(old, store.name)}
    emu.control.refresh_inventory(vault)
    emu.control.advance(200 * 24 * H)  # old enough for the 90-day minimum
    async with glacier_store(emu.endpoint_url, vault) as store:
        with Catalogue(tmp_path / "new.sqlite3") as cat:  # the catalogue was lost
            # the newest with its metadata object, plus the foreign archives
            budget = sizes[keys[2]] + metas[keys[2]] + 8000
            cfg = _config(request=True, max_store_size=budget, keep_last=1)
            await _pass(store, cat, emu, cfg)
            emu.control.advance(5 * H)
            report = await _pass(store, cat, emu, cfg)
            rec = report.reconciliation
            assert rec is not None
            assert sorted(a.key or "" for a in rec.of("adopt")) == keys
            assert len(rec.of("foreign")) == 2
            assert {a.key for a in cat.archives()} == {keys[2]}  # two pruned after adoption
            assert sorted(report.deleted) == keys[:2]
            # each with its metadata object
            assert sorted(report.metadata_deleted) == with_metadata(*keys[:2])[::2]
            # only our two archives (and their metadata objects) were deleted from the vault
            assert emu.control.state()["vaults"][vault]["archives"] == 4


async def test_an_unconfirmed_archive_missing_from_a_later_inventory_is_requeued(
    emu: Emulator, tmp_path: Path, aws_env: None
) -> None:
    """Review regression (phantom archive): recorded as completed (unconfirmed) after Glacier
    dropped an upload that was never completed. The first inventory taken well after it does
    not show it: flagged MISSING, and the cycle is pending again."""
    from structlog.testing import capture_logs

    from uploader.upload import pending_cycle_dirs

    from .test_phantom_archive import make_phantom

    vault = make_vault(emu.endpoint_url)
    spool = tmp_path / "spool"
    with Catalogue(tmp_path / "state" / CATALOGUE_FILE, clock=lambda: _now(emu)) as cat:
        confirmed = await _upload_to(emu, vault, cat, spool, 2)
        phantom = build_cycle(spool, [2 * 1024 * 1024 + 5], cycle_id="20260101T000000Z")
        await make_phantom(phantom, emu.endpoint_url, vault, cat)
        async with glacier_store(emu.endpoint_url, vault) as store:
            assert pending_cycle_dirs(spool, cat, store.name) == []
            emu.control.advance(2 * 24 * H)  # well past the grace period
            emu.control.refresh_inventory(vault)
            await _pass(store, cat, emu, _config(request=True))
            emu.control.advance(5 * H)
            with capture_logs() as logs:
                report = await _pass(store, cat, emu)
            rec = report.reconciliation
            assert rec is not None
            key = "testhost/20260101T000000Z.tar"
            assert [a.key for a in rec.of("missing")] == [key]
            assert [a.key for a in rec.of("confirmed")] == [confirmed]  # left alone
            requeued = [e for e in logs if e["event"] == "maintenance.unconfirmed_requeued"]
            assert [(e["key"], e["cycle"]) for e in requeued] == [(key, phantom.name)]
            assert cat.find_archive(store.name, phantom.name) is None
            assert pending_cycle_dirs(spool, cat, store.name) == [phantom]
            again = await upload_cycle(phantom, store, cat, PLAIN, UploadConfig())
            assert again.confirmed_at is not None
        # two archives, each with its metadata object
        assert emu.control.state()["vaults"][vault]["archives"] == 4


async def _upload_to(emu: Emulator, vault: str, cat: Catalogue, spool: Path, day: int) -> str:
    async with glacier_store(emu.endpoint_url, vault) as store:
        return await _upload(store, cat, spool, day)


async def test_a_fetched_inventory_is_not_fetched_again_by_later_passes(
    emu: Emulator, tmp_path: Path, aws_env: None
) -> None:
    """Review regression: once an inventory was fetched (and its job dropped from the
    catalogue), every later pass found "no jobs", listed the vault's jobs, adopted the same
    finished job again and fetched its output again, for as long as Glacier listed it (~24 h)."""
    vault = make_vault(emu.endpoint_url)
    async with glacier_store(emu.endpoint_url, vault) as store:
        with Catalogue(tmp_path / "c.sqlite3") as cat:
            await _upload(store, cat, tmp_path / "spool", 1)
            emu.control.refresh_inventory(vault)
            await _pass(store, cat, emu, _config(request=True))
            emu.control.advance(5 * H)
            assert (await _pass(store, cat, emu)).reconciliation is not None
            fetched = emu.control.request_count("GetJobOutput")
            initiated = emu.control.request_count("InitiateJob")
            for _ in range(3):  # hourly passes, inside the job's 24-hour window
                emu.control.advance(H)
                report = await _pass(store, cat, emu)
                assert report.reconciliation is None
                assert report.jobs_in_flight == 0
            assert emu.control.request_count("GetJobOutput") == fetched
            assert emu.control.request_count("InitiateJob") == initiated
            assert cat.query("SELECT COUNT(*) FROM inventories")[0][0] == 1


def _inventory_cli(config: AppConfig, *argv: str) -> int:
    from watcher.commands import inventory

    parser = argparse.ArgumentParser()
    inventory.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["inventory", *argv])
    return int(args.run(args, config))


async def test_inventory_request_wait_through_the_cli(
    emu: Emulator, tmp_path: Path, aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """``inventory --request --wait`` against the emulator: it requests one job, polls it at
    ``--poll-interval`` (not only every 15 minutes, which a small interval used to give: the
    state machine never polled again and --wait never ended) and reconciles once it is done."""
    from .test_restore_cold import config_dict

    vault = make_vault(emu.endpoint_url)
    src = tmp_path / "src"
    src.mkdir()
    store = {"type": "glacier", "vault": vault, "region": REGION, "endpoint_url": emu.endpoint_url}
    config = config_from_dict(config_dict(tmp_path, src, store), tmp_path / "config.toml")
    config = dataclasses.replace(config, backup=dataclasses.replace(config.backup, host=HOST))
    with Catalogue.in_state_dir(config.state_dir) as cat:
        key = await _upload_to(emu, vault, cat, tmp_path / "spool", 1)
    emu.control.refresh_inventory(vault)
    capsys.readouterr()
    jobs = emu.control.request_count("InitiateJob")
    checks = emu.control.request_count("DescribeJob")
    result: dict[str, object] = {}

    def inventory() -> None:
        try:
            result["rc"] = _inventory_cli(config, "--request", "--wait", "--poll-interval", "0.05")
        except BaseException as exc:  # reported by the test thread
            result["error"] = exc

    thread = threading.Thread(target=inventory, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while (
        emu.control.request_count("InitiateJob") == jobs
        or emu.control.request_count("DescribeJob") < checks + 5
    ):
        assert thread.is_alive(), result
        assert time.monotonic() < deadline, "the job was not requested and polled"
        await asyncio.sleep(0.05)
    emu.control.advance(5 * H)
    await asyncio.to_thread(thread.join, 60)
    assert not thread.is_alive(), "--wait did not finish by itself"
    assert result == {"rc": 0}
    printed = capsys.readouterr().out
    assert "checking again in 0.05 s" in printed
    assert "reconciled with the store's state" in printed and "confirmed: 1" in printed
    assert emu.control.request_count("InitiateJob") == jobs + 1  # requested once
    with Catalogue.in_state_dir(config.state_dir) as cat:
        assert cat.query("SELECT COUNT(*) FROM inventories")[0][0] == 1
        assert cm.archive_id_of(cat, f"glacier://{REGION}/-/{vault}", key)


async def test_prune_shows_the_early_deletion_fee_before_deleting(
    emu: Emulator,
    tmp_path: Path,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review regression: ``prune`` (no --dry-run) printed its decisions and their estimated
    early-deletion fees only after the pass had deleted (and so paid) them."""
    from watcher.commands import prune

    from .test_restore_cold import config_dict

    vault = make_vault(emu.endpoint_url)
    src = tmp_path / "src"
    src.mkdir()
    store = {"type": "glacier", "vault": vault, "region": REGION, "endpoint_url": emu.endpoint_url}
    raw = config_dict(tmp_path, src, store)
    raw["backup"]["host"] = HOST
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    (tmp_path / "state").mkdir()
    path = tmp_path / "state" / CATALOGUE_FILE
    with Catalogue(path, clock=lambda: two_days_ago) as cat:
        keys = [await _upload_to(emu, vault, cat, tmp_path / "spool", d) for d in (1, 2)]
        # an archive and its metadata object are deleted together: their sizes count together
        sizes = {a.key: a.size for a in cm.prune_inputs(cat, f"glacier://{REGION}/-/{vault}")}
    raw["retention"] = {"min_age": "1d", "keep_last": 1, "max_store_size": 2 * sizes[keys[1]]}
    config = config_from_dict(raw, tmp_path / "config.toml")
    real_delete = GlacierStore.delete_archive

    async def delete_archive(self: GlacierStore, archive_id: str) -> None:
        print("DELETING NOW", flush=True)
        await real_delete(self, archive_id)

    monkeypatch.setattr(GlacierStore, "delete_archive", delete_archive)
    capsys.readouterr()
    parser = argparse.ArgumentParser()
    prune.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["prune"])
    assert await asyncio.to_thread(args.run, args, config) == 0
    printed = capsys.readouterr().out
    fee = next(line for line in printed.splitlines() if line.startswith("delete "))
    assert keys[0] in fee and "incurred" in fee
    assert printed.index(fee) < printed.index("DELETING NOW")
    # the archive, then its metadata object
    assert printed.count("DELETING NOW") == 2 and printed.count(fee) == 1
    assert "deleted 1 archive;" in printed

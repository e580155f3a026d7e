"""run_maintenance against the Glacier emulator through the glacier store (virtual clock).

The emulator makes inventories only when told (``refresh_inventory``, AWS's daily pass), jobs
finish after their tier delay of virtual time, and finished jobs vanish after the output TTL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emulators.glacier import Emulator, run_emulator
from tests.uploader.glacier_support import glacier_client, glacier_store, make_vault
from uploader import catalogue_maintenance as cm
from uploader.catalogue import Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.maintenance import MaintenanceConfig, MaintenanceReport, run_maintenance
from uploader.retention import RetentionConfig
from uploader.stores.glacier import GlacierStore
from uploader.stores.glacier_description import ArchiveDescription
from uploader.upload import upload_cycle

from .conftest import build_cycle

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
            assert [a.key for a in rec.of("not_judged")] == [late]  # never MISSING
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
    emu.control.refresh_inventory(vault)
    emu.control.advance(200 * 24 * H)  # old enough for the 90-day minimum
    async with glacier_store(emu.endpoint_url, vault) as store:
        with Catalogue(tmp_path / "new.sqlite3") as cat:  # the catalogue was lost
            budget = sizes[keys[2]] + 8000  # the newest, plus the foreign archives
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
            # only our two archives were deleted from the vault
            assert emu.control.state()["vaults"][vault]["archives"] == 3


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
    with Catalogue(tmp_path / "c.sqlite3", clock=lambda: _now(emu)) as cat:
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
        assert emu.control.state()["vaults"][vault]["archives"] == 2


async def _upload_to(emu: Emulator, vault: str, cat: Catalogue, spool: Path, day: int) -> str:
    async with glacier_store(emu.endpoint_url, vault) as store:
        return await _upload(store, cat, spool, day)

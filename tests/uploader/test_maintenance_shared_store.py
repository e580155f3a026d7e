"""Regression: in a store shared by several hosts, another host's archives stay foreign on every
pass (they were once adopted on the second pass and then pruned)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.uploader.conftest import build_cycle
from uploader import catalogue as cm
from uploader.catalogue import Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.maintenance.executor import MaintenanceConfig, run_maintenance
from uploader.maintenance.retention import RetentionConfig
from uploader.stores.local import LocalStore
from uploader.upload import upload_cycle

B_CYCLES = ["20250101T000000Z", "20250201T000000Z", "20250301T000000Z"]


async def test_other_hosts_archives_are_never_adopted_or_pruned(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    enc, up = EncryptionConfig(mode="none"), UploadConfig()
    cat_b = Catalogue(tmp_path / "stateB" / "c.sqlite3")
    async with LocalStore(vault) as s:
        for i, cid in enumerate(B_CYCLES):
            d = build_cycle(tmp_path / "spoolB", [5000 + i, 100], host="hostB", cycle_id=cid)
            await upload_cycle(d, s, cat_b, enc, up)
    cat_a = Catalogue(tmp_path / "stateA" / "c.sqlite3")
    async with LocalStore(vault) as s:
        d = build_cycle(tmp_path / "spoolA", [4000, 100], host="hostA", cycle_id="20250401T000000Z")
        await upload_cycle(d, s, cat_a, enc, up)
    cfg = MaintenanceConfig(
        retention=RetentionConfig(max_store_size=12_000, min_age=0, keep_last=1),
        storage_class="LOCAL",
        host="hostA",
    )
    now = datetime.now(UTC) + timedelta(days=1)
    deleted: list[str] = []
    async with LocalStore(vault) as s:
        for n in range(3):
            report = await run_maintenance(s, cat_a, cfg, now + timedelta(minutes=5 * n))
            assert report.reconciliation is not None
            counts = report.reconciliation.counts()
            assert counts.get("adopt", 0) == counts.get("metadata_adopt", 0) == 0
            deleted += report.deleted + report.metadata_deleted
    assert not [k for k in deleted if k.startswith("hostB/")]
    assert [a.host for a in cat_a.archives()] == ["hostA"]
    assert cm.metadata_objects(cat_a, f"local:{vault}")[0].host == "hostA"
    # hostB's archives and their metadata objects are all there
    assert sorted(p.name for p in (vault / "hostB").iterdir()) == sorted(
        f"{c}.{ext}" for c in B_CYCLES for ext in ("tar", "meta.tar")
    )

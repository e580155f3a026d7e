"""SIGKILL sweeps through the real ``glacier-backup`` process: ``prune`` killed between its
steps, and ``restore`` killed in its extraction phase. After each kill the next run of the
command (and ``inventory``) converges: the newest archive is never deleted, the catalogue ends up
saying what the store holds, and a restore ends with exactly the point in time asked for.

A few chosen points per command run here; bench/soak.py kills at random, many times.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.localbackup.test_extract import make_history, restored, snapshot
from tests.support.killpoints import (
    glacier_backup,
    run_until_killed,
    uploaded_config,
    write_config,
)
from tests.uploader.conftest import build_cycle, make_bucket
from uploader.catalogue import Catalogue, open_flags
from uploader.config import EncryptionConfig, UploadConfig
from uploader.stores.local import LocalStore
from uploader.upload import upload_cycle

CYCLES = ["20250101T000000Z", "20250201T000000Z", "20250301T000000Z"]


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        glacier_backup(config, *args), capture_output=True, text=True, check=False, timeout=300
    )
    return r


def _store_keys(vault: Path) -> set[str]:
    return {str(p.relative_to(vault)) for p in (vault / "testhost").glob("*.tar")}


def _catalogue_keys(state: Path) -> tuple[set[str], list[str]]:
    with Catalogue.in_state_dir(state) as cat:
        archives = {a.key for a in cat.archives()}
        flags = [f"{f.kind} {f.key}" for f in open_flags(cat, cat.archives()[0].store)]
    return archives, flags


async def _three_archives(tmp_path: Path) -> Path:
    """Three cycles uploaded a month apart, long ago, to a local store."""
    vault, spool = tmp_path / "vault", tmp_path / "spool"
    clock = {"now": datetime(2025, 1, 1, tzinfo=UTC)}
    with Catalogue(tmp_path / "state" / "catalogue.sqlite3", clock=lambda: clock["now"]) as cat:
        async with LocalStore(vault) as store:
            for i, cycle in enumerate(CYCLES):
                clock["now"] = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=31 * i)
                build_cycle(spool, [5000, 100], cycle_id=cycle, seed=i)
                await upload_cycle(
                    spool / "cycles" / cycle,
                    store,
                    cat,
                    EncryptionConfig(mode="none"),
                    UploadConfig(),
                )
    return write_config(
        tmp_path / "config.toml",
        {
            "state_dir": tmp_path / "state",
            "backup": {"sources": [str(tmp_path)], "spool_dir": spool, "host": "testhost"},
            "encryption": {"mode": "none"},
            "store": {"type": "local", "path": str(vault)},
            # Only the newest fits: the two older archives are pruned, the newest never.
            "retention": {"max_store_size": "20KiB", "min_age": "1s", "keep_last": 1},
        },
    )


@pytest.mark.parametrize(
    ("point", "nth"),
    [("prune.deletion_recorded", 1), ("prune.deleted", 1), ("prune.deletion_recorded", 2)],
)
async def test_prune_killed_between_its_steps_converges(
    tmp_path: Path, point: str, nth: int
) -> None:
    config = await _three_archives(tmp_path)
    vault, state = tmp_path / "vault", tmp_path / "state"
    newest = f"testhost/{CYCLES[-1]}.tar"
    run_until_killed(glacier_backup(config, "prune"), point, tmp_path, nth=nth)
    assert newest in _store_keys(vault)

    r = run(config, "inventory")  # global options, the TOML file, the exit code: for real
    assert r.returncode == 0, r.stdout + r.stderr
    archives, flags = _catalogue_keys(state)
    assert archives == _store_keys(vault) and newest in archives, r.stdout + r.stderr
    assert flags == []  # nothing we deleted ourselves is reported MISSING

    r = run(config, "prune")
    assert r.returncode == 0, r.stdout + r.stderr
    assert run(config, "inventory").returncode == 0
    assert _store_keys(vault) == {newest}
    assert _catalogue_keys(state) == ({newest}, [])


@pytest.mark.parametrize(("nth", "force"), [(1, False), (5, True)])
def test_a_restore_killed_while_extracting_leaves_the_target_as_it_was(
    tmp_path: Path, nth: int, force: bool
) -> None:
    h = make_history(tmp_path)
    config = uploaded_config(tmp_path, h.src, {"type": "local", "path": str(tmp_path / "vault")})
    out = tmp_path / "out"
    if force:  # a tree to replace
        out.mkdir()
        (out / "old.txt").write_text("the tree before the restore\n")
    args = ["restore", "--at", "1", "--to", str(out), "--yes", *(["--force"] * force)]
    run_until_killed(glacier_backup(config, *args), "restore.extracting", tmp_path, nth=nth)
    # Killed with members written into the staging directory: the target is untouched.
    if force:
        assert [p.name for p in out.iterdir()] == ["old.txt"]
    else:
        assert not out.exists()
    again = run(config, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert snapshot(restored(out, h.src)) == h.snapshots[1]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_a_cold_restore_killed_while_extracting_resumes_from_its_download(
    tmp_path: Path, moto_server: str, aws_env: None
) -> None:
    h = make_history(tmp_path)
    store = {
        "type": "s3",
        "bucket": make_bucket(moto_server),
        "storage_class": "DEEP_ARCHIVE",
        "endpoint_url": moto_server,
        "region": "us-east-1",
    }
    config = uploaded_config(tmp_path, h.src, store)
    out = tmp_path / "out"
    restore = glacier_backup(config, "restore", "--to", str(out), "--yes")
    run_until_killed(restore, "restore.extracting", tmp_path, nth=3)
    assert not out.exists()
    (download,) = (tmp_path / ".out.retrieval").glob("*.part")  # verified, kept for resuming
    again = run(config, "restore", "--to", str(out), "--resume")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "ranges downloaded and verified" in again.stdout
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]
    assert not download.exists()

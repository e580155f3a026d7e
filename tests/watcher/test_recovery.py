"""The host is gone: recover from the store alone, through the real ``glacier-backup`` command.

On each store (a local directory, S3 DEEP_ARCHIVE on a moto server, a Glacier vault on the
emulator): back up several cycles, upload, note what ``files``, ``cycles``, ``status`` and
``restore --path`` answer, lose the state directory and the spool, run ``inventory`` with the
identity, and get the same answers — without any archive being retrieved before the restore
itself.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulators.glacier import Emulator, run_emulator
from tests.localbackup.test_extract import snapshot
from tests.support.faultproxy import FaultProxy
from tests.support.killpoints import glacier_backup, run_until_killed
from tests.uploader.glacier_support import glacier_client, make_vault
from tests.watcher.service_harness import Project
from uploader.archive import METADATA_FORMAT

HOUR = 3600.0


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator of our own: these tests move its virtual clock by hours."""
    with run_emulator(tmp_path_factory.mktemp("glacier-recovery")) as e:
        yield e


def _files(p: Project, *words: str) -> Any:
    r = p.run("files", "--json", *words)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def backed_up(p: Project) -> None:
    """Two sealed cycles of three increments each (full, then changes and a deletion), and
    nothing open: everything the host knew is in the store once uploaded."""
    docs = p.src / "docs"
    docs.mkdir()
    for cycle in range(2):
        (docs / "notes.txt").write_text(f"cycle {cycle}, first version")
        (p.src / f"only-in-{cycle}.txt").write_text("x" * (100 + cycle))
        p.backup()
        (docs / "notes.txt").write_text(f"cycle {cycle}, second version, longer")
        (docs / f"new-{cycle}.bin").write_bytes(bytes(range(256)) * (cycle + 3))
        p.backup()
        (p.src / f"only-in-{cycle}.txt").unlink()
        p.backup()  # the third increment: the cycle is sealed
    r = p.run("upload")
    assert r.returncode == 0, r.stderr


def _cycles(p: Project) -> list[dict[str, Any]]:
    """``cycles --json`` without what only the spool knows (where a cycle is, when its
    directory was made) or the store's listing rounds (upload times)."""
    r = p.run("cycles", "--json")
    assert r.returncode == 0, r.stderr
    kept = ("cycle_id", "state", "sealed_at", "increments", "size")
    return [
        {k: c[k] for k in kept} | {"archive": {k: c["archive"][k] for k in ("key", "size")}}
        for c in json.loads(r.stdout)["cycles"]
    ]


def answers(p: Project) -> dict[str, Any]:
    """What the host says about its backups, without touching an archive."""
    status = p.status()
    return {
        "files *.txt": _files(p, "*.txt"),  # every version, and the deletions
        "files latest": _files(p, "latest"),
        "cycles": _cycles(p),  # every increment with its time and size
        "status": {
            "host": status["host"],
            "store_usage": status["store_usage"],
            "last_cycle": status["last_success"]["cycle_id"],
        },
    }


def restore_docs(p: Project, out: Path, *extra: str) -> int:
    r = p.run("restore", "latest", "--to", str(out), "--path", f"{p.src}/docs", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.returncode


def lose_the_host(p: Project) -> None:
    shutil.rmtree(p.root / "state")
    shutil.rmtree(p.spool)


def test_a_local_store_is_recovered_from_alone(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=2)
    backed_up(p)
    before = answers(p)
    restore_docs(p, tmp_path / "before")
    lose_the_host(p)
    assert p.run("files", "latest").stderr.strip() == "no backups yet"

    r = p.run("inventory")
    assert r.returncode == 0, r.stderr
    assert "recovered: 2 metadata object(s) of host" in r.stdout
    assert answers(p) == before
    restore_docs(p, tmp_path / "after")
    docs = str(p.src / "docs").lstrip("/")
    assert snapshot(tmp_path / "after" / docs) == snapshot(tmp_path / "before" / docs)
    # verify is at home on the new machine too: what it compares came with the metadata
    v = p.run("verify")
    assert v.returncode == 0, v.stdout + v.stderr
    assert "2 of 2 archives verified, 0 failed" in v.stdout


def _s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def _deep_archive(endpoint: str) -> str:
    """A new bucket's ``[store]`` table: DEEP_ARCHIVE archives (metadata objects: STANDARD)."""
    bucket = f"gb-{uuid.uuid4().hex[:12]}"
    _s3(endpoint).create_bucket(Bucket=bucket)
    return (
        f'type = "s3"\nbucket = "{bucket}"\nprefix = "backups/"\n'
        f'storage_class = "DEEP_ARCHIVE"\nendpoint_url = "{endpoint}"\nregion = "us-east-1"'
    )


def _restores(endpoint: str, store: str) -> dict[str, str | None]:
    """Each archive's x-amz-restore: S3 (and moto) set it once a restore_object was asked for."""
    bucket = store.split('bucket = "')[1].split('"', maxsplit=1)[0]
    s3 = _s3(endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    return {k: s3.head_object(Bucket=bucket, Key=k).get("Restore") for k in keys if ".tar." in k}


def test_an_s3_deep_archive_store_is_recovered_without_a_retrieval(
    tmp_path: Path, s3_endpoint: str, aws_env: None
) -> None:
    with FaultProxy(s3_endpoint) as wire:  # no faults: it counts the requests
        store = _deep_archive(wire.url)
        p = Project(tmp_path, increments=2, store=store, upload='part_size = "5MiB"')
        backed_up(p)
        before = answers(p)
        lose_the_host(p)
        r = p.run("inventory")
        assert r.returncode == 0, r.stderr
        assert answers(p) == before
        quote = p.run("restore", "latest", "--quote", "--path", f"{p.src}/docs")
        assert quote.returncode == 0, quote.stderr
        assert "tier Bulk: typically ready within 48 hours" in quote.stdout
        # nothing asked the server to restore an archive: recovery read only the hot metadata
        # objects, and the quote asks nothing
        assert wire.requests("RestoreObject") == 0
        assert wire.requests("GetObject") > 0  # the metadata objects were read
    restores = _restores(s3_endpoint, store)
    assert len(restores) == 2 and set(restores.values()) == {None}


def test_after_a_recovery_an_s3_restore_path_brings_the_files_back(
    tmp_path: Path, s3_endpoint_for_restores: str, aws_env: None
) -> None:
    """moto restores the archive first; SeaweedFS has no restore requests and the archive is
    read directly (issue 12 defect 8)."""
    with FaultProxy(s3_endpoint_for_restores) as wire:  # no faults: it counts the requests
        store = _deep_archive(wire.url)
        p = Project(tmp_path, increments=0, store=store, upload='part_size = "5MiB"')
        (p.src / "docs").mkdir()
        (p.src / "docs" / "a.txt").write_text("a")
        (p.src / "b.txt").write_text("b")
        p.backup()
        assert p.run("upload").returncode == 0
        lose_the_host(p)
        assert p.run("inventory").returncode == 0
        assert wire.requests("RestoreObject") == 0  # nothing asked before the restore itself
        restore_docs(p, tmp_path / "after", "--yes")  # the restore itself asks for a retrieval
        assert wire.requests("RestoreObject") == 1
    docs = str(p.src / "docs").lstrip("/")
    assert snapshot(tmp_path / "after" / docs) == snapshot(p.src / "docs")
    assert not (tmp_path / "after" / str(p.src / "b.txt").lstrip("/")).exists()


def test_a_glacier_vault_is_recovered_through_its_inventory_and_small_jobs(
    tmp_path: Path, emu: Emulator, aws_env: None
) -> None:
    vault = make_vault(emu.endpoint_url)
    store = (
        f'type = "glacier"\nvault = "{vault}"\nregion = "us-east-1"\n'
        f'endpoint_url = "{emu.endpoint_url}"'
    )
    p = Project(tmp_path, increments=2, store=store)
    backed_up(p)
    before = answers(p)
    lose_the_host(p)
    emu.control.refresh_inventory(vault)  # the vault's daily inventory

    r = p.run("inventory")  # an empty catalogue: asks for the vault's inventory (hours)
    assert r.returncode == 0, r.stderr
    assert "in progress" in r.stdout
    emu.control.advance(5 * HOUR)
    # (the emulator's hours are virtual: ask for the job now, not 15 minutes after the last check)
    r = p.run("inventory", "--wait", "--poll-interval", "0.05")  # adopts; metadata needs jobs
    assert r.returncode == 2, r.stdout + r.stderr
    assert "2 metadata object(s)" in r.stdout and "estimated retrieval cost: $" in r.stdout
    assert "add --yes" in r.stderr
    r = p.run("inventory", "--yes")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "requested 2 metadata retrieval job(s)" in r.stdout
    emu.control.advance(5 * HOUR)
    r = p.run("inventory")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "recovered: 2 metadata object(s)" in r.stdout
    assert answers(p) == before
    # the inventory, and a small job for each metadata object: no archive was retrieved
    jobs = glacier_client(emu.endpoint_url).list_jobs(vaultName=vault)["JobList"]
    descriptions = emu.control.state()["vaults"][vault]["descriptions"]
    retrieved = [descriptions[j["ArchiveId"]] for j in jobs if j["Action"] == "ArchiveRetrieval"]
    assert len(retrieved) == 2 and all(METADATA_FORMAT in d for d in retrieved)

    restore_docs(p, tmp_path / "after", "--yes")  # requests the archive's retrieval
    emu.control.advance(5 * HOUR)
    restore_docs(p, tmp_path / "after", "--resume")
    docs = str(p.src / "docs").lstrip("/")
    assert snapshot(tmp_path / "after" / docs) == snapshot(p.src / "docs")


def _as_host(p: Project, host: str) -> None:
    p.config.write_text(p.config.read_text().replace("[backup]\n", f'[backup]\nhost = "{host}"\n'))


def test_several_hosts_in_one_store_each_recover_their_own(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Project(tmp_path / "a", increments=0)
    b = Project(tmp_path / "b", increments=0)
    b.config.write_text(b.config.read_text().replace(str(b.vault), str(a.vault)))
    _as_host(a, "hosta")
    _as_host(b, "hostb")
    for proj, name in ((a, "a.txt"), (b, "b.txt")):
        (proj.src / name).write_text(name)
        proj.backup()
        assert proj.run("upload").returncode == 0
    lose_the_host(a)

    r = a.run("inventory")
    assert r.returncode == 0, r.stderr
    assert "foreign (left alone): 2" in r.stdout  # hostb's archive and metadata object
    assert [h["path"] for h in _files(a, "*.txt")] == [f"{a.src}/a.txt"]

    # hostb's metadata needs hostb's key: a's names itself and the archive it cannot open
    r = a.run("--host", "hostb", "inventory")
    assert r.returncode == 1
    assert str(a.identity) in r.stderr and "hostb/" in r.stderr
    assert "cannot open the metadata object hostb/" in r.stderr and ".tar.age" in r.stderr
    r = a.run("inventory", "--host", "hostb", "--identity", str(b.identity))
    assert r.returncode == 0, r.stderr
    as_b = a.run("--host", "hostb", "files", "--json", "*.txt")
    assert [h["path"] for h in json.loads(as_b.stdout)] == [f"{b.src}/b.txt"]
    assert [h["path"] for h in _files(a, "*.txt")] == [f"{a.src}/a.txt"]


def _cycle_order(name: str) -> tuple[str, int]:
    base, _, n = name.split(".", maxsplit=1)[0].partition("-")
    return base, int(n or 1)


def test_a_damaged_metadata_object_is_skipped_and_its_archive_still_restores(
    tmp_path: Path,
) -> None:
    p = Project(tmp_path, increments=2)
    backed_up(p)
    host = p.status()["host"]
    lose_the_host(p)
    # the first cycle's (two cycles made in one second are <id> and <id>-2)
    first = min((p.vault / host).glob("*.meta.age"), key=lambda f: _cycle_order(f.name))
    raw = bytearray(first.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    first.write_bytes(bytes(raw))
    r = p.run("inventory")
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"{first.name}" in r.stderr and "still restorable in full" in r.stderr
    assert "recovered: 1 metadata object(s)" in r.stdout
    cycle = first.name.split(".")[0]
    out = tmp_path / "out"
    r = p.run("restore", cycle, "--to", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / str(p.src / "docs" / "notes.txt").lstrip("/")).read_text() == (
        "cycle 0, second version, longer"
    )


def test_the_identity_kept_offline_is_needed_only_to_recover(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0)
    (p.src / "a.txt").write_text("a")
    p.backup()
    assert p.run("upload").returncode == 0
    kept = p.identity.read_bytes()
    p.identity.unlink()  # the backup host has the recipient only
    r = p.run("inventory")
    assert r.returncode == 0, r.stderr  # nothing to read: its own metadata is known
    assert p.run("verify").returncode == 0  # its metadata objects are just not decrypted
    lose_the_host(p)
    r = p.run("inventory")
    assert r.returncode == 2 and str(p.identity) in r.stderr  # now it is needed, and named
    p.identity.write_bytes(kept)
    assert p.run("inventory").returncode == 0
    assert [h["path"] for h in _files(p, "a.txt")] == [f"{p.src}/a.txt"]


def test_a_kill_between_the_archive_and_its_metadata_object_is_finished_before_done(
    tmp_path: Path,
) -> None:
    """The marker is filed under done/ only once both are in the store."""
    p = Project(tmp_path, increments=0)
    (p.src / "a.txt").write_text("a")
    p.backup()
    run_until_killed(glacier_backup(p.config, "upload"), "upload.before_metadata", tmp_path)
    host = p.status()["host"]
    assert [f.name.split(".", 1)[1] for f in (p.vault / host).iterdir()] == ["tar.age"]
    assert p.status()["markers"]["pending"] == 1
    svc = p.start_service()  # the service takes the pending marker
    try:
        svc.wait_for(lambda e: e["event"] == "watch.uploaded")
    finally:
        assert svc.stop() == 0
    assert sorted(f.name.split(".", 1)[1] for f in (p.vault / host).iterdir()) == [
        "meta.age",
        "tar.age",
    ]
    assert p.status()["markers"]["pending"] == 0
    assert len(svc.matching(lambda e: e["event"] == "upload.part_done")) == 1  # not the archive

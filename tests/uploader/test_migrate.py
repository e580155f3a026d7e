"""``glacier-backup migrate`` (its command line, run in this process; test_migrate_kills.py
runs it as a real process), from a Glacier vault (the emulator, on its virtual clock) to S3
(moto): several cycles moved, same bytes, same keys and metadata; the objects decrypt with the
age CLI and every point in time restores exactly from the new store; legacy archives; refusals
before anything is requested."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.glacier import Emulator, run_emulator
from tests.localbackup.test_extract import restored, snapshot
from tests.support.killpoints import glacier_backup
from tests.uploader.migrate_support import HOUR, Vault, cli, make_vault_user, put_legacy_archive
from tests.uploader.test_legacy_restore import _pass_file, make_legacy_history
from tests.uploader.test_legacy_restore import restored as legacy_restored
from uploader.catalogue import Catalogue, known_archives
from watcher.commands import restore, upload
from watcher.config import load_config


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator of this module's own: its tests move the virtual clock by hours."""
    with run_emulator(tmp_path_factory.mktemp("glacier-migrate")) as e:
        yield e


def vault_bytes(v: Vault, archive_id: str) -> bytes:
    return (v.emu.data_dir / "archives" / archive_id).read_bytes()


def archive_ids(v: Vault) -> dict[str, str]:
    """Our archives in the vault: key -> ArchiveId, as the old catalogue recorded them."""
    config = v.old_config
    with Catalogue.in_state_dir(config.state_dir) as catalogue:
        known = known_archives(catalogue, config.store.name)
    return {a.key: str(a.store_id) for a in known}


@pytest.mark.parametrize(
    ("server", "storage_class"),
    [("moto_server", "DEEP_ARCHIVE"), ("seaweedfs_server", "STANDARD")],
    ids=["moto", "seaweedfs"],  # SeaweedFS has no RestoreObject: its objects stay readable
)
def test_cycles_move_to_s3_and_every_point_in_time_restores_from_there(
    tmp_path: Path,
    emu: Emulator,
    aws_env: None,
    request: pytest.FixtureRequest,
    server: str,
    storage_class: str,
) -> None:
    endpoint = request.getfixturevalue(server)
    v = make_vault_user(
        tmp_path, emu, endpoint, cycles=3, big=17 << 20, storage_class=storage_class
    )
    ids = archive_ids(v)
    v.inventory_ready()
    jobs = v.requests("InitiateJob")

    quote = v.main("--quote")
    assert quote.returncode == 0, quote.stderr
    assert "to move: 3 archives" in quote.stdout
    for line in ("Bulk       5-12 hours", "Standard   3-5 hours", "Expedited  1-5 minutes"):
        assert line in quote.stdout
    assert "storage, first month" in quote.stdout and "early-deletion fees" in quote.stdout
    assert v.requests("InitiateJob") == jobs  # a quote requests nothing

    first = v.main("--yes")
    assert first.returncode == 0, first.stderr
    assert "requesting the retrieval of 3 archives" in first.stdout
    assert "retrievals in progress: 3" in first.stdout
    assert v.requests("InitiateJob") == jobs + 3
    assert v.s3().list_objects_v2(Bucket=v.bucket).get("Contents", []) == []

    emu.control.advance(13 * HOUR)  # Bulk: 5-12 hours
    done = v.main("--resume")
    assert done.returncode == 0, done.stderr
    assert "copied and verified: 3 of 3" in done.stdout
    assert v.requests("InitiateJob") == jobs + 3  # nothing requested twice
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    progress = [e for e in events if e["event"] == "migrate.progress"]
    total = sum(len(vault_bytes(v, i)) for i in ids.values())
    assert {e["total"] for e in progress} == {total}  # bytes done of the whole run, with an ETA
    assert progress[-1]["bytes"] == total and progress[-1]["eta_s"] == 0
    objects = v.objects()
    assert set(objects) == {f"backups/{key}" for key in ids}
    assert v.open_uploads() == []
    s3 = v.s3()
    for key, archive_id in ids.items():
        assert objects[f"backups/{key}"] == vault_bytes(v, archive_id)  # the same ciphertext
        head = s3.head_object(Bucket=v.bucket, Key=f"backups/{key}")
        assert head.get("StorageClass", "STANDARD") == storage_class
        assert head["Metadata"]["source-archive-id"] == archive_id
        assert head["Metadata"]["format"] == "glacier-backup-archive"
        assert head["Metadata"]["cycle-id"] == key.split("/")[1].split(".")[0]
        plain = subprocess.run(
            ["age", "-d", "-i", str(v.identity)],
            input=objects[f"backups/{key}"],
            capture_output=True,
            check=True,
        ).stdout
        bundle = tmp_path / "bundle.tar"
        bundle.write_bytes(plain)
        with tarfile.open(bundle) as tf:
            assert tf.getnames()[0] == f"{head['Metadata']['cycle-id']}/cycle.json"

    # The same metadata as a native upload of the cycle (plus source-archive-id).
    native = tmp_path / "native.toml"
    native.write_text(v.new.read_text().replace('"backups/"', '"native/"'))
    cycle = next(iter(v.snapshots))
    assert cli(load_config(native), upload, "upload", cycle) == 0
    key = f"h/{cycle}.tar.age"
    moved = s3.head_object(Bucket=v.bucket, Key=f"backups/{key}")["Metadata"]
    uploaded = s3.head_object(Bucket=v.bucket, Key=f"native/{key}")["Metadata"]
    assert moved == {**uploaded, "source-archive-id": ids[key]}

    config = v.new_config
    for cycle, snapshots in v.snapshots.items():
        for n, expected in enumerate(snapshots):
            out = tmp_path / f"out-{cycle}-{n}"
            args = ("restore", cycle, "--at", str(n), "--to", str(out), "--yes")
            assert cli(config, restore, *args) == 0
            assert snapshot(restored(out, v.src)) == expected, f"{cycle} increment {n}"
    # The new store's catalogue knows the cycles: nothing is uploaded again.
    assert cli(config, upload, "upload") == 0
    moved = {k for k in v.objects() if k.startswith("backups/")}
    assert {k for k in moved if ".tar." in k} == {f"backups/{k}" for k in ids}
    # each cycle's metadata object is made again at the destination (migrate moves archives)
    meta = {f"backups/{k.replace('.tar.age', '.meta.age')}" for k in ids}
    assert {k for k in moved if ".meta." in k} == meta
    again = v.main("--resume")
    assert again.returncode == 0, again.stderr
    assert "copied and verified: 3 of 3" in again.stdout


def test_the_original_tools_archives_move_as_they_are_with_include_legacy(
    tmp_path: Path, emu: Emulator, moto_server: str, aws_env: None
) -> None:
    v = make_vault_user(tmp_path / "user", emu, moto_server, cycles=1)
    history = make_legacy_history(tmp_path / "legacy")
    data = history.archive.read_bytes()
    legacy_id = put_legacy_archive(v, data, history.archive.name)
    v.inventory_ready()

    plain = v.main("--yes")
    assert plain.returncode == 0, plain.stderr
    assert f"{history.archive.name}: the original tool's: add --include-legacy" in plain.stdout
    assert "requesting the retrieval of 1 archive " in plain.stdout

    with_legacy = v.main("--yes", "--include-legacy")
    assert with_legacy.returncode == 0, with_legacy.stderr
    assert "requesting the retrieval of 1 archive " in with_legacy.stdout  # only the legacy one
    emu.control.advance(13 * HOUR)
    done = v.main("--resume", "--include-legacy")
    assert done.returncode == 0, done.stderr
    assert "copied and verified: 2 of 2" in done.stdout
    key = f"backups/h/legacy/{history.archive.name}"
    moved = v.objects()[key]
    assert moved == data
    head = v.s3().head_object(Bucket=v.bucket, Key=key)["Metadata"]
    assert head["source-archive-id"] == legacy_id
    assert head["legacy-description"] == f"/var/backups/{history.archive.name}"
    # Still restorable with restore-legacy, from the copy downloaded from the new store.
    local = tmp_path / history.archive.name
    local.write_bytes(moved)
    out = tmp_path / "out"
    r = subprocess.run(
        [
            *glacier_backup(None, "restore-legacy"),
            str(local),
            "--to",
            str(out),
            "--passphrase-file",
            str(_pass_file(tmp_path)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert legacy_restored(out, history.src) == history.expected[-1]


def test_refusals_request_nothing(
    tmp_path: Path, emu: Emulator, moto_server: str, aws_env: None
) -> None:
    v = make_vault_user(tmp_path, emu, moto_server, cycles=1)
    v.inventory_ready()
    assert v.main("--quote").returncode == 0  # fetches the inventory
    jobs = v.requests("InitiateJob")

    unattended = v.main()  # no terminal to ask on, no --yes
    assert unattended.returncode == 2
    assert "a retrieval is billed: add --yes" in unattended.stderr
    unknown = v.main("--yes", "20990101T000000Z")
    assert unknown.returncode == 2
    assert "no archive of 20990101T000000Z in the inventory" in unknown.stderr
    from_s3 = v.main("--yes", source=v.new)
    assert from_s3.returncode == 2
    assert "--from names the configuration of the Glacier vault" in from_s3.stderr
    to_vault = v.main("--yes", config=v.old)
    assert to_vault.returncode == 2
    assert "is a Glacier vault too: set [store] of --config to the new store" in to_vault.stderr
    v.new.write_text(v.new.read_text().replace('part_size = "8MiB"', 'part_size = "6MiB"'))
    odd = v.main("--yes")
    assert odd.returncode == 2
    assert "must be 1 MiB x 2^n" in odd.stderr
    assert v.requests("InitiateJob") == jobs


def test_without_an_inventory_one_is_requested_and_the_next_run_uses_it(
    tmp_path: Path, emu: Emulator, moto_server: str, aws_env: None
) -> None:
    v = make_vault_user(tmp_path, emu, moto_server, cycles=1)
    emu.control.refresh_inventory(v.vault)  # the vault's daily inventory pass
    first = v.main("--quote")
    assert first.returncode == 0, first.stderr
    assert "no inventory of" in first.stdout and "run the same command again later" in first.stdout
    emu.control.advance(5 * HOUR)
    second = v.main("--quote")
    assert second.returncode == 0, second.stderr
    assert "to move: 1 archives" in second.stdout


def test_into_a_local_store_the_copy_is_verified_by_reading_it_back(
    tmp_path: Path, emu: Emulator, moto_server: str, aws_env: None
) -> None:
    v = make_vault_user(tmp_path, emu, moto_server, cycles=1)
    ids = archive_ids(v)
    ((key, archive_id),) = ids.items()
    local = tmp_path / "nas"
    v.new.write_text(
        v.new.read_text().split("[store]")[0]
        + f'[store]\ntype = "local"\npath = "{local}"\n[upload]\npart_size = "1MiB"\n'
    )
    v.inventory_ready()
    assert v.main("--yes").returncode == 0
    emu.control.advance(13 * HOUR)
    done = v.main("--resume")
    assert done.returncode == 0, done.stderr
    assert (local / key).read_bytes() == vault_bytes(v, archive_id)
    assert "copied and verified (treehash:" in done.stdout  # no stored checksum: read back

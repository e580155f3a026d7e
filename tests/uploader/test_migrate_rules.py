"""The migration's rules, on the Glacier emulator's virtual clock (the use case's injected clock
and sleep): --max-per-day batches, the 90-day rule for deleting sources, and a tree-hash
mismatch that stops one archive and leaves its source alone while a verified one is deleted."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from emulators.glacier import Emulator, run_emulator
from tests.uploader.glacier_support import glacier_client
from tests.uploader.migrate_support import DAY, HOUR, Vault, make_vault_user
from tests.uploader.test_vault_lock import deny_younger_than
from uploader.catalogue import Catalogue, known_archives, pending_deletions
from uploader.migrate import MigrateRequest
from watcher.commands.terminal import TerminalUI


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator of this module's own: its tests move the virtual clock by months."""
    with run_emulator(tmp_path_factory.mktemp("glacier-migrate-rules")) as e:
        yield e


def requested(v: Vault) -> list[datetime]:
    """When each retrieval was requested (virtual time), as the catalogue recorded it."""
    with sqlite3.connect(v.new_config.state_dir / "catalogue.sqlite3") as db:
        rows = db.execute("SELECT requested_at FROM migration_requests ORDER BY requested_at")
        return [datetime.fromisoformat(r[0]) for r in rows]


def old_archives(v: Vault) -> dict[str, int]:
    """The old catalogue's archives of the vault: key -> size."""
    config = v.old_config
    with Catalogue.in_state_dir(config.state_dir) as catalogue:
        return {a.key: a.size for a in known_archives(catalogue, config.store.name)}


def test_max_per_day_batches_the_requests_over_the_clock(
    tmp_path: Path,
    emu: Emulator,
    moto_server: str,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    v = make_vault_user(tmp_path, emu, moto_server, cycles=3)
    sizes = [size for _, size in sorted(old_archives(v).items())]
    limit = sizes[0] + sizes[1]  # two archives a day
    v.inventory_ready()
    initiated = v.requests("InitiateJob")
    v.migrate(MigrateRequest(assume_yes=True, max_per_day=limit), TerminalUI())
    first = capsys.readouterr().out
    assert "requesting the retrieval of 2 archives" in first
    assert "2 daily batches" in first  # the quote said so
    assert len(requested(v)) == 2 and v.requests("InitiateJob") == initiated + 2
    day_one = requested(v)[0]
    assert f"still to request: 1 (from {day_one + timedelta(days=1):%Y-%m-%d %H:%M}" in first

    v.emu.control.advance(13 * HOUR)
    v.migrate(MigrateRequest(assume_yes=True, max_per_day=limit, resume=True), TerminalUI())
    assert v.requests("InitiateJob") == initiated + 2  # 13 hours later: nothing more requested
    assert "copied and verified: 2 of 3" in capsys.readouterr().out

    # --wait sleeps on the virtual clock until the next batch is due, then until it is ready.
    outcome = v.migrate(
        MigrateRequest(assume_yes=True, max_per_day=limit, wait=True, poll_interval=HOUR),
        TerminalUI(),
    )
    assert not outcome.failed and not outcome.pending
    times = requested(v)
    assert len(times) == 3 and v.requests("InitiateJob") == initiated + 3
    assert times[2] >= times[1] + timedelta(days=1)
    assert "copied and verified: 3 of 3" in capsys.readouterr().out
    assert len(v.objects()) == 3


def test_sources_are_deleted_only_once_verified_and_past_90_days(
    tmp_path: Path,
    emu: Emulator,
    moto_server: str,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    v = make_vault_user(tmp_path, emu, moto_server, cycles=2)
    first, second = sorted(old_archives(v))
    v.inventory_ready()
    created, deletes = v.now(), v.requests("DeleteArchive")
    one = MigrateRequest(
        cycles=(first.split("/")[1].split(".")[0],),
        assume_yes=True,
        wait=True,
        delete_source=True,
        poll_interval=HOUR,
    )
    v.migrate(one, TerminalUI())
    out = capsys.readouterr().out
    assert "copied and verified: 1 of 1" in out
    free = f"{created + timedelta(days=90):%Y-%m-%d}"
    assert f"kept in the vault: {first}, younger than 90 days: free to delete" in out
    assert free in out or f"{created + timedelta(days=91):%Y-%m-%d}" in out
    assert len(v.vault_archives()) == 2
    assert v.requests("DeleteArchive") == deletes

    v.emu.control.advance(91 * DAY)
    # Every archive now: the second is requested (not copied, so its source stays); the first,
    # verified and past 90 days, goes.
    v.migrate(MigrateRequest(assume_yes=True, delete_source=True), TerminalUI())
    out = capsys.readouterr().out
    assert f"deleted the source of {first} from the vault" in out
    assert second not in [line.split()[-1] for line in out.splitlines() if "deleted" in line]
    assert len(v.vault_archives()) == 1
    assert v.requests("DeleteArchive") == deletes + 1
    assert set(old_archives(v)) == {second}  # the old catalogue knows the first is gone
    config = v.old_config
    with Catalogue.in_state_dir(config.state_dir) as catalogue:
        assert [d.key for d in pending_deletions(catalogue, config.store.name)] == [first]
    assert f"backups/{first}" in v.objects()  # the copy stays, of course


def test_a_vault_lock_policy_keeps_sources_it_would_deny_deleting(
    tmp_path: Path,
    emu: Emulator,
    moto_server: str,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    v = make_vault_user(tmp_path, emu, moto_server, cycles=1)
    (key,) = old_archives(v)
    created = v.now()
    g = glacier_client(emu.endpoint_url)  # Vault Lock: no DeleteArchive before 365 days
    policy = {"Policy": deny_younger_than(365, v.vault)}
    g.complete_vault_lock(
        vaultName=v.vault, lockId=g.initiate_vault_lock(vaultName=v.vault, policy=policy)["lockId"]
    )
    emu.control.advance(91 * DAY)  # past the 90-day minimum, not past the lock
    v.inventory_ready()
    deletes = v.requests("DeleteArchive")
    request = MigrateRequest(assume_yes=True, wait=True, delete_source=True, poll_interval=HOUR)
    v.migrate(request, TerminalUI())
    out = capsys.readouterr().out
    assert "copied and verified: 1 of 1" in out
    assert f"kept in the vault: {key}, younger than 365 days (the vault's lock policy)" in out
    assert f"{created + timedelta(days=365):%Y-%m-%d}" in out
    assert v.requests("DeleteArchive") == deletes  # no delete the vault would refuse
    assert len(v.vault_archives()) == 1


def test_a_tree_hash_mismatch_stops_that_archive_and_leaves_its_source(
    tmp_path: Path,
    emu: Emulator,
    moto_server: str,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    v = make_vault_user(tmp_path, emu, moto_server, cycles=2)
    first, second = sorted(old_archives(v))
    emu.control.advance(91 * DAY)  # both past the vault's minimum: deletable once verified
    v.inventory_ready()
    deletes = v.requests("DeleteArchive")
    v.migrate(MigrateRequest(assume_yes=True), TerminalUI())
    emu.control.advance(13 * HOUR)
    with sqlite3.connect(v.new_config.state_dir / "catalogue.sqlite3") as db:
        (job_id,) = db.execute("SELECT job_id FROM migrations WHERE key = ?", (first,)).fetchone()
    # The job's output is a hard link to the archive: put a copy with one byte flipped in its
    # place (the archive itself stays as it was); Glacier still sends the true tree hash.
    output = emu.data_dir / "jobs" / job_id / "output"
    good = output.read_bytes()
    replace_file(output, good[:100] + bytes([good[100] ^ 1]) + good[101:])
    capsys.readouterr()
    gets = v.requests("GetJobOutput")
    outcome = v.migrate(MigrateRequest(resume=True, delete_source=True), TerminalUI())
    said = capsys.readouterr()
    assert len(outcome.failed) == 1 and f"copying {first} stopped" in outcome.failed[0]
    assert "do not match their tree hash" in said.err
    assert "the source archive is untouched" in said.err
    assert v.requests("GetJobOutput") == gets + 4 + 1  # read 4 times, then the other archive
    assert set(v.objects()) == {f"backups/{second}"}
    assert f"deleted the source of {second} from the vault" in said.out
    assert len(v.vault_archives()) == 1  # the failed archive's source stays
    assert v.requests("DeleteArchive") == deletes + 1

    cli = v.main("--resume")  # the command line says so too, and exits 1
    assert cli.returncode == 1
    assert f"copying {first} stopped" in cli.stderr
    assert "TaskGroup" not in cli.stderr and "sub-exception" not in cli.stderr
    assert f"FAILED: {first}:" in cli.stdout

    replace_file(output, good)  # the fault is gone: the next run copies it
    fixed = v.main("--resume")
    assert fixed.returncode == 0, fixed.stderr
    assert "copied and verified: 2 of 2" in fixed.stdout
    assert set(v.objects()) == {f"backups/{first}", f"backups/{second}"}
    assert v.open_uploads() == []
    assert len(v.vault_archives()) == 1


def replace_file(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` as a new file (a hard link elsewhere keeps the old bytes)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)

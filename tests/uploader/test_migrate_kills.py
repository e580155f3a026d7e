"""Real SIGKILLs of a real ``glacier-backup migrate`` process while it waits for retrievals,
while it downloads a range and while it uploads a part; then ``migrate --resume``: each archive
exactly once in S3, no retrieval requested twice, no verified range downloaded again, no
acknowledged part sent again.

The kill instants are conditions, not timings: the fault proxy (tests/support/faultproxy.py) in
front of the Glacier emulator or moto holds the chosen request, and the test waits until it is
held and the catalogue shows what was verified before it sends SIGKILL, or the child stops
itself at a named pause point. What the resumed run asks for is read from the proxy's request
log."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.glacier import Emulator, run_emulator
from tests.support.faultproxy import FaultProxy
from tests.support.killpoints import run_until_killed
from tests.support.s3requests import Request
from tests.support.servers import FAKE_AWS
from tests.support.waiting import wait_for
from tests.uploader.glacier_support import glacier_client
from tests.uploader.migrate_support import HOUR, PART, Vault, make_vault_user
from tests.watcher.service_harness import Service

OUTPUT = "/output"  # a Glacier job output, as the proxy sees it (GetObject, key .../output)


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator of this module's own: its tests move the virtual clock by hours."""
    with run_emulator(tmp_path_factory.mktemp("glacier-migrate-kills")) as e:
        yield e


def child(v: Vault, *args: str) -> Service:
    """``glacier-backup migrate`` as a child process; its JSON log events are collected."""
    return Service(v.argv(*args), env={**os.environ, **FAKE_AWS}, started=None)


def archive_jobs(v: Vault) -> int:
    """Archive-retrieval jobs the vault has been asked for."""
    jobs = glacier_client(v.emu.endpoint_url).list_jobs(vaultName=v.vault)["JobList"]
    return sum(1 for j in jobs if j["Action"] == "ArchiveRetrieval")


def verified(v: Vault) -> set[int]:
    """Start offsets of the job-output ranges the catalogue records as verified: spooled ones
    and those of acknowledged parts."""
    with sqlite3.connect(v.new_config.state_dir / "catalogue.sqlite3") as db:
        ranges = {r[0] for r in db.execute("SELECT start FROM migration_ranges")}
        parts = {(r[0] - 1) * PART for r in db.execute("SELECT number FROM migration_parts")}
    return ranges | parts


def acknowledged(v: Vault) -> set[int]:
    with sqlite3.connect(v.new_config.state_dir / "catalogue.sqlite3") as db:
        return {r[0] for r in db.execute("SELECT number FROM migration_parts")}


def range_starts(requests: list[Request]) -> set[int]:
    """Where the job-output ranges asked for start."""
    out = set()
    for r in requests:
        assert r.range is not None and r.range.startswith("bytes="), r
        out.add(int(r.range.removeprefix("bytes=").split("-")[0]))
    return out


def one_copy_each(v: Vault, count: int) -> None:
    """Exactly the vault's archives in the bucket, byte for byte, and no upload left open."""
    objects = v.objects()
    assert len(objects) == count
    assert v.open_uploads() == []
    s3 = v.s3()
    for key, data in objects.items():
        archive_id = s3.head_object(Bucket=v.bucket, Key=key)["Metadata"]["source-archive-id"]
        assert data == (v.emu.data_dir / "archives" / archive_id).read_bytes(), key


def retrieved(tmp_path: Path, emu: Emulator, moto_server: str) -> Vault:
    """One cycle whose archive takes 4 parts, its retrieval requested and ready."""
    v = make_vault_user(tmp_path, emu, moto_server, cycles=1, big=25 << 20)
    v.inventory_ready()
    assert v.main("--yes").returncode == 0
    emu.control.advance(13 * HOUR)
    return v


def test_killed_while_waiting_for_retrievals_resumes_without_requesting_again(
    tmp_path: Path, emu: Emulator, moto_server: str, aws_env: None
) -> None:
    v = make_vault_user(tmp_path, emu, moto_server, cycles=2)
    v.inventory_ready()
    waiting = child(v, "--yes", "--wait", "--poll-interval", "0.05", "--poll-max", "0.05")
    waiting.wait_for(lambda e: e["event"] == "migrate.waiting" and e.get("retrievals") == 2)
    waiting.kill()
    assert archive_jobs(v) == 2

    emu.control.advance(13 * HOUR)
    done = v.run("--resume")
    assert done.returncode == 0, done.stderr
    assert "copied and verified: 2 of 2" in done.stdout
    assert archive_jobs(v) == 2  # the jobs of the killed run were used, not asked for again
    one_copy_each(v, 2)


def test_killed_while_downloading_fetches_only_the_ranges_not_verified(
    tmp_path: Path, emu: Emulator, moto_server: str, aws_env: None
) -> None:
    v = retrieved(tmp_path, emu, moto_server)
    with FaultProxy(emu.endpoint_url) as glacier:
        v.point(old=glacier.url)
        held = glacier.stall("GetObject", key=OUTPUT, skip=1)  # the 2nd range waits
        copying = child(v, "--resume")
        held.wait_held()
        wait_for(lambda: verified(v), 60, "a range to be verified")
        spool = v.new_config.state_dir / "migrate-spool"
        files = list(spool.glob("*/*.range"))
        assert files, "verified ranges wait on disk for their part"
        assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
        assert {stat.S_IMODE(d.stat().st_mode) for d in (spool, files[0].parent)} == {0o700}
        copying.kill()
        before, mark = verified(v), len(glacier.log("GetObject"))
        held.release()

        done = v.run("--resume")
        assert done.returncode == 0, done.stderr
        assert not list(spool.glob("*/*")), "the spool is empty once the archive is copied"
        again = range_starts(glacier.log("GetObject")[mark:])
    assert again, "the held range was fetched again"
    assert not again & before, f"verified ranges {sorted(again & before)} downloaded twice"
    assert archive_jobs(v) == 1
    one_copy_each(v, 1)


def test_killed_while_uploading_sends_no_acknowledged_part_again(
    tmp_path: Path, emu: Emulator, moto_server: str, aws_env: None
) -> None:
    v = retrieved(tmp_path, emu, moto_server)
    with FaultProxy(emu.endpoint_url) as glacier, FaultProxy(moto_server) as s3:
        v.point(old=glacier.url, new=s3.url)
        held = s3.stall("UploadPart", skip=1)  # S3 stores the 2nd part; its answer waits
        copying = child(v, "--resume")
        held.wait_held()
        wait_for(lambda: acknowledged(v), 60, "a part to be acknowledged")
        copying.kill()
        parts, ranges = acknowledged(v), verified(v)
        marks = len(s3.log("UploadPart")), len(glacier.log("GetObject"))
        held.release()

        done = v.run("--resume")
        assert done.returncode == 0, done.stderr
        sent = {int(r.query["partNumber"][0]) for r in s3.log("UploadPart")[marks[0] :]}
        fetched = range_starts(glacier.log("GetObject")[marks[1] :])
    assert not sent & parts, f"acknowledged parts {sorted(sent & parts)} sent again"
    assert not fetched & ranges, f"verified ranges {sorted(fetched & ranges)} downloaded twice"
    one_copy_each(v, 1)


# -- the exact instants: pause points (localbackup/testpoints.py, docs/reliability.md) ----------


def test_a_job_requested_but_never_recorded_is_adopted_not_requested_again(
    tmp_path: Path, emu: Emulator, moto_server: str, aws_env: None
) -> None:
    v = make_vault_user(tmp_path, emu, moto_server, cycles=1)
    v.inventory_ready()
    env = {**os.environ, **FAKE_AWS}
    run_until_killed(v.argv("--yes"), "migrate.job_requested", tmp_path, env=env)
    assert archive_jobs(v) == 1  # Glacier runs (and bills) it; the catalogue does not know it
    emu.control.advance(13 * HOUR)
    done = v.run("--resume", "--yes")
    assert done.returncode == 0, done.stderr
    assert "copied and verified: 1 of 1" in done.stdout
    assert '"event": "migrate.job_adopted"' in done.stderr
    assert archive_jobs(v) == 1
    one_copy_each(v, 1)


def test_a_part_acknowledged_but_never_recorded_is_not_downloaded_again(
    tmp_path: Path, emu: Emulator, moto_server: str, aws_env: None
) -> None:
    v = retrieved(tmp_path, emu, moto_server)
    with FaultProxy(emu.endpoint_url) as glacier, FaultProxy(moto_server) as s3:
        v.point(old=glacier.url, new=s3.url)
        env = {**os.environ, **FAKE_AWS}
        run_until_killed(v.argv("--resume"), "migrate.part_acknowledged", tmp_path, env=env)
        assert acknowledged(v) == set()  # S3 holds a part nobody recorded
        listed = _listed_parts(v)
        held = {int(str(p["PartNumber"])) for p in listed}
        assert held
        marks = len(s3.log("UploadPart")), len(glacier.log("GetObject"))
        done = v.run("--resume")
        assert done.returncode == 0, done.stderr
        sent = {int(r.query["partNumber"][0]) for r in s3.log("UploadPart")[marks[0] :]}
        fetched = range_starts(glacier.log("GetObject")[marks[1] :])
    assert not fetched & {(n - 1) * PART for n in held}, "its range came from the spool"
    if all("ChecksumSHA256" in p for p in listed):  # AWS lists it; moto does not
        assert not sent & held, "the part S3 holds was matched by its checksum, not sent again"
    one_copy_each(v, 1)


def test_a_copy_completed_but_not_recorded_is_verified_and_recorded_once(
    tmp_path: Path, emu: Emulator, moto_server: str, aws_env: None
) -> None:
    v = retrieved(tmp_path, emu, moto_server)
    env = {**os.environ, **FAKE_AWS}
    run_until_killed(v.argv("--resume"), "migrate.after_complete", tmp_path, env=env)
    with sqlite3.connect(v.new_config.state_dir / "catalogue.sqlite3") as db:
        assert db.execute("SELECT state, completing FROM migrations").fetchall() == [("ready", 1)]
    parts = v.s3().list_objects_v2(Bucket=v.bucket)["KeyCount"]
    assert parts == 1  # the object is there already
    done = v.run("--resume")
    assert done.returncode == 0, done.stderr
    assert "copied and verified: 1 of 1" in done.stdout
    one_copy_each(v, 1)


def _listed_parts(v: Vault) -> list[dict[str, object]]:
    """The parts S3 holds for the one upload in progress."""
    (upload,) = v.open_uploads()
    return list(
        v.s3().list_parts(Bucket=v.bucket, Key=upload["Key"], UploadId=upload["UploadId"])["Parts"]
    )

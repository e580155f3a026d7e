"""``restore`` from cold storage: Glacier vault jobs (emulator, virtual clock) and S3
DEEP_ARCHIVE restore_object (moto), through the CLI; resume after SIGKILL; expired output."""

from __future__ import annotations

import argparse
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from emulators.glacier import Emulator
from localbackup.config import BackupConfig
from localbackup.seal import seal_cycle
from localbackup.spool import Spool
from localbackup.step import run_backup_step
from tests.localbackup.test_extract import T0, History, make_history, restored, snapshot
from tests.support.killpoints import glacier_backup, run_until_killed, write_config
from tests.uploader.conftest import make_bucket, s3_store
from tests.uploader.glacier_support import make_vault
from uploader import catalogue as cr
from uploader.catalogue import Catalogue
from uploader.crypto import write_identity_file
from uploader.restore import download as dl
from uploader.restore import retrieval as rt
from uploader.stores.s3 import S3Store
from watcher.commands import restore as command
from watcher.commands import upload
from watcher.config import AppConfig, config_from_dict

HOUR = 3600.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    command.add_parser(sub)
    upload.add_parser(sub)
    return parser


def run_cli(config: AppConfig, *argv: str) -> int:
    args = _parser().parse_args(list(argv))
    return int(args.run(args, config))


def config_dict(tmp_path: Path, src: Path, store: dict[str, object]) -> dict[str, Any]:
    key = tmp_path / "key.txt"
    if not key.exists():
        write_identity_file(key)
    recipient = next(
        line.split(": ", 1)[1] for line in key.read_text().splitlines() if "public key" in line
    )
    return {
        "state_dir": str(tmp_path / "state"),
        "backup": {"sources": [str(src)], "spool_dir": str(tmp_path / "spool"), "host": "h"},
        "encryption": {"recipients": [recipient], "identity_file": str(key)},
        "store": store,
    }


def _config(tmp_path: Path, src: Path, store: dict[str, object]) -> AppConfig:
    return config_from_dict(config_dict(tmp_path, src, store), tmp_path / "config.toml")


def _vault_store(emu: Emulator) -> dict[str, object]:
    return {
        "type": "glacier",
        "vault": make_vault(emu.endpoint_url),
        "region": "us-east-1",
        "endpoint_url": emu.endpoint_url,
    }


def _uploaded(tmp_path: Path, h: History, store: dict[str, object]) -> AppConfig:
    seal_cycle(h.cycle, "h", "incremental", tmp_path / "markers", T0)
    config = _config(tmp_path, h.src, store)
    assert run_cli(config, "upload") == 0
    return config


def _vault_history(tmp_path: Path, emu: Emulator) -> tuple[History, AppConfig]:
    """A changing tree backed up four times, its cycle uploaded into a fresh emulator vault."""
    h = make_history(tmp_path)
    return h, _uploaded(tmp_path, h, _vault_store(emu))


def _retrievals(tmp_path: Path) -> int:
    """Retrieval requests the catalogue still remembers."""
    with sqlite3.connect(tmp_path / "state" / "catalogue.sqlite3") as db:
        return int(db.execute("SELECT count(*) FROM retrievals").fetchone()[0])


def _big_history(tmp_path: Path, size: int) -> History:
    """One full backup of a tree holding ``size`` incompressible bytes."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(size))
    (src / "small.txt").write_text("hello\n")
    cfg = BackupConfig(sources=(src,), spool_dir=tmp_path / "spool", host="h")
    run_backup_step(cfg, tmp_path / "markers", now=T0)
    (cycle,) = Spool(cfg.spool_dir).cycles()
    return History(src, cycle, [snapshot(src)])


def test_a_vault_restore_requests_a_job_waits_and_resumes(
    tmp_path: Path,
    glacier_emulator: Emulator,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = glacier_emulator
    h, config = _vault_history(tmp_path, emu)
    out = tmp_path / "out"
    capsys.readouterr()
    # No terminal and no --yes: nothing is requested.
    assert run_cli(config, "restore", "--to", str(out)) == 2
    assert "add --yes" in capsys.readouterr().err
    jobs = emu.control.request_count("InitiateJob")
    assert run_cli(config, "restore", "--to", str(out), "--yes") == 0
    printed = capsys.readouterr().out
    assert "tier Standard: typically ready 3-5 hours" in printed
    assert "estimated retrieval cost: $" in printed
    assert "waiting:" in printed
    assert emu.control.request_count("InitiateJob") == jobs + 1
    assert not out.exists()

    assert run_cli(config, "restore", "--to", str(out), "--resume") == 0
    assert "not ready yet" in capsys.readouterr().out
    assert emu.control.request_count("InitiateJob") == jobs + 1  # not asked (or paid) twice

    emu.control.advance(4 * HOUR + 60)
    assert run_cli(config, "restore", "--to", str(out), "--resume") == 0
    printed = capsys.readouterr().out
    assert "ranges downloaded and verified" in printed
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]
    assert not list(tmp_path.glob(".out.retrieval*"))  # the download file is gone
    assert _retrievals(tmp_path) == 0


def test_wait_polls_until_the_job_is_ready_then_restores(
    tmp_path: Path,
    glacier_emulator: Emulator,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = glacier_emulator
    h, config = _vault_history(tmp_path, emu)
    out = tmp_path / "out"
    capsys.readouterr()
    jobs = emu.control.request_count("InitiateJob")
    checks = emu.control.request_count("DescribeJob")
    argv = ("restore", "--to", str(out), "--yes", "--wait", "--poll-interval", "0.05")
    result: dict[str, object] = {}

    def restore() -> None:
        try:
            result["rc"] = run_cli(config, *argv, "--poll-max", "0.2")
        except BaseException as exc:  # reported by the test thread
            result["error"] = exc

    thread = threading.Thread(target=restore, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    # Requested, then checked a few times while the (virtual) hours have not passed.
    while (
        emu.control.request_count("InitiateJob") == jobs
        or emu.control.request_count("DescribeJob") < checks + 8
    ):
        assert thread.is_alive(), result
        assert time.monotonic() < deadline, "the job was not requested and polled"
        time.sleep(0.05)
    assert emu.control.request_count("InitiateJob") == jobs + 1
    assert not out.exists()
    emu.control.advance(4 * HOUR + 60)
    thread.join(60)
    assert not thread.is_alive(), "--wait did not finish by itself"
    assert result == {"rc": 0}
    printed = capsys.readouterr().out
    assert "next check in 0.05s" in printed and "next check in 0.2s" in printed
    assert "ready after" in printed and "waiting:" not in printed
    assert "ranges downloaded and verified" in printed
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]
    assert emu.control.request_count("InitiateJob") == jobs + 1  # requested once
    assert _retrievals(tmp_path) == 0


def test_poll_options_take_positive_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(["restore", "--to", str(tmp_path)])
    assert (args.poll_interval, args.poll_max) == (60.0, 1800.0)  # the defaults
    for bad in ("0", "-1", "nan", "inf", "soon"):
        with pytest.raises(SystemExit):
            _parser().parse_args(["restore", "--to", str(tmp_path), "--poll-interval", bad])
        assert "positive number of seconds" in capsys.readouterr().err


def test_an_expired_job_output_is_reported_and_resume_requests_again(
    tmp_path: Path,
    glacier_emulator: Emulator,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = glacier_emulator
    h, config = _vault_history(tmp_path, emu)
    out = tmp_path / "out"
    assert run_cli(config, "restore", "--to", str(out), "--yes", "--tier", "Expedited") == 0
    emu.control.advance(300 + 25 * HOUR)  # done, then kept ~24 h, then gone
    jobs = emu.control.request_count("InitiateJob")
    capsys.readouterr()
    assert run_cli(config, "restore", "--to", str(out), "--resume", "--yes") == 0
    captured = capsys.readouterr()
    assert "has expired" in captured.err
    assert "requesting the retrieval again" in captured.out
    assert "waiting:" in captured.out
    assert emu.control.request_count("InitiateJob") == jobs + 1
    emu.control.advance(4 * HOUR + 60)
    assert run_cli(config, "restore", "--to", str(out), "--resume") == 0
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]


def test_a_killed_download_resumes_without_fetching_verified_ranges_again(
    tmp_path: Path, glacier_emulator: Emulator, aws_env: None
) -> None:
    emu = glacier_emulator
    h = _big_history(tmp_path, 9 << 20)
    store = _vault_store(emu)
    config = _uploaded(tmp_path, h, store)
    out = tmp_path / "out"
    assert run_cli(config, "restore", "--to", str(out), "--yes") == 0
    emu.control.advance(4 * HOUR + 60)

    toml = write_config(tmp_path / "config.toml", config_dict(tmp_path, h.src, store))
    before = emu.control.request_count("GetJobOutput")
    argv = ["restore", "--to", str(out), "--resume", "--parallel", "1", "--range-size", "1"]
    # The real command, killed with SIGKILL right after its third range is recorded.
    run_until_killed(glacier_backup(toml, *argv), "retrieval.range_recorded", tmp_path, nth=3)
    db_path = tmp_path / "state" / "catalogue.sqlite3"
    with sqlite3.connect(db_path) as db:
        done = db.execute("SELECT count(*) FROM retrieval_ranges").fetchone()[0]
    fetched_by_child = emu.control.request_count("GetJobOutput") - before
    assert done == 3 and fetched_by_child == 3
    assert not out.exists()
    part = tmp_path / ".out.retrieval"
    assert part.stat().st_mode & 0o777 == 0o700
    (file,) = part.iterdir()
    assert file.stat().st_mode & 0o777 == 0o600

    before = emu.control.request_count("GetJobOutput")
    assert run_cli(config, *argv) == 0
    ranges = 10  # 9 MiB of data plus the age and tar overhead: 10 ranges of 1 MiB
    assert emu.control.request_count("GetJobOutput") - before == ranges - done
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]
    assert not part.exists()


def test_an_s3_deep_archive_object_is_restored_then_downloaded(
    tmp_path: Path,
    moto_server: str,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    h = make_history(tmp_path)
    store: dict[str, object] = {
        "type": "s3",
        "bucket": make_bucket(moto_server),
        "prefix": "p/",
        "storage_class": "DEEP_ARCHIVE",
        "endpoint_url": moto_server,
        "region": "us-east-1",
    }
    config = _uploaded(tmp_path, h, store)
    out = tmp_path / "out"
    capsys.readouterr()
    # Expedited does not exist for DEEP_ARCHIVE.
    assert run_cli(config, "restore", "--to", str(out), "--yes", "--tier", "Expedited") == 1
    assert "not available for DEEP_ARCHIVE" in capsys.readouterr().err
    # moto makes the restored copy readable at once (x-amz-restore: ongoing-request="false"),
    # so one call requests, finds it ready, downloads and restores.
    assert run_cli(config, "restore", "--to", str(out), "--yes", "--range-size", "1") == 0
    printed = capsys.readouterr().out
    assert "tier Bulk: typically ready within 48 hours" in printed
    assert "ranges downloaded and verified" in printed
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]


def test_estimates_and_tiers() -> None:
    assert rt.tiers_for("DEEP_ARCHIVE") == ["Standard", "Bulk"]
    assert rt.default_tier("DEEP_ARCHIVE") == "Bulk"
    assert rt.default_tier("GLACIER") == rt.default_tier(rt.VAULT) == "Standard"
    est = rt.estimate("GLACIER", "Expedited", 10 << 30)
    assert est.cost_usd == pytest.approx(0.3)
    with pytest.raises(rt.RetrievalError, match="not available"):
        rt.estimate("DEEP_ARCHIVE", "Expedited", 1)


def test_an_s3_object_restored_by_someone_else_is_not_requested_again(
    tmp_path: Path,
    moto_server: str,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import boto3

    h = make_history(tmp_path)
    bucket = make_bucket(moto_server)
    store: dict[str, object] = {
        "type": "s3",
        "bucket": bucket,
        "prefix": "p/",
        "storage_class": "GLACIER",
        "endpoint_url": moto_server,
        "region": "us-east-1",
    }
    config = _uploaded(tmp_path, h, store)
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    (obj,) = s3.list_objects_v2(Bucket=bucket)["Contents"]
    s3.restore_object(Bucket=bucket, Key=obj["Key"], RestoreRequest={"Days": 1})
    out = tmp_path / "out"
    capsys.readouterr()
    # No --yes needed: nothing is requested (nor billed).
    assert run_cli(config, "restore", "--to", str(out)) == 0
    assert "a restored copy is there already" in capsys.readouterr().out
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]


# -- target preconditions come before any retrieval -----------------------------------------


@pytest.mark.parametrize(
    ("target", "argv", "code", "message"),
    [
        ("non-empty", ["--yes"], 1, "is not empty (use --force"),
        ("non-empty", ["--force"], 2, "is not empty: add --yes to replace"),
        ("under-a-file", ["--yes"], 1, "is not a directory"),
        ("a-file", ["--yes"], 1, "exists and is not a directory"),
    ],
)
def test_a_bad_target_is_refused_before_a_retrieval_is_requested(
    tmp_path: Path,
    glacier_emulator: Emulator,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
    target: str,
    argv: list[str],
    code: int,
    message: str,
) -> None:
    emu = glacier_emulator
    _, config = _vault_history(tmp_path, emu)
    out = tmp_path / "out"
    if target == "non-empty":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif target == "under-a-file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
    else:
        out.write_text("x")
    jobs = emu.control.request_count("InitiateJob")
    capsys.readouterr()
    assert run_cli(config, "restore", "--to", str(out), *argv) == code
    assert message in capsys.readouterr().err
    assert emu.control.request_count("InitiateJob") == jobs  # nothing requested, nor billed
    assert _retrievals(tmp_path) == 0


def test_a_target_filled_while_the_retrieval_ran_is_refused_before_the_download(
    tmp_path: Path,
    glacier_emulator: Emulator,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = glacier_emulator
    h, config = _vault_history(tmp_path, emu)
    out = tmp_path / "out"
    assert run_cli(config, "restore", "--to", str(out), "--yes") == 0
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    emu.control.advance(4 * HOUR + 60)
    downloads = emu.control.request_count("GetJobOutput")
    capsys.readouterr()
    assert run_cli(config, "restore", "--to", str(out), "--resume") == 1
    assert "is not empty" in capsys.readouterr().err
    assert emu.control.request_count("GetJobOutput") == downloads  # nothing downloaded
    assert not (tmp_path / ".out.retrieval").exists()
    (out / "keep.txt").unlink()  # the recorded retrieval is still there to resume
    assert run_cli(config, "restore", "--to", str(out), "--resume") == 0
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]


# -- S3: bad bytes are not trusted forever, and ranges come from one object -------------------


def _deep_archive(moto_server: str) -> dict[str, object]:
    return {
        "type": "s3",
        "bucket": make_bucket(moto_server),
        "prefix": "p/",
        "storage_class": "DEEP_ARCHIVE",
        "endpoint_url": moto_server,
        "region": "us-east-1",
    }


def test_an_s3_download_failing_authentication_is_discarded_and_resume_fetches_it_again(
    tmp_path: Path,
    moto_server: str,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = make_history(tmp_path)
    config = _uploaded(tmp_path, h, _deep_archive(moto_server))
    real_read = S3Store.read
    reads: list[int] = []

    async def flip(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        data = bytearray()
        async for c in chunks:
            data += c
        data[len(data) // 2] ^= 0x01  # right length, wrong bytes (in the age payload)
        yield bytes(data)

    def read(self: S3Store, key: str, start: int = 0, end: int | None = None, **kw: Any) -> Any:
        reads.append(start)
        chunks = real_read(self, key, start, end, **kw)
        return flip(chunks) if len(reads) == 1 else chunks

    monkeypatch.setattr(S3Store, "read", read)
    out = tmp_path / "out"
    capsys.readouterr()
    assert run_cli(config, "restore", "--to", str(out), "--yes") == 1
    err = capsys.readouterr().err
    assert "was discarded" in err and "--resume" in err
    assert not out.exists()
    assert not list((tmp_path / ".out.retrieval").glob("*"))  # no .part file kept
    with sqlite3.connect(tmp_path / "state" / "catalogue.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM retrievals").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM retrieval_ranges").fetchone() == (0,)
    first = len(reads)
    assert run_cli(config, "restore", "--to", str(out), "--resume") == 0
    assert len(reads) - first == first  # every range downloaded again
    assert "ranges downloaded and verified" in capsys.readouterr().out
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]


async def test_an_s3_object_replaced_during_a_download_is_never_mixed_in(
    tmp_path: Path, moto_server: str, aws_env: None
) -> None:
    import boto3

    bucket = make_bucket(moto_server)
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    key = "h/20260101T000000Z.tar.age"
    v1, v2 = os.urandom(3 << 20), os.urandom(3 << 20)
    s3.put_object(Bucket=bucket, Key=f"pfx/{key}", Body=v1)
    catalogue = Catalogue(tmp_path / "cat.sqlite3")
    record = cr.record_request(
        catalogue,
        store=f"s3://{bucket}/pfx/",
        key=key,
        archive_id=None,
        size=len(v1),
        storage_class="DEEP_ARCHIVE",
        tier="Bulk",
        days=3,
        job_id=None,
    )
    path = dl.download_path(tmp_path / "out", key)

    class Killed(Exception):
        pass

    def killed(done: int, total: int, left: int) -> None:
        raise Killed  # the first range is recorded, then the command dies

    async with s3_store(moto_server, bucket) as store:
        with pytest.raises(Killed):  # itself, never wrapped in a TaskGroup's ExceptionGroup
            await dl.download(
                store, catalogue, record, path, range_size=1 << 20, parallel=1, on_range=killed
            )
        assert len(cr.done_ranges(catalogue, record.id)) == 1
        s3.put_object(Bucket=bucket, Key=f"pfx/{key}", Body=v2)  # replaced under the same key
        resumed = cr.find_retrieval(catalogue, record.store, key)
        assert resumed is not None
        with pytest.raises(dl.DownloadDiscarded, match="no longer the object"):
            await dl.download(store, catalogue, resumed, path, range_size=1 << 20)
        assert cr.done_ranges(catalogue, record.id) == set()
        assert not path.exists()
        again = cr.find_retrieval(catalogue, record.store, key)
        assert again is not None
        assert await dl.download(store, catalogue, again, path, range_size=1 << 20) == 3
        assert path.read_bytes() == v2


# -- a mount-point target: the download goes onto the disk restored to ------------------------


def test_download_paths_for_a_mount_point_are_inside_it_and_the_old_place_still_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    inside = out / ".glacier-retrieval" / "a.tar.zst.age.part"
    beside = tmp_path / ".out.retrieval" / "a.tar.zst.age.part"
    assert dl.download_path(out, "p/a.tar.zst.age") == beside  # not a mount point
    monkeypatch.setattr(dl, "stages_inside", lambda to: True)
    assert dl.download_path(out, "p/a.tar.zst.age") == inside
    assert dl.resume_path(out, "p/a.tar.zst.age", None) == inside
    assert dl.resume_path(out, "p/a.tar.zst.age", beside) == inside  # nothing there
    beside.parent.mkdir()
    beside.write_bytes(b"partial")
    assert dl.resume_path(out, "p/a.tar.zst.age", beside) == beside  # started there: resumed
    assert dl.resume_path(out, "p/a.tar.zst.age", tmp_path / "elsewhere") == inside


def _as_mount_point(monkeypatch: pytest.MonkeyPatch, out: Path) -> None:
    from localbackup import staging as safepath

    real = safepath.stages_inside

    def fake(to: Path) -> bool:
        return Path(to) == out or real(to)

    monkeypatch.setattr(safepath, "stages_inside", fake)
    monkeypatch.setattr(dl, "stages_inside", fake)


def test_a_cold_restore_into_a_mount_point_downloads_inside_it(
    tmp_path: Path,
    glacier_emulator: Emulator,
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = glacier_emulator
    h, config = _vault_history(tmp_path, emu)
    out = tmp_path / "out"
    out.mkdir()
    _as_mount_point(monkeypatch, out)
    assert run_cli(config, "restore", "--to", str(out), "--yes") == 0
    emu.control.advance(4 * HOUR + 60)
    seen: list[Path] = []
    real_restore = dl.restore_downloaded

    async def restore_downloaded(path: Path, to: Path, **kw: Any) -> Any:
        seen.append(path)
        assert path.parent.stat().st_mode & 0o777 == 0o700
        return await real_restore(path, to, **kw)

    monkeypatch.setattr(dl, "restore_downloaded", restore_downloaded)
    assert run_cli(config, "restore", "--to", str(out), "--resume") == 0
    assert [p.parent for p in seen] == [out / ".glacier-retrieval"]
    assert not list(tmp_path.glob(".out.*"))  # nothing on the parent's filesystem
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]
    assert ".glacier-retrieval" not in os.listdir(out)  # removed after success


def test_a_download_started_next_to_a_target_is_resumed_there_once_it_is_a_mount_point(
    tmp_path: Path,
    glacier_emulator: Emulator,
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = glacier_emulator
    h, config = _vault_history(tmp_path, emu)
    out = tmp_path / "out"
    out.mkdir()
    assert run_cli(config, "restore", "--to", str(out), "--yes") == 0
    emu.control.advance(4 * HOUR + 60)

    async def fail(path: Path, to: Path, **kw: Any) -> Any:
        raise OSError("disk unplugged")

    with monkeypatch.context() as m:
        m.setattr(dl, "restore_downloaded", fail)
        assert run_cli(config, "restore", "--to", str(out), "--resume") == 1
    (part,) = (tmp_path / ".out.retrieval").iterdir()  # downloaded next to the target
    _as_mount_point(monkeypatch, out)  # ... which is a mount point now
    before = emu.control.request_count("GetJobOutput")
    assert run_cli(config, "restore", "--to", str(out), "--resume") == 0
    assert emu.control.request_count("GetJobOutput") == before  # not downloaded again
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]
    assert not part.exists() and ".glacier-retrieval" not in os.listdir(out)

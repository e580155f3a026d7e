"""Regression: a "phantom" archive (review). A crash (a real SIGKILL of ``glacier-backup
upload``) after ``begin_completion`` but before the CompleteMultipartUpload request, then Glacier
drops the idle upload: the next run can only record the cycle as an unconfirmed archive,
although no archive exists. ``upload --force`` uploads such a cycle again (and one flagged
MISSING); maintenance requeues it once an inventory taken well after it does not show it (tests
in test_maintenance_glacier.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from emulators.glacier.control_client import ControlClient
from tests.support.killpoints import glacier_backup, run_until_killed, write_config
from uploader import catalogue as cm
from uploader.catalogue import CATALOGUE_FILE, Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.stores.local import LocalStore
from uploader.upload import archive_doubt, pending_cycle_dirs, upload_cycle
from watcher.commands import upload as command

from .conftest import build_cycle
from .glacier_support import glacier_client, glacier_store, make_vault
from .test_upload_command import _config, _parse
from .test_upload_recovery import Wrapped

MiB = 1024 * 1024
PLAIN = EncryptionConfig(mode="none")
UP = UploadConfig(part_size=MiB)


async def make_phantom(cycle_dir: Path, endpoint: str, vault: str, cat: Catalogue) -> None:
    """Leave ``cycle_dir`` recorded in ``cat`` as an unconfirmed archive the vault does not hold:
    ``glacier-backup upload`` is killed (SIGKILL) once the completion is recorded and before
    CompleteMultipartUpload is sent; then Glacier drops the idle upload."""
    assert cat.path.name == CATALOGUE_FILE  # the child finds it in its state_dir
    config = write_config(
        cat.path.parent / "phantom-config.toml",
        {
            "state_dir": cat.path.parent,
            "backup": {"sources": [], "spool_dir": cycle_dir.parents[1], "host": "testhost"},
            "encryption": {"mode": "none"},
            "store": {
                "type": "glacier",
                "vault": vault,
                "region": "us-east-1",
                "endpoint_url": endpoint,
            },
            "upload": {"part_size": "1MiB"},
        },
    )
    argv = glacier_backup(config, "upload", cycle_dir.name)
    run_until_killed(argv, "upload.before_complete", cat.path.parent)
    (u,) = cat.uploads()
    assert u.state == "completing"
    # > 24 h idle: Glacier removes the upload resource
    glacier_client(endpoint).abort_multipart_upload(vaultName=vault, uploadId=u.upload_id)
    async with glacier_store(endpoint, vault) as s2:
        rec = await upload_cycle(cycle_dir, s2, cat, PLAIN, UP)
    assert rec.confirmed_at is None and cat.uploads() == []


def _archives(ctl: ControlClient, vault: str) -> int:
    return int(ctl.state()["vaults"][vault]["archives"])


async def test_force_uploads_a_phantom_archive_again(
    tmp_path: Path, glacier_endpoint: str, aws_env: None
) -> None:
    cycle_dir = build_cycle(tmp_path / "spool", [2 * MiB + 5])
    vault, ctl = make_vault(glacier_endpoint), ControlClient(glacier_endpoint)
    cat = Catalogue.in_state_dir(tmp_path / "state")
    await make_phantom(cycle_dir, glacier_endpoint, vault, cat)
    assert _archives(ctl, vault) == 0
    async with glacier_store(glacier_endpoint, vault) as s:
        found = cat.find_archive(s.name, cycle_dir.name)
        assert found is not None and archive_doubt(cat, found) == "unconfirmed"
        assert pending_cycle_dirs(tmp_path / "spool", cat, s.name) == []
        w = Wrapped(s)
        assert (await upload_cycle(cycle_dir, w, cat, PLAIN, UP)).confirmed_at is None  # type: ignore[arg-type]
        assert w.sent == [] and w.completes == 0  # without force: nothing
        with capture_logs() as logs:
            rec = await upload_cycle(cycle_dir, w, cat, PLAIN, UP, force=True)  # type: ignore[arg-type]
        assert sorted(w.sent) == [1, 2, 3] and w.completes == 1
        assert rec.confirmed_at is not None and cm.archive_id_of(cat, s.name, rec.key)
        assert [e["reason"] for e in logs if e["event"] == "upload.requeued"] == ["unconfirmed"]
        # a confirmed archive is never sent again, forced or not
        again = await upload_cycle(cycle_dir, w, cat, PLAIN, UP, force=True)  # type: ignore[arg-type]
        assert again.key == rec.key and w.completes == 1
    assert _archives(ctl, vault) == 1


def _record(cat: Catalogue, store: str, cycle_id: str, *, confirmed: bool) -> str:
    key = f"testhost/{cycle_id}.tar.age"
    at = "2026-01-02T00:00:00+00:00"
    with cat.transaction() as db:
        db.execute(
            "INSERT INTO archives (store, key, cycle_id, host, size, plaintext_sha256,"
            " uploaded_at, confirmed_at) VALUES (?, ?, ?, 'testhost', 10, 'x', ?, ?)",
            (store, key, cycle_id, at, at if confirmed else None),
        )
    return key


@pytest.mark.parametrize("doubt", ["unconfirmed", "flagged MISSING"])
def test_upload_cycle_sends_a_missing_archive_again_and_force_an_unconfirmed_one(
    tmp_path: Path, age_key: tuple[Path, str], capsys: pytest.CaptureFixture[str], doubt: str
) -> None:
    cycle = "20260101T000000Z"
    build_cycle(tmp_path / "spool", [3000], cycle_id=cycle)
    config = _config(tmp_path, age_key[1])
    store = LocalStore(tmp_path / "vault").name
    with Catalogue.in_state_dir(tmp_path / "state") as cat:
        key = _record(cat, store, cycle, confirmed=doubt != "unconfirmed")
        if doubt == "flagged MISSING":
            now = datetime(2026, 2, 1, tzinfo=UTC)
            cm.flag_archive(cat, store, key, "missing", detail="absent", now=now)
    if doubt == "unconfirmed":  # normal on Glacier until an inventory: only --force
        assert command.run(_parse(cycle), config) == 0
        assert not (tmp_path / "vault" / "testhost").exists()
        capsys.readouterr()
        assert command.run(_parse("--force", cycle), config) == 0
    else:  # MISSING: the documented fix is a plain `upload CYCLE` (issue 12 defect 3)
        assert command.run(_parse(cycle), config) == 0
    out = capsys.readouterr().out
    assert f"is {doubt}: uploading again" in out
    assert (tmp_path / "vault" / key).exists()
    with Catalogue.in_state_dir(tmp_path / "state") as cat:
        (rec,) = cat.archives()
        assert rec.confirmed_at is not None and rec.size > 10
        assert archive_doubt(cat, rec) is None  # the old flag is not about this archive
    assert command.run(_parse("--force", cycle), config) == 0
    assert "already archived" in capsys.readouterr().out


def test_upload_force_leaves_a_confirmed_archive_alone(
    tmp_path: Path, age_key: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cycle = "20260101T000000Z"
    build_cycle(tmp_path / "spool", [3000], cycle_id=cycle)
    config = _config(tmp_path, age_key[1])
    with Catalogue.in_state_dir(tmp_path / "state") as cat:
        _record(cat, LocalStore(tmp_path / "vault").name, cycle, confirmed=True)
    assert command.run(_parse("--force", cycle), config) == 0
    assert "already archived" in capsys.readouterr().out
    assert not (tmp_path / "vault" / "testhost").exists()

"""The ``watch`` service end to end on the local store: real process, real watchdog events,
real signals, real ``age`` decryption of what it uploaded."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from localbackup import formats
from tests.watcher.service_harness import Project
from uploader.bundle import BundleReader, bundle_size


def bundle_bytes(cycle_dir: Path) -> bytes:
    cycle = formats.load_sealed_cycle(cycle_dir)
    with BundleReader(cycle_dir, cycle) as reader:
        return reader.read(0, bundle_size(cycle))


def age_decrypt(p: Project, archive: Path) -> bytes:
    return subprocess.run(
        ["age", "-d", "-i", str(p.identity), str(archive)], capture_output=True, check=True
    ).stdout


def archives(p: Project) -> list[Path]:
    return sorted(p.vault.rglob("*.tar.age"))


def test_sealed_cycle_is_uploaded_and_decrypts_with_age(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=1)
    (p.src / "a.txt").write_text("one\n")
    p.backup()
    svc = p.start_service()
    try:
        (p.src / "a.txt").write_text("two\n")
        p.backup()  # the cycle is complete: sealed, marker written, the service reacts
        (cycle_dir,) = (p.spool / "cycles").iterdir()
        expected = bundle_bytes(cycle_dir)  # before the service may prune it locally
        svc.wait_for(lambda e: e["event"] == "watch.uploaded")
        (archive,) = archives(p)
        assert age_decrypt(p, archive) == expected
        assert sorted(x.name for x in (p.markers / "done").iterdir()) == [
            f"cycle-{formats.load_sealed_cycle(cycle_dir).host}-{cycle_dir.name}.json"
        ]
        st = p.status()
        assert st["last_success"]["cycle_id"] == cycle_dir.name
        assert st["sealed_waiting"] == [] and st["uploads_in_progress"] == []
        assert st["store_usage"] == {"archives": 1, "bytes": archive.stat().st_size}
        assert st["markers"] == {"pending": 0, "failed": 0, "quarantined": 0}
    finally:
        assert svc.stop() == 0


def test_markers_written_while_stopped_are_handled_at_start(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0)  # every backup is a sealed full
    for i in range(2):
        (p.src / "f").write_text(str(i))
        p.backup()
    assert p.status()["markers"]["pending"] == 2
    svc = p.start_service()
    try:
        svc.wait_for(lambda e: e["event"] == "watch.uploaded", count=2)
        assert len(archives(p)) == 2
        # keep_local_cycles = 1: only the newest uploaded cycle stays in the spool
        svc.wait_for(lambda e: e["event"] == "watch.local_cycle_removed")
        assert len(list((p.spool / "cycles").iterdir())) == 1
    finally:
        assert svc.stop() == 0


def test_touch_forces_seal_and_upload_of_the_open_cycle(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=7)
    (p.src / "f").write_text("x")
    p.backup()
    assert p.status()["open_cycle"]["increments"] == 1
    svc = p.start_service()
    try:
        (p.markers / "now").touch()
        svc.wait_for(lambda e: e["event"] == "watch.uploaded")
        assert not (p.markers / "now").exists()
        st = p.status()
        assert st["open_cycle"] is None and st["store_usage"]["archives"] == 1
    finally:
        assert svc.stop() == 0


def test_junk_marker_is_quarantined_and_the_service_keeps_serving(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0)
    svc = p.start_service()
    try:
        junk = p.markers / "cycle-myhost-20261126T000000Z.json"
        junk.write_text('{"format": "glacier-backup-marker", "version": 1}')
        svc.wait_for(lambda e: e["event"] == "watch.marker_quarantined")
        reason = (p.markers / "quarantine" / f"{junk.name}.reason").read_text()
        assert "lacks the field" in reason
        assert p.status()["markers"]["quarantined"] == 1
        (p.src / "f").write_text("still working")
        p.backup()
        svc.wait_for(lambda e: e["event"] == "watch.uploaded")
        assert len(archives(p)) == 1
    finally:
        assert svc.stop() == 0


def test_marker_of_a_vanished_cycle_fails_with_its_reason(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0)
    (p.src / "f").write_text("x")
    p.backup()
    (cycle_dir,) = (p.spool / "cycles").iterdir()
    (cycle_dir / formats.CYCLE_JSON).unlink()
    svc = p.start_service()
    try:
        svc.wait_for(lambda e: e["event"] == "watch.marker_failed")
        st = p.status()
        assert st["markers"]["failed"] == 1
        assert "is gone and was never uploaded" in st["last_failure"]["reason"]
    finally:
        assert svc.stop() == 0


def test_duplicate_events_produce_one_upload(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0)
    svc = p.start_service()
    try:
        (p.src / "f").write_text("x")
        p.backup()
        (marker,) = [m for m in p.markers.iterdir() if m.is_file()] or [None]
        if marker is not None:  # poke it while it may still be there: more events, same marker
            for _ in range(5):
                try:
                    os.utime(marker)
                except FileNotFoundError:
                    break
        svc.wait_for(lambda e: e["event"] == "watch.uploaded")
        # restart: the marker is in done/, the catalogue knows the archive: nothing is re-sent
        assert svc.stop() == 0
        svc = p.start_service()
        (p.markers / "now").touch()
        svc.wait_for(lambda e: e["event"] == "watch.force_nothing_to_seal")
        assert len(svc.matching(lambda e: e["event"] == "upload.started")) == 0
        assert len(archives(p)) == 1
    finally:
        svc.stop()


def test_sighup_reloads_and_a_broken_config_is_survived(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0)
    svc = p.start_service()
    try:
        good = p.config.read_text()
        p.config.write_text(good + "\n[nonsense]\n")
        svc.signal(signal.SIGHUP)
        svc.wait_for(lambda e: e["event"] == "watch.reload_failed")
        p.config.write_text(good.replace('stop_timeout = "10s"', 'stop_timeout = "12s"'))
        svc.signal(signal.SIGHUP)
        svc.wait_for(lambda e: e["event"] == "watch.reloaded")
        (p.src / "f").write_text("x")
        p.backup()
        svc.wait_for(lambda e: e["event"] == "watch.uploaded")
    finally:
        assert svc.stop() == 0
    # the reloaded value is the one in force: the stop announces the new deadline
    (stopping,) = svc.matching(lambda e: e["event"] == "watch.stopping")
    assert stopping["stop_timeout"] == 12.0


def test_over_budget_wait_holds_the_upload_back(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0)
    p.config.write_text(
        p.config.read_text() + '[retention]\nmax_store_size = "1KiB"\nover_budget = "wait"\n'
    )
    svc = p.start_service()
    try:
        (p.src / "big").write_bytes(os.urandom(64 << 10))
        p.backup()
        event = svc.wait_for(lambda e: e["event"] == "watch.upload_waits_for_budget")
        assert "retention.max_store_size" in event["reason"]
        assert archives(p) == []
        assert p.status()["markers"]["pending"] == 1  # kept for a later retry, not dropped
    finally:
        assert svc.stop() == 0

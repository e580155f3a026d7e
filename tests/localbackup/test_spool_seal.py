"""Crash safety of the spool and the seal/marker protocol, with hand-made increments."""

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from localbackup import formats
from localbackup.seal import SealError, ensure_markers, seal_cycle
from localbackup.spool import Spool, SpoolBusyError

T0 = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


def fake_increment(c, number: int, payload: bytes = b"data") -> formats.IncrementManifest:
    files = []
    for name in (formats.tar_name(number), formats.index_name(number)):
        (c.path / name).write_bytes(payload)
        files.append(formats.CycleFile(name, len(payload), hashlib.sha256(payload).hexdigest()))
    m = formats.IncrementManifest(
        number,
        "full" if number == 0 else "incremental",
        None if number == 0 else number - 1,
        T0,
        T0,
        files[0],
        files[1],
    )
    (c.path / formats.manifest_name(number)).write_bytes(m.render())
    return m


def test_spool_dirs_are_private(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    c = spool.create_cycle(T0)
    assert (spool.root.stat().st_mode & 0o777) == 0o700
    assert (spool.cycles_dir.stat().st_mode & 0o777) == 0o700
    assert (c.path.stat().st_mode & 0o777) == 0o700


def test_cycle_ids_sort_and_never_collide(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    a = spool.create_cycle(T0)
    b = spool.create_cycle(T0)
    c = spool.create_cycle(T0 + timedelta(seconds=1))
    assert [x.cycle_id for x in spool.cycles()] == [a.cycle_id, b.cycle_id, c.cycle_id]
    assert a.cycle_id == "20261126T040000Z" and b.cycle_id == "20261126T040000Z-2"


def test_recover_removes_partials_and_unmanifested_increments(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    c = spool.create_cycle(T0)
    fake_increment(c, 0)
    fake_increment(c, 1)
    # increment 2 crashed before its manifest; increment 3's manifest is orphaned by a gap
    (c.path / formats.tar_name(2)).write_bytes(b"half")
    (c.path / f".{formats.tar_name(2)}.partial").write_bytes(b"half")
    m3 = fake_increment(c, 3)
    (c.path / formats.manifest_name(2)).unlink(missing_ok=True)
    (spool.cycles_dir / ".20261126T050000Z.partial").mkdir()
    removed = {p.name for p in spool.recover()}
    assert formats.tar_name(2) in removed and f".{formats.tar_name(2)}.partial" in removed
    assert formats.manifest_name(3) in removed and m3.tar.name in removed
    assert ".20261126T050000Z.partial" in removed
    assert [m.number for m in c.manifests()] == [0, 1]
    assert sorted(p.name for p in c.path.iterdir()) == sorted(
        [
            "created",
            *(formats.tar_name(i) for i in (0, 1)),
            *(formats.index_name(i) for i in (0, 1)),
            *(formats.manifest_name(i) for i in (0, 1)),
        ]
    )


def test_recover_leaves_sealed_cycles_alone(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    c = spool.create_cycle(T0)
    fake_increment(c, 0)
    seal_cycle(c, "host", "incremental", tmp_path / "markers", T0)
    stray = c.path / "notes.txt"
    stray.write_text("the user's own file")
    assert spool.recover() == []
    assert stray.exists()


def test_seal_writes_cycle_json_then_marker(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    c = spool.create_cycle(T0)
    m0, m1 = fake_increment(c, 0, b"full"), fake_increment(c, 1, b"incr")
    sealed = seal_cycle(c, "host1", "incremental", tmp_path / "markers", T0 + timedelta(hours=1))
    assert sealed.files == (m0.tar, m0.index, m1.tar, m1.index)
    raw = (c.path / "cycle.json").read_bytes()
    assert formats.load_sealed_cycle(c.path) == sealed
    marker_file = tmp_path / "markers" / f"cycle-host1-{c.cycle_id}.json"
    marker = formats.parse_marker(marker_file.read_bytes())
    assert marker.cycle_json_sha256 == hashlib.sha256(raw).hexdigest()
    assert marker.cycle_dir == c.path.resolve()
    assert formats.is_marker_name(marker_file.name)
    assert spool.open_cycle() is None


def test_seal_refuses_an_empty_cycle_and_a_short_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    c = spool.create_cycle(T0)
    with pytest.raises(SealError, match="no complete increment"):
        seal_cycle(c, "h", "incremental", tmp_path / "m", T0)
    fake_increment(c, 0, b"0123456789")
    os.truncate(c.path / formats.tar_name(0), 4)
    with pytest.raises(SealError, match="is 4 bytes, its manifest says 10"):
        seal_cycle(c, "h", "incremental", tmp_path / "m", T0)
    assert not (c.path / "cycle.json").exists()
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_ensure_markers_repairs_a_crash_between_seal_and_marker(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    markers = tmp_path / "markers"
    c = spool.create_cycle(T0)
    fake_increment(c, 0)
    seal_cycle(c, "h", "incremental", markers, T0)
    (markers / f"cycle-h-{c.cycle_id}.json").unlink()  # as if we died before the rename
    assert ensure_markers(spool, markers) == [c.cycle_id]
    # a marker the watcher already filed under done/ counts as written
    (markers / "done").mkdir()
    os.rename(
        markers / f"cycle-h-{c.cycle_id}.json", markers / "done" / f"cycle-h-{c.cycle_id}.json"
    )
    assert ensure_markers(spool, markers) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"format": "other", "version": 1}', "expected format 'glacier-backup-marker'"),
        (b'{"format": "glacier-backup-marker", "version": 99}', "version 99 is not supported"),
        (b'{"format": "glacier-backup-marker", "version": 1, "host": "h"}', "lacks the field"),
        (
            json.dumps(
                {
                    "format": "glacier-backup-marker",
                    "version": 1,
                    "host": "h",
                    "cycle_id": "../x",
                    "cycle_dir": "/x",
                    "sealed_at": "x",
                    "cycle_json_sha256": "0",
                }
            ).encode(),
            "malformed cycle_id",
        ),
    ],
)
def test_bad_markers_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(formats.FormatError, match=message):
        formats.parse_marker(data)


def test_lock_excludes_a_second_writer(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    other = Spool(tmp_path)
    with spool.locked(), pytest.raises(SpoolBusyError, match="holds"), other.locked(wait=0.3):
        pass
    with other.locked(wait=0.3):  # released on exit
        pass


def test_a_removed_cycle_id_is_never_given_out_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    first = spool.create_cycle(T0)
    fake_increment(first, 0)
    seal_cycle(first, "h", "incremental", tmp_path / "m", T0)
    spool.remove_cycle(first)  # uploaded, then pruned locally
    again = spool.create_cycle(T0)  # the same second
    assert again.cycle_id != first.cycle_id


def test_a_cycle_removal_cut_short_is_never_taken_for_an_open_cycle(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    c = spool.create_cycle(T0)
    fake_increment(c, 0)
    seal_cycle(c, "h", "incremental", tmp_path / "m", T0)
    # kill -9 inside remove_cycle, after the rename and half of the rmtree
    doomed = spool.cycles_dir / f".{c.cycle_id}.partial"
    os.rename(c.path, doomed)
    (doomed / "cycle.json").unlink()
    assert spool.open_cycle() is None
    spool.recover()
    assert not doomed.exists() and spool.cycles() == []


def test_last_backup_time_survives_local_pruning(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert spool.last_backup_time() is None
    spool.record_backup_time(T0)
    assert spool.last_backup_time() == T0

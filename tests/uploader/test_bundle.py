"""The bundle: exact size, determinism, random access, readable by GNU tar."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from localbackup.formats import load_sealed_cycle
from uploader.bundle import (
    BundleError,
    BundleReader,
    VerifyingBundle,
    bundle_size,
    cycle_sha256,
)

from .conftest import build_cycle


def _whole(d: Path) -> bytes:
    with BundleReader(d) as b:
        return b.read(0, b.size)


def test_size_is_known_ahead_and_exact(tmp_path: Path) -> None:
    d = build_cycle(tmp_path, [0, 1, 511, 512, 513, 70_000])
    data = _whole(d)
    assert len(data) == bundle_size(load_sealed_cycle(d))
    assert len(data) % tarfile.RECORDSIZE == 0


def test_bundle_is_deterministic_and_matches_python_tarfile(tmp_path: Path) -> None:
    d = build_cycle(tmp_path / "a", [3, 100_000])
    again = build_cycle(tmp_path / "b", [3, 100_000])
    assert _whole(d) == _whole(again)
    cycle = load_sealed_cycle(d)
    # The same members written by tarfile give the same bytes: the format is plain pax/ustar.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in [("cycle.json", cycle.render())] + [
            (f.name, (d / f.name).read_bytes()) for f in cycle.files
        ]:
            info = tarfile.TarInfo(f"{cycle.cycle_id}/{name}")
            info.size, info.mtime, info.mode = len(data), int(cycle.sealed_at.timestamp()), 0o644
            info.uname = info.gname = ""
            tf.addfile(info, io.BytesIO(data))
    assert _whole(d) == buf.getvalue()


def test_reading_from_any_offset_regenerates_the_same_bytes(tmp_path: Path) -> None:
    d = build_cycle(tmp_path, [1000, 5000, 130_000])
    whole = _whole(d)
    with BundleReader(d) as b:
        for start in (0, 1, 511, 512, 1536, 7777, len(whole) - 1):
            for wanted in (1, 513, 40_000):
                size = min(wanted, len(whole) - start)
                assert b.read(start, size) == whole[start : start + size]
        with pytest.raises(ValueError):
            b.read(len(whole) - 1, 2)


def test_gnu_tar_lists_members_in_order_with_fixed_metadata(tmp_path: Path) -> None:
    d = build_cycle(tmp_path, [10, 20, 30])
    (tmp_path / "b.tar").write_bytes(_whole(d))
    out = subprocess.run(
        ["tar", "--numeric-owner", "-tvf", str(tmp_path / "b.tar")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    cycle = load_sealed_cycle(d)
    names = [line.split()[-1] for line in out]
    assert names == [f"{cycle.cycle_id}/cycle.json"] + [
        f"{cycle.cycle_id}/{f.name}" for f in cycle.files
    ]
    assert all(line.startswith("-rw-r--r-- 0/0") for line in out)
    assert all("2026-01-02 03:04" in line for line in out)


def test_verify_returns_the_bundle_sha256_and_checks_files(tmp_path: Path) -> None:
    d = build_cycle(tmp_path, [100, 200])
    with BundleReader(d) as b:
        assert b.verify() == hashlib.sha256(_whole(d)).hexdigest()
    target = d / load_sealed_cycle(d).files[0].name
    target.write_bytes(b"x" * 100)  # same size, other content
    with BundleReader(d) as b, pytest.raises(BundleError, match="SHA-256"):
        b.verify()


def test_a_file_whose_size_changed_is_refused(tmp_path: Path) -> None:
    d = build_cycle(tmp_path, [100, 200])
    (d / load_sealed_cycle(d).files[1].name).write_bytes(b"short")
    with BundleReader(d) as b, pytest.raises(BundleError, match=r"cycle\.json says 200"):
        b.read(0, b.size)


def test_verifying_bundle_streams_the_bundle_and_returns_its_sha256(tmp_path: Path) -> None:
    d = build_cycle(tmp_path, [100_000, 0, 5000, 70_000])
    whole = _whole(d)
    with BundleReader(d) as b, VerifyingBundle(b) as v:
        pieces = bytearray()
        for start in range(0, 60_000, 7000):  # a gap from 60,000 to 90,000 is skipped
            buf = bytearray(7000)
            v.readinto(start, memoryview(buf))
            pieces += buf
        buf = bytearray(1000)
        v.readinto(90_000, memoryview(buf))
        assert bytes(pieces) == whole[:63_000] and bytes(buf) == whole[90_000:91_000]
        assert v.finish() == v.sha256 == hashlib.sha256(whole).hexdigest()


@pytest.mark.parametrize("skip", [False, True], ids=["read", "skipped-over"])
def test_verifying_bundle_refuses_a_file_that_does_not_match(tmp_path: Path, skip: bool) -> None:
    d = build_cycle(tmp_path, [100, 50_000, 200])
    target = d / load_sealed_cycle(d).files[1].name
    target.write_bytes(b"y" * 50_000)
    match = f"{target.name}: SHA-256 does not match"
    with BundleReader(d) as b, VerifyingBundle(b) as v, pytest.raises(BundleError, match=match):
        if skip:  # the bad file lies before the first byte asked for
            v.readinto(b.size - 512, memoryview(bytearray(512)))
        else:
            v.readinto(0, memoryview(bytearray(b.size)))


def test_verifying_bundle_refuses_to_go_backwards(tmp_path: Path) -> None:
    d = build_cycle(tmp_path, [10_000])
    with BundleReader(d) as b, VerifyingBundle(b) as v:
        v.readinto(0, memoryview(bytearray(4096)))
        with pytest.raises(BundleError, match="out of order"):
            v.readinto(1024, memoryview(bytearray(10)))
        with pytest.raises(BundleError, match="not been read to the end"):
            _ = v.sha256


def test_the_cycle_sha256_is_that_of_the_bundled_cycle_json(tmp_path: Path) -> None:
    d = build_cycle(tmp_path, [10])
    cycle = load_sealed_cycle(d)
    with tarfile.open(fileobj=io.BytesIO(_whole(d))) as tf:
        member = tf.extractfile(f"{cycle.cycle_id}/cycle.json")
        assert member is not None
        assert cycle_sha256(cycle) == hashlib.sha256(member.read()).hexdigest()


def test_verifying_bundle_refuses_an_empty_file_with_another_sha256(tmp_path: Path) -> None:
    d = build_cycle(tmp_path, [10])  # its index file is empty
    empty = hashlib.sha256().hexdigest()
    cycle_json = d / "cycle.json"
    cycle_json.write_text(cycle_json.read_text().replace(empty, "0" * 64))
    with BundleReader(d) as b, pytest.raises(BundleError, match="empty file"):
        VerifyingBundle(b)

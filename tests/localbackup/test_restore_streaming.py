"""The streamed restore path: our pax reader, the streamed index and the one-pass finish.

Each is checked against the reference it replaces (Python's ``tarfile``, ``read_index``, the
snapshot of the backed-up tree) on real increments written by ``run_backup_step``, and on
archives written by GNU tar.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from datetime import timedelta
from pathlib import Path

import pytest
import zstandard

from localbackup.config import BackupConfig
from localbackup.extract import Extractor, IntegrityError
from localbackup.index import Index, read_index
from localbackup.indexstream import StreamedIndex
from localbackup.paxreader import Member, PaxReader, member_from_tarinfo
from localbackup.spool import Spool
from localbackup.spoolrestore import restore_from_cycle_dir
from localbackup.step import run_backup_step
from tests.localbackup.test_extract import T0, make_history, restored, snapshot


def _ours(data: bytes) -> list[tuple[Member, bytes]]:
    reader = PaxReader(io.BytesIO(data))
    out = []
    for m in reader:
        body = b""
        while chunk := reader.read_data(1 << 16):
            body += chunk
        out.append((m, body))
    return out


def _reference(data: bytes) -> list[tuple[Member, bytes]]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8", errors="surrogateescape") as tf:
        for info in tf:
            f = tf.extractfile(info) if info.isreg() else None
            out.append((member_from_tarinfo(info), f.read() if f is not None else b""))
    return out


def test_our_increments_read_exactly_as_tarfile_reads_them(tmp_path: Path) -> None:
    h = make_history(tmp_path)
    long_name = "n" * 150  # a pax path record
    (h.src / long_name).write_text("long\n")
    cfg = BackupConfig(
        sources=(h.src,), spool_dir=tmp_path / "spool", increments_per_cycle=5, host="h"
    )
    run_backup_step(cfg, tmp_path / "markers", now=T0 + timedelta(hours=9))
    members = 0
    for m in h.cycle.manifests():
        data = (
            zstandard.ZstdDecompressor()
            .decompressobj()
            .decompress((h.cycle.path / m.tar.name).read_bytes())
        )
        ours, ref = _ours(data), _reference(data)
        assert [(x.name, x.type) for x, _ in ours] == [(x.name, x.type) for x, _ in ref]
        for (a, stored), (b, body_b) in zip(ours, ref, strict=True):
            body_a = stored
            if a.sparse is not None:  # tarfile hands the file back with its holes filled in
                full, pos = bytearray(a.size), 0
                for offset, length in a.sparse:
                    full[offset : offset + length] = stored[pos : pos + length]
                    pos += length
                body_a = bytes(full)
            assert (a, body_a) == (b, body_b)
        members += len(ours)
        assert any(x.name.endswith(long_name.encode()) for x, _ in ours) or m.number < 4
    assert members > 20


@pytest.mark.parametrize("fmt", ["pax", "gnu"])
def test_gnu_tar_archives_read_exactly_as_tarfile_reads_them(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "t"
    (src / ("d" * 120)).mkdir(parents=True)
    (src / ("d" * 120) / ("f" * 130)).write_bytes(b"x" * 1000)
    os.symlink("l" * 140, src / "sym")
    os.link(src / ("d" * 120) / ("f" * 130), src / "hard")
    (src / "empty").write_bytes(b"")
    data = subprocess.run(
        ["tar", f"--format={fmt}", "-cf", "-", "-C", str(tmp_path), "t"],
        capture_output=True,
        check=True,
    ).stdout
    assert _ours(data) == _reference(data)


def test_a_damaged_header_is_an_integrity_error_not_a_wrong_file(tmp_path: Path) -> None:
    h = make_history(tmp_path)
    m0 = h.cycle.manifests()[0]
    data = bytearray(
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress((h.cycle.path / m0.tar.name).read_bytes())
    )
    data[1024 + 100] ^= 0x01  # the mode field of the first member's ustar header
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(IntegrityError, match="checksum"):
        Extractor(out).apply(io.BytesIO(zstandard.ZstdCompressor().compress(bytes(data))))


def test_the_streamed_index_gives_what_read_index_gives(tmp_path: Path) -> None:
    h = make_history(tmp_path)
    for m in h.cycle.manifests():
        path = h.cycle.path / m.index.name
        with open(path, "rb") as f:
            expected = list(read_index(f).records.items())
        assert list(StreamedIndex(path).iter_records()) == expected


def test_sources_under_shared_parents_all_come_back_and_deletions_apply(tmp_path: Path) -> None:
    """Sources a/x, b/y, a/z: the index visits ``a`` twice (it is above the sources), so the
    finish must not remove a/z's tree when it leaves a/x's, nor keep what was deleted."""
    top = tmp_path / "data"
    sources = [top / "a" / "x", top / "b" / "y", top / "a" / "z"]
    for i, s in enumerate(sources):
        (s / "sub").mkdir(parents=True)
        (s / "sub" / f"f{i}").write_text(f"file {i}\n")
        (s / f"g{i}").write_text(f"g {i}\n")
    cfg = BackupConfig(
        sources=tuple(sources), spool_dir=tmp_path / "spool", increments_per_cycle=3, host="h"
    )
    run_backup_step(cfg, tmp_path / "m", now=T0)
    (sources[2] / "g2").unlink()
    (sources[0] / "sub" / "f0").unlink()
    run_backup_step(cfg, tmp_path / "m", now=T0 + timedelta(hours=1))
    (cycle,) = Spool(cfg.spool_dir).cycles()
    out = tmp_path / "out"
    restore_from_cycle_dir(cycle.path, cycle.manifests(), 1, out)
    for s in sources:
        assert snapshot(restored(out, s)) == snapshot(s)
    assert sorted(p.name for p in restored(out, top / "a").iterdir()) == ["x", "z"]
    assert os.stat(restored(out, top / "a")).st_mode & 0o777 == 0o755  # above the sources


def test_an_index_out_of_archive_order_gives_the_same_tree(tmp_path: Path) -> None:
    h = make_history(tmp_path)
    last = h.cycle.manifests()[-1]
    with open(h.cycle.path / last.index.name, "rb") as f:
        index = read_index(f)
    scrambled = Index(dict(sorted(index.records.items(), key=lambda kv: kv[0][::-1])))
    out = tmp_path / "out"
    out.mkdir()
    ex = Extractor(out)
    for m in h.cycle.manifests():
        with open(h.cycle.path / m.tar.name, "rb") as f:
            ex.apply(f)  # type: ignore[arg-type]
    ex.finish(scrambled)
    assert snapshot(restored(out, h.src)) == h.snapshots[-1]


def test_the_header_checksum_is_the_ustar_sum_for_any_bytes() -> None:
    from localbackup.paxreader import _checksum

    headers = [os.urandom(512) for _ in range(500)] + [b"\xff" * 512, bytes(512)]
    for h in headers:
        assert _checksum(h) == sum(h) - sum(h[148:156]) + 8 * 32

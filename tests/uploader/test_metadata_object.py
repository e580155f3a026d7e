"""The metadata object: its content round-trips, opens with the age and tar CLIs, and anything
that does not add up (a changed index, another cycle.json, a flipped ciphertext byte, the wrong
key) is refused before it reaches the catalogue."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import IO

import pytest

from localbackup.formats import load_sealed_cycle
from uploader.bundle import cycle_sha256
from uploader.catalogue import Catalogue, metadata_object_of, stored_cycle, stored_indexes
from uploader.config import EncryptionConfig, UploadConfig
from uploader.crypto import write_identity_file
from uploader.recovery import (
    ArchiveFacts,
    MetadataDamaged,
    MetadataError,
    WrongKey,
    read_metadata_object,
    unlock_for,
)
from uploader.recovery.content import read_metadata_tar, write_metadata_tar
from uploader.stores.local import LocalStore
from uploader.upload import upload_cycle

from .conftest import build_cycle


def _facts(cycle_dir: Path) -> ArchiveFacts:
    cycle = load_sealed_cycle(cycle_dir)
    return ArchiveFacts(
        key=f"testhost/{cycle.cycle_id}.tar.age",
        size=12345,
        plaintext_size=12000,
        plaintext_sha256="ab" * 32,
        cycle_sha256=cycle_sha256(cycle),
        encryption="age",
    )


def _tar(cycle_dir: Path, facts: ArchiveFacts | None = None) -> bytes:
    buf = io.BytesIO()
    cycle = load_sealed_cycle(cycle_dir)

    def index(name: str) -> IO[bytes]:
        return (cycle_dir / name).open("rb")

    write_metadata_tar(buf, facts or _facts(cycle_dir), cycle, index)
    return buf.getvalue()


def test_the_content_round_trips(tmp_path: Path) -> None:
    cycle_dir = build_cycle(tmp_path / "spool", [3000, 700, 2000, 900])
    out = tmp_path / "out"
    out.mkdir()
    content = read_metadata_tar(io.BytesIO(_tar(cycle_dir)), out)
    assert content.archive == _facts(cycle_dir)
    assert content.cycle == load_sealed_cycle(cycle_dir)
    for name in ("cycle.json", "inc-0000.index.zst", "inc-0001.index.zst"):
        assert (out / name).read_bytes() == (cycle_dir / name).read_bytes()
    assert not (out / "inc-0000.tar.zst").exists()  # the data stays in the archive


def test_a_changed_index_or_another_cycle_json_is_refused(tmp_path: Path) -> None:
    cycle_dir = build_cycle(tmp_path / "spool", [3000, 700])
    (cycle_dir / "inc-0000.index.zst").write_bytes(b"x" * 700)  # same size, other bytes
    with pytest.raises(MetadataError, match=r"inc-0000\.index\.zst"):
        _tar(cycle_dir)
    good = build_cycle(tmp_path / "other", [3000, 700], seed=2)
    raw = bytearray(_tar(good))
    raw[raw.index(b'"mode": "incremental"') + 12] ^= 0x01  # in cycle.json (only there)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MetadataError, match="does not match the archive's cycle-sha256"):
        read_metadata_tar(io.BytesIO(bytes(raw)), out)


async def _uploaded(tmp_path: Path, recipient: str) -> tuple[LocalStore, Catalogue, Path]:
    cycle_dir = build_cycle(tmp_path / "spool", [3000, 700, 2000, 900])
    store = LocalStore(tmp_path / "vault")
    cat = Catalogue(tmp_path / "state" / "c.sqlite3")
    async with store:
        await upload_cycle(
            cycle_dir, store, cat, EncryptionConfig(recipients=(recipient,)), UploadConfig()
        )
    return store, cat, cycle_dir


async def test_it_opens_with_the_age_and_tar_tools(
    tmp_path: Path, age_key: tuple[Path, str]
) -> None:
    key_file, recipient = age_key
    store, cat, cycle_dir = await _uploaded(tmp_path, recipient)
    record = metadata_object_of(cat, store.name, "testhost/20260101T000000Z.tar.age")
    assert record is not None and record.key == "testhost/20260101T000000Z.meta.age"
    blob = (tmp_path / "vault" / record.key).read_bytes()
    plain = subprocess.run(
        ["age", "-d", "-i", str(key_file)], input=blob, capture_output=True, check=True
    ).stdout
    listed = subprocess.run(
        ["tar", "-t"], input=plain, capture_output=True, check=True
    ).stdout.decode()
    assert listed.split() == [
        "20260101T000000Z/metadata.json",
        "20260101T000000Z/cycle.json",
        "20260101T000000Z/inc-0000.index.zst",
        "20260101T000000Z/inc-0001.index.zst",
    ]
    # and the catalogue keeps what it was made of
    assert stored_cycle(cat, "testhost", "20260101T000000Z") == load_sealed_cycle(cycle_dir)
    assert [s.data for s in stored_indexes(cat)] == [
        (cycle_dir / f"inc-000{n}.index.zst").read_bytes() for n in (0, 1)
    ]


async def test_a_flipped_byte_or_the_wrong_key_is_refused_and_named(
    tmp_path: Path, age_key: tuple[Path, str]
) -> None:
    key_file, recipient = age_key
    store, cat, _ = await _uploaded(tmp_path, recipient)
    record = metadata_object_of(cat, store.name, "testhost/20260101T000000Z.tar.age")
    assert record is not None
    unlock = unlock_for(EncryptionConfig(identity_file=key_file))
    work = tmp_path / "work"
    work.mkdir()
    async with store:
        content, _ = await read_metadata_object(record, store.read(record.key), unlock, work=work)
        assert content.archive.key == record.archive_key

        other = tmp_path / "other.txt"
        write_identity_file(other)
        with pytest.raises(WrongKey) as wrong:
            await read_metadata_object(
                record, store.read(record.key), unlock_for(EncryptionConfig(), other), work=work
            )
        assert str(other) in str(wrong.value) and record.archive_key in str(wrong.value)

        path = tmp_path / "vault" / record.key
        raw = bytearray(path.read_bytes())
        raw[-100] ^= 0x01  # in the last payload chunk
        path.write_bytes(bytes(raw))
        with pytest.raises(MetadataDamaged, match="still restorable in full"):
            await read_metadata_object(record, store.read(record.key), unlock, work=work)

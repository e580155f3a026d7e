"""Malicious archives: every unsafe member is refused by name and nothing leaves the target."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
import zstandard

from localbackup.extract import ExtractOptions, Extractor, staged_target
from localbackup.index import Index
from localbackup.safepath import UnsafeMemberError, member_parts

Member = tuple[str, bytes, dict[str, object]]  # type name: "file" | "dir" | "symlink" | ...


def craft(*members: tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]) -> bytes:
    """A zstd-compressed pax tar holding exactly these members, as an attacker would build it."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            info, data = m if isinstance(m, tuple) else (m, b"")
            tf.addfile(info, io.BytesIO(data) if data else None)
    return zstandard.ZstdCompressor().compress(raw.getvalue())


def file(name: str, data: bytes = b"pwned\n") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def entry(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def apply(root: Path, archive: bytes, **options: bool) -> Extractor:
    ex = Extractor(root, ExtractOptions(**options))  # type: ignore[arg-type]
    ex.apply(io.BytesIO(archive))  # type: ignore[arg-type]
    return ex


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "victim").write_text("original\n")
    return d


@pytest.fixture
def root(tmp_path: Path) -> Path:
    d = tmp_path / "target"
    d.mkdir()
    return d


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (b"/etc/passwd", "absolute"),
        (b"a/../../evil", "'..'"),
        (b"../evil", "'..'"),
        (b"a/b\0c", "NUL"),
    ],
)
def test_member_names_must_be_relative_and_stay_inside(name: bytes, reason: str) -> None:
    with pytest.raises(UnsafeMemberError, match=reason):
        member_parts(name)


def test_dots_and_double_slashes_are_normalised() -> None:
    assert member_parts(b"./a//b/./c") == (b"a", b"b", b"c")


def test_an_absolute_member_is_refused_by_name(root: Path) -> None:
    with pytest.raises(UnsafeMemberError, match=r"/tmp/evil.*absolute"):
        apply(root, craft(file("/tmp/evil")))


def test_a_dotdot_member_is_refused(root: Path, outside: Path) -> None:
    with pytest.raises(UnsafeMemberError, match=r"\.\./outside/victim"):
        apply(root, craft(file("x/../../outside/victim")))
    assert (outside / "victim").read_text() == "original\n"


def test_writing_through_a_symlink_from_the_archive_is_refused(root: Path, outside: Path) -> None:
    archive = craft(entry("esc", tarfile.SYMTYPE, str(outside)), file("esc/victim"))
    with pytest.raises(UnsafeMemberError, match=r"'esc/victim'.*through the symlink 'esc'"):
        apply(root, archive)
    assert (outside / "victim").read_text() == "original\n"


def test_writing_through_a_symlink_deeper_in_the_path_is_refused(root: Path, outside: Path) -> None:
    archive = craft(
        entry("a", tarfile.DIRTYPE),
        entry("a/b", tarfile.SYMTYPE, "../../outside"),
        entry("a/b/new", tarfile.DIRTYPE),
    )
    with pytest.raises(UnsafeMemberError, match=r"through the symlink 'a/b'"):
        apply(root, archive)
    assert not (outside / "new").exists()


def test_a_pre_existing_symlink_in_the_target_is_not_followed(root: Path, outside: Path) -> None:
    os.symlink(outside, root / "link")
    with pytest.raises(UnsafeMemberError, match=r"through the symlink 'link'"):
        apply(root, craft(file("link/victim")))
    assert (outside / "victim").read_text() == "original\n"


def test_a_symlink_at_the_final_component_is_replaced_not_written_through(
    root: Path, outside: Path
) -> None:
    os.symlink(outside / "victim", root / "f")
    apply(root, craft(file("f", b"replaced\n")))
    assert not (root / "f").is_symlink()
    assert (root / "f").read_text() == "replaced\n"
    assert (outside / "victim").read_text() == "original\n"


@pytest.mark.parametrize("target", ["../outside/victim", "/etc/passwd", "a/../../x"])
def test_hardlinks_pointing_outside_are_refused(root: Path, target: str) -> None:
    with pytest.raises(UnsafeMemberError, match=r"'h'.*hardlink points outside"):
        apply(root, craft(entry("h", tarfile.LNKTYPE, target)))


def test_a_hardlink_through_a_symlinked_directory_is_refused(root: Path, outside: Path) -> None:
    archive = craft(
        entry("d", tarfile.SYMTYPE, str(outside)), entry("h", tarfile.LNKTYPE, "d/victim")
    )
    with pytest.raises(UnsafeMemberError, match=r"'h'.*through the symlink 'd'"):
        apply(root, archive)
    assert (outside / "victim").stat().st_nlink == 1


def test_a_hardlink_to_a_symlink_is_refused(root: Path, outside: Path) -> None:
    archive = craft(
        entry("s", tarfile.SYMTYPE, str(outside / "victim")), entry("h", tarfile.LNKTYPE, "s")
    )
    with pytest.raises(UnsafeMemberError, match=r"not a regular file"):
        apply(root, archive)


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        (tarfile.CHRTYPE, "device node"),
        (tarfile.BLKTYPE, "device node"),
        (tarfile.FIFOTYPE, "FIFO"),
    ],
)
def test_devices_and_fifos_are_refused_by_default(root: Path, kind: bytes, what: str) -> None:
    info = entry("dev/node", kind)
    info.devmajor, info.devminor = 1, 3
    with pytest.raises(UnsafeMemberError, match=rf"'dev/node'.*{what}.*--allow-devices"):
        apply(root, craft(info))
    assert not (root / "dev" / "node").exists()


def test_fifos_are_created_with_allow_devices(root: Path) -> None:
    apply(root, craft(entry("pipe", tarfile.FIFOTYPE)), allow_devices=True)
    assert stat.S_ISFIFO((root / "pipe").lstat().st_mode)


def test_an_unsafe_member_fails_the_whole_restore_and_leaves_nothing(
    tmp_path: Path, outside: Path
) -> None:
    archive = craft(file("ok.txt", b"fine\n"), file("also-ok", b"x"), file("../escape"))
    target = tmp_path / "restore-here"
    with pytest.raises(UnsafeMemberError, match=r"escape"), staged_target(target) as work:
        ex = apply(work, archive)
        ex.finish(Index())
    assert not target.exists()
    assert not (tmp_path / ".restore-here.restoring").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside"]


def test_a_plain_archive_with_dot_slash_names_extracts(root: Path) -> None:
    archive = craft(
        entry("./", tarfile.DIRTYPE), entry("./d", tarfile.DIRTYPE), file("./d/f", b"ok")
    )
    apply(root, archive)
    assert (root / "d" / "f").read_bytes() == b"ok"

"""Malicious archives: every unsafe member is refused by name and nothing leaves the target."""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from localbackup import staging as safepath
from localbackup.extract import ExtractOptions, Extractor
from localbackup.index import Index
from localbackup.safepath import ExtractError, UnsafeMemberError, member_parts
from localbackup.staging import check_target, staged_target
from tests.support.killpoints import glacier_backup, run_until_killed, write_config
from tests.support.mounts import tmpfs

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


# -- a --force restore killed mid-swap never loses the previous contents of the target --------


def _killed_restore(tmp_path: Path, to: Path, point: str) -> None:
    """Back up two files with ``glacier-backup backup``, then SIGKILL ``glacier-backup restore
    --from-spool --force --yes --to TO`` at ``point`` of the swap."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "restored.txt").write_text("restored")
    (src / "zz-restored2.txt").write_text("restored")
    config = write_config(
        tmp_path / "config.toml",
        {
            "state_dir": tmp_path / "state",
            "backup": {"sources": [str(src)], "spool_dir": tmp_path / "spool"},
            "encryption": {"mode": "none"},
            "store": {"type": "local", "path": tmp_path / "vault"},
        },
    )
    backup = subprocess.run(
        glacier_backup(config, "backup"), capture_output=True, text=True, check=False
    )
    assert backup.returncode == 0, backup.stderr
    argv = glacier_backup(config, "restore", "--from-spool", "--force", "--yes", "--to", str(to))
    run_until_killed(argv, point, tmp_path)


@pytest.fixture
def inside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safepath, "stages_inside", lambda to: True)


@pytest.mark.parametrize(
    "point",
    ["restore.swap.before_up", "restore.swap.moved_up"],
    ids=["before-up", "during-up"],
)
@pytest.mark.parametrize("force", [False, True])
def test_a_force_restore_killed_mid_swap_keeps_the_old_contents_and_refuses_the_next(
    tmp_path: Path, point: str, force: bool
) -> None:
    with tmpfs(tmp_path / "to") as to:  # a mount point: the restore is staged inside it
        _killed_mount_point_restore(tmp_path, to, point, force)


def _killed_mount_point_restore(tmp_path: Path, to: Path, point: str, force: bool) -> None:
    (to / "user.txt").write_text("mine")
    (to / "zz-user.txt").write_text("mine too")
    _killed_restore(tmp_path, to, point)
    old = to / ".glacier-replaced"
    assert sorted(os.listdir(old)) == ["user.txt", "zz-user.txt"]
    with pytest.raises(ExtractError, match=r"not empty.*\.glacier-replaced holds the previous"):
        check_target(to, force=force)
    with (
        pytest.raises(ExtractError, match=re.escape(str(old))),
        staged_target(to, force=force) as work,
    ):
        (work / "again.txt").write_text("x")  # pragma: no cover - never reached
    assert (old / "user.txt").read_text() == "mine"  # never deleted
    assert (old / "zz-user.txt").read_text() == "mine too"
    assert not (to / "again.txt").exists()


def test_a_force_restore_killed_between_the_renames_keeps_the_old_tree_beside(
    tmp_path: Path,
) -> None:
    to = tmp_path / "to"
    to.mkdir()
    (to / "user.txt").write_text("mine")
    _killed_restore(tmp_path, to, "restore.swap.beside_moved_aside")
    old = tmp_path / ".to.replaced"
    assert not to.exists() and (old / "user.txt").read_text() == "mine"
    for force in (False, True):
        with pytest.raises(ExtractError, match=re.escape(f"{old} holds the previous contents")):
            check_target(to, force=force)
    assert (old / "user.txt").read_text() == "mine"


def test_a_leftover_glacier_replaced_is_refused_even_outside_a_mount_point(
    tmp_path: Path,
) -> None:
    to = tmp_path / "to"
    (to / ".glacier-replaced").mkdir(parents=True)
    (to / ".glacier-replaced" / "user.txt").write_text("mine")
    with pytest.raises(ExtractError, match="previous contents"):
        check_target(to, force=True)
    assert (to / ".glacier-replaced" / "user.txt").read_text() == "mine"


def test_an_empty_leftover_glacier_replaced_is_dropped(tmp_path: Path, inside: None) -> None:
    to = tmp_path / "to"
    (to / ".glacier-replaced").mkdir(parents=True)
    (to / ".glacier-restoring").mkdir()
    (to / ".glacier-restoring" / "stale").write_text("restored only")
    with staged_target(to) as work:
        (work / "new.txt").write_text("new")
    assert sorted(os.listdir(to)) == ["new.txt"]


@pytest.mark.parametrize("target_exists", [False, True])
def test_a_leftover_replaced_tree_next_to_the_target_is_never_deleted(
    tmp_path: Path, target_exists: bool
) -> None:
    to = tmp_path / "out"
    old = tmp_path / ".out.replaced"
    old.mkdir()
    (old / "user.txt").write_text("mine")  # a --force restore was killed after moving it aside
    if target_exists:
        to.mkdir()
        (to / "restored.txt").write_text("restored")
    with (
        pytest.raises(ExtractError, match=re.escape(f"{old} holds the previous contents")),
        staged_target(to, force=True) as work,
    ):
        (work / "again.txt").write_text("x")  # pragma: no cover - never reached
    assert (old / "user.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".out.restoring"))


def test_the_rollback_goes_on_after_a_failed_move_and_names_where_the_data_is(
    tmp_path: Path, inside: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    to = tmp_path / "to"
    to.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (to / name).write_text(name)
    real_move = safepath._move

    def move(src: Path, dst: Path) -> None:
        if src.parent.name == ".glacier-restoring" and src.name == "new2":
            raise OSError("disk gone")
        if src.parent.name == ".glacier-replaced" and src.name == "c.txt":
            raise OSError("cannot move back")  # the first old entry moved back fails
        real_move(src, dst)

    monkeypatch.setattr(safepath, "_move", move)
    with (
        pytest.raises(ExtractError) as caught,
        staged_target(to, force=True) as work,
    ):
        (work / "new1").write_text("1")
        (work / "new2").write_text("2")
    message = str(caught.value)
    assert f"still in {to / '.glacier-replaced'} (c.txt)" in message
    assert isinstance(caught.value.__cause__, OSError)
    # Every other entry went back, the one that could not is kept, nothing restored remains.
    assert sorted(os.listdir(to)) == [".glacier-replaced", "a.txt", "b.txt"]
    assert (to / ".glacier-replaced" / "c.txt").read_text() == "c.txt"
    assert (to / "a.txt").read_text() == "a.txt"

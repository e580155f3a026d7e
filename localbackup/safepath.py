"""Path safety for restores: where an archive member may be written inside the target.

An archive is data from outside (a cold store, a disk); nothing in it may make a restore write
outside the target directory. The rules, each a refusal that fails the whole restore:

- a member name must be relative and free of ``..`` components;
- no member is written through a symlink: every parent of a member inside the target must be a
  real directory, whether the symlink came from the archive or was there before;
- a hardlink must point at a regular file inside the target, reached without symlinks.

Entries are created with ``O_EXCL | O_NOFOLLOW`` after removing what was at the path, so an
existing symlink (or hardlink) at the final component is replaced, never written through.

:func:`staged_target` is how a restore reaches its destination: all work happens in
``.<name>.restoring`` next to it, renamed into place only on success (inside it, for a mount
point); :func:`check_target` checks its preconditions before any costly work.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "STAGE_NAME",
    "ExtractError",
    "IntegrityError",
    "SafeTree",
    "UnsafeMemberError",
    "check_target",
    "member_parts",
    "staged_target",
    "stages_inside",
]


class ExtractError(Exception):
    """A restore cannot go on (bad archive, I/O error); the partial result is discarded."""


class IntegrityError(ExtractError):
    """The data read does not match what it must be (a checksum, a size, a valid stream)."""


class UnsafeMemberError(ExtractError):
    """An archive member breaks a safety rule; the message names it."""

    def __init__(self, member: bytes, reason: str) -> None:
        self.member = member
        super().__init__(f"refusing archive member {_show(member)}: {reason}")


def _show(name: bytes) -> str:
    return repr(name.decode("utf-8", "backslashreplace"))


def member_parts(name: bytes, *, what: str = "member") -> tuple[bytes, ...]:
    """The components of a member name; raises :class:`UnsafeMemberError` if it is unsafe.

    ``.`` components and repeated slashes are dropped; an empty result means the target root.
    """
    if name.startswith(b"/"):
        raise UnsafeMemberError(name, f"{what} name is an absolute path")
    if b"\0" in name:
        raise UnsafeMemberError(name, f"{what} name contains a NUL byte")
    parts = tuple(p for p in name.split(b"/") if p not in (b"", b"."))
    if b".." in parts:
        raise UnsafeMemberError(name, f"{what} name has a '..' component")
    return parts


class SafeTree:
    """The target directory of one restore, with the directories known to be real.

    ``known`` caches relative paths checked (or made) to be real directories, so the common
    case costs a set lookup; removing a directory drops it and everything below from the cache.
    Meant for a fresh, private directory that no other process writes into meanwhile.
    """

    def __init__(self, root: bytes) -> None:
        self.root = root
        self.known: set[bytes] = set()

    def path(self, parts: tuple[bytes, ...]) -> bytes:
        return os.path.join(self.root, *parts) if parts else self.root

    def parent_dirs(self, member: bytes, parts: tuple[bytes, ...], *, create: bool = True) -> bool:
        """Make sure every parent of ``parts`` is a real directory (created 0700 if missing).

        A symlink among them is a refusal; a non-directory is replaced (a later increment says
        a directory is there now). With ``create=False`` nothing is changed: a non-directory
        is a refusal and a missing parent returns False.
        """
        for i in range(1, len(parts)):
            rel = b"/".join(parts[:i])
            if rel in self.known:
                continue
            full = os.path.join(self.root, rel)
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                if not create:
                    return False
                os.mkdir(full, 0o700)
                self.known.add(rel)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise UnsafeMemberError(
                    member, f"it would be written through the symlink {_show(rel)}"
                )
            if not stat.S_ISDIR(st.st_mode):
                if not create:
                    raise UnsafeMemberError(member, f"{_show(rel)} is not a directory")
                os.unlink(full)
                os.mkdir(full, 0o700)
            self.known.add(rel)
        return True

    def clear(self, member: bytes, parts: tuple[bytes, ...], *, keep_dir: bool = False) -> bool:
        """Prepare ``parts`` to be created: parents checked, whatever is there removed.

        With ``keep_dir``, an existing real directory stays (a directory member merges into
        it); returns True when it did.
        """
        self.parent_dirs(member, parts)
        full = self.path(parts)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                self.known.add(b"/".join(parts))
                return True
            self.remove(parts)
        else:
            os.unlink(full)
        return False

    def remove(self, parts: tuple[bytes, ...]) -> None:
        """Delete a path (a directory with its contents; a symlink itself, never its target)."""
        full = self.path(parts)
        st = os.lstat(full)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(full)
            rel = b"/".join(parts)
            below = rel + b"/"
            self.known = {k for k in self.known if k != rel and not k.startswith(below)}
        else:
            os.unlink(full)

    def hardlink_source(self, member: bytes, target: bytes) -> bytes | None:
        """The absolute path of a hardlink's target, or None if it is not in the tree.

        Refuses targets outside the tree, reached through a symlink, or not regular files.
        """
        try:
            parts = member_parts(target, what="hardlink target")
        except UnsafeMemberError:
            raise UnsafeMemberError(
                member, f"hardlink points outside the target ({_show(target)})"
            ) from None
        if not parts:
            raise UnsafeMemberError(member, "hardlink points at the target directory itself")
        if not self.parent_dirs(member, parts, create=False):
            return None
        full = self.path(parts)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeMemberError(
                member, f"hardlink target {_show(target)} is not a regular file"
            )
        return full


def _force_rmtree(path: Path) -> None:
    """Remove a tree even where restored directory modes forbid writing."""

    def onerror(func: Callable[..., Any], p: str, exc: Any) -> None:
        parent = os.path.dirname(p)
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o700)
            os.chmod(p, 0o700) if os.path.isdir(p) and not os.path.islink(p) else None
        func(p)

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=onerror)


STAGE_NAME = ".glacier-restoring"  # the work directory inside a mount-point target
_REPLACED_NAME = ".glacier-replaced"  # the old contents of such a target, during --force
_STAGE_NAMES = frozenset({STAGE_NAME, _REPLACED_NAME})


def stages_inside(to: Path) -> bool:
    """Whether a restore into ``to`` must be staged inside it rather than next to it.

    True when ``to`` is an existing directory on another filesystem than its parent (a mount
    point, e.g. a freshly mounted disk): a directory there cannot be renamed onto it.
    """
    try:
        st = os.lstat(to)
        if not stat.S_ISDIR(st.st_mode):
            return False
        return os.path.ismount(to) or st.st_dev != os.stat(to.parent).st_dev
    except OSError:
        return False


def _entries(to: Path, inside: bool) -> list[str]:
    """The names in ``to``; inside-staged targets ignore leftovers of a killed restore."""
    names = os.listdir(to)
    return [n for n in names if n not in _STAGE_NAMES] if inside else names


def _writable_dir(path: Path, what: str) -> None:
    """``path``, or the nearest existing ancestor that would hold it, is a writable directory."""
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ExtractError(f"{what}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ExtractError(f"{what}: {probe} is not writable")


def check_target(to: Path, *, force: bool = False, download_dir: Path | None = None) -> None:
    """Every precondition of :func:`staged_target`, checked before any costly work.

    Raises :class:`ExtractError` if ``to`` exists and is not a directory, is not empty without
    ``force``, or if the directory the restore is staged in (or ``download_dir``, where a
    retrieved archive would be downloaded) cannot be created or written.
    """
    to = Path(os.path.abspath(to))
    inside = False
    if os.path.lexists(to):
        if to.is_symlink() or not to.is_dir():
            raise ExtractError(f"{to} exists and is not a directory")
        inside = stages_inside(to)
        if _entries(to, inside) and not force:
            raise ExtractError(f"{to} is not empty (use --force to replace its contents)")
    if inside:
        _writable_dir(to, f"cannot restore into {to}")
    else:
        _writable_dir(to.parent, f"cannot restore into {to}")
    if download_dir is not None:
        _writable_dir(download_dir, f"cannot download into {download_dir}")


@contextlib.contextmanager
def staged_target(to: Path, *, force: bool = False) -> Iterator[Path]:
    """A fresh directory to restore into, put in place of ``to`` only if the block succeeds.

    The work happens in ``.<name>.restoring`` next to ``to`` (same filesystem, mode 0700); on
    failure it is removed. A non-empty ``to`` is refused unless ``force``: then, on success,
    ``to`` is renamed to ``.<name>.replaced``, the restored tree renamed to ``to``, and the old
    tree deleted.

    When ``to`` is a mount point (or otherwise on another filesystem than its parent), the work
    happens in ``to/.glacier-restoring`` instead, whose entries are moved up into ``to`` on
    success (renames within one filesystem); on failure it is removed, so ``to`` keeps exactly
    what it had.
    """
    to = Path(os.path.abspath(to))
    check_target(to, force=force)
    if stages_inside(to):
        with _staged_inside(to) as work:
            yield work
        return
    existed = os.path.lexists(to)
    to.parent.mkdir(parents=True, exist_ok=True)
    work = to.parent / f".{to.name}.restoring"
    if os.path.lexists(work):
        _force_rmtree(work)  # left by an earlier restore that failed
    os.mkdir(work, 0o700)
    try:
        yield work
        os.chmod(work, stat.S_IMODE(to.stat().st_mode) if existed else 0o700)
        if existed and any(to.iterdir()):
            old = to.parent / f".{to.name}.replaced"
            if os.path.lexists(old):
                _force_rmtree(old)
            os.rename(to, old)
            os.rename(work, to)
            _force_rmtree(old)
        else:
            os.rename(work, to)  # replaces an empty directory
    except BaseException:
        _force_rmtree(work)
        raise
    _fsync_dir(to.parent)


@contextlib.contextmanager
def _staged_inside(to: Path) -> Iterator[Path]:
    """:func:`staged_target` for a target that cannot be renamed onto: stage inside it."""
    work = to / STAGE_NAME
    old = to / _REPLACED_NAME
    for leftover in (work, old):  # left by an earlier restore that was killed
        if os.path.lexists(leftover):
            _force_rmtree(leftover)
    os.mkdir(work, 0o700)
    try:
        yield work
        restored = os.listdir(work)
        if STAGE_NAME in restored or _REPLACED_NAME in restored:
            raise ExtractError(
                f"the restored tree has a top-level entry named {STAGE_NAME} or "
                f"{_REPLACED_NAME}: restore into a directory that is not a mount point"
            )
        _swap_entries(to, work, old, restored)
        os.rmdir(work)
    except BaseException:
        _force_rmtree(work)
        with contextlib.suppress(OSError):
            os.rmdir(old)  # emptied by the rollback
        raise
    _force_rmtree(old)
    _fsync_dir(to)


def _swap_entries(to: Path, work: Path, old: Path, restored: list[str]) -> None:
    """Move the old entries of ``to`` into ``old``, then those of ``work`` up into ``to``;
    on failure move everything back where it was."""
    moved_out: list[str] = []
    moved_up: list[str] = []
    try:
        previous = _entries(to, True)
        if previous:
            os.mkdir(old, 0o700)
            for name in previous:
                _move(to / name, old / name)
                moved_out.append(name)
        for name in restored:
            _move(work / name, to / name)
            moved_up.append(name)
    except BaseException:
        with contextlib.suppress(OSError):
            for name in reversed(moved_up):
                _move(to / name, work / name)
            for name in reversed(moved_out):
                _move(old / name, to / name)
        raise


def _move(src: Path, dst: Path) -> None:
    """Rename to another directory of the same filesystem. A directory changing parent must
    be writable (its ``..`` entry changes): a restored read-only one is lent ``u+w``."""
    st = os.lstat(src)
    if stat.S_ISDIR(st.st_mode) and not os.access(src, os.W_OK, follow_symlinks=False):
        os.chmod(src, stat.S_IMODE(st.st_mode) | stat.S_IWUSR)
        try:
            os.rename(src, dst)
        finally:
            os.chmod(dst if os.path.lexists(dst) else src, stat.S_IMODE(st.st_mode))
    else:
        os.rename(src, dst)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

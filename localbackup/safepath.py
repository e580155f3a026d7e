"""Path safety for restores: where an archive member may be written inside the target.

An archive is data from outside (a cold store, a disk); nothing in it may make a restore write
outside the target directory. The rules, each a refusal that fails the whole restore:

- a member name must be relative and free of ``..`` components;
- no member is written through a symlink: every parent of a member inside the target must be a
  real directory, whether the symlink came from the archive or was there before;
- a hardlink must point at a regular file inside the target, reached without symlinks.

Entries are created with ``O_EXCL | O_NOFOLLOW`` after removing what was at the path, so an
existing symlink (or hardlink) at the final component is replaced, never written through.

The directory these rules guard is a fresh work directory: :mod:`localbackup.staging` makes it
and puts it in place of the target once the restore succeeded.
"""

from __future__ import annotations

import os
import shutil
import stat

from localbackup.fileio import PRIVATE_DIR_MODE

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

__all__ = [
    "ExtractError",
    "SafeTree",
    "UnsafeMemberError",
    "member_parts",
    "show_member",
]


class ExtractError(Exception):
    """A restore cannot go on (bad archive, I/O error); the partial result is discarded."""


class UnsafeMemberError(ExtractError):
    """An archive member breaks a safety rule; the message names it."""

    def __init__(self, member: bytes, reason: str) -> None:
        self.member = member
        super().__init__(f"refusing archive member {show_member(member)}: {reason}")


def show_member(name: bytes) -> str:
    """A member name as messages show it: quoted, undecodable bytes as backslash escapes."""
    return repr(name.decode("utf-8", "backslashreplace"))


def member_parts(name: bytes, *, what: str = "member") -> tuple[bytes, ...]:
    """The components of a member name; raises :class:`UnsafeMemberError` if it is unsafe.

    ``.`` components and repeated slashes are dropped; an empty result means the target root.
    """
    # The common case, a clean relative name ("a/b/c", "a/b/" for a directory), in C-level
    # scans; anything else goes through the full checks below.
    fast = (name[:-1] if name.endswith(b"/") else name).split(b"/")
    if not (name.startswith(b"/") or b"\0" in name or b"" in fast or b"." in fast or b".." in fast):
        return tuple(fast)
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
    A path enters ``known`` only after all its ancestors did, and leaves it with everything
    below it, so a known parent means every ancestor is a real directory.
    Meant for a fresh, private directory that no other process writes into meanwhile.
    """

    def __init__(self, root: bytes) -> None:
        self.root = root
        self.known: set[bytes] = set()
        # The directory files were last created in, open: members come directory by directory,
        # so a file is created relative to it (the kernel resolves one name, not the path).
        self._dir: bytes | None = None
        self._dir_fd = -1

    def close(self) -> None:
        """Let go of the open directory (the tree stays usable: it is opened again if needed)."""
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
        self._dir, self._dir_fd = None, -1

    def path(self, parts: tuple[bytes, ...]) -> bytes:
        """The absolute path of ``parts`` (the root itself for no parts)."""
        return self.root + b"/" + b"/".join(parts) if parts else self.root

    def parent_dirs(self, member: bytes, parts: tuple[bytes, ...], *, create: bool = True) -> bool:
        """Make sure every parent of ``parts`` is a real directory (created 0700 if missing).

        A symlink among them is a refusal; a non-directory is replaced (a later increment says
        a directory is there now). With ``create=False`` nothing is changed: a non-directory
        is a refusal and a missing parent returns False.
        """
        if len(parts) < 2 or b"/".join(parts[:-1]) in self.known:
            return True  # a known directory's ancestors are known too (see ``known``)
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
                os.mkdir(full, PRIVATE_DIR_MODE)
                self.known.add(rel)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise UnsafeMemberError(
                    member, f"it would be written through the symlink {show_member(rel)}"
                )
            if not stat.S_ISDIR(st.st_mode):
                if not create:
                    raise UnsafeMemberError(member, f"{show_member(rel)} is not a directory")
                os.unlink(full)
                os.mkdir(full, PRIVATE_DIR_MODE)
            self.known.add(rel)
        return True

    def create(self, member: bytes, parts: tuple[bytes, ...], flags: int, mode: int) -> int:
        """Open a new file at ``parts`` (always ``O_CREAT | O_EXCL | O_NOFOLLOW``, plus
        ``flags``): parents checked, whatever was there removed first if the path is taken."""
        flags |= os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        self.parent_dirs(member, parts)
        parent = b"/".join(parts[:-1])
        if parent != self._dir:
            self.close()
            # a known real directory (parent_dirs), reached through real directories only
            self._dir_fd = os.open(self.path(parts[:-1]), _DIR_FLAGS)
            self._dir = parent
        try:
            return os.open(parts[-1], flags, mode, dir_fd=self._dir_fd)
        except FileExistsError:  # also a symlink: O_EXCL never follows one
            pass
        self.clear(member, parts)
        return os.open(parts[-1], flags, mode, dir_fd=self._dir_fd)

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
            if self._dir is not None and (self._dir == rel or self._dir.startswith(below)):
                self.close()
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
                member, f"hardlink points outside the target ({show_member(target)})"
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
                member, f"hardlink target {show_member(target)} is not a regular file"
            )
        return full

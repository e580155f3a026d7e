"""Target staging for restores: how a restore reaches its destination directory.

A restore never writes into its destination directly. :func:`staged_target` hands out a fresh,
private work directory, ``.<name>.restoring`` next to the target (or ``.glacier-restoring``
inside it when the target is a mount point, see :func:`stages_inside`), and only when the whole
restore succeeded swaps it into place; on failure the work directory is removed and the target
keeps exactly what it had. :func:`check_target` checks the preconditions before any costly work
(a cold retrieval, a download).

With ``--force`` the previous contents of the target are set aside during the swap
(``.<name>.replaced`` next to it, or ``.glacier-replaced`` inside it) and deleted once the
restored tree is in place. Such a leftover of an interrupted swap may be the only copy of the
user's data: it is never deleted nor merged back; the restore is refused, naming it.

Which archive member may be written where inside the work directory is
:mod:`localbackup.safepath`'s business.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from localbackup import testpoints
from localbackup.atomic import fsync_dir
from localbackup.fileio import PRIVATE_DIR_MODE, NoSpaceError, is_no_space
from localbackup.safepath import ExtractError

__all__ = [
    "RETRIEVAL_NAME",
    "STAGE_NAME",
    "check_target",
    "staged_target",
    "stages_inside",
]


def _force_rmtree(path: Path) -> None:
    """Remove a tree even where restored directory modes forbid writing."""

    def onerror(func: Callable[..., Any], p: str, exc: Any) -> None:
        parent = os.path.dirname(p)
        with contextlib.suppress(OSError):
            os.chmod(parent, stat.S_IRWXU)
            os.chmod(p, stat.S_IRWXU) if os.path.isdir(p) and not os.path.islink(p) else None
        func(p)

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=onerror)


STAGE_NAME = ".glacier-restoring"  # the work directory inside a mount-point target
_REPLACED_NAME = ".glacier-replaced"  # the old contents of such a target, during --force
RETRIEVAL_NAME = ".glacier-retrieval"  # a cold download into such a target (uploader)
_STAGE_NAMES = frozenset({STAGE_NAME, _REPLACED_NAME, RETRIEVAL_NAME})


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
    """The names in ``to``; inside-staged targets ignore the suite's own work directories.

    A leftover ``.glacier-replaced`` is never ignored silently: :func:`_check_leftovers`
    refuses the target while it holds anything.
    """
    names = os.listdir(to)
    return [n for n in names if n not in _STAGE_NAMES] if inside else names


def _replaced_beside(to: Path) -> Path:
    """Where a ``--force`` restore next to ``to`` keeps its old tree during the swap."""
    return to.parent / f".{to.name}.replaced"


def _holds_something(path: Path) -> bool:
    """Whether ``path`` exists and is anything but an empty real directory."""
    try:
        st = os.lstat(path)
    except OSError:
        return False  # missing, or under a non-directory: nothing there to lose
    if not stat.S_ISDIR(st.st_mode):
        return True
    try:
        return bool(os.listdir(path))
    except OSError:
        return True  # unreadable: assume it holds data


def _check_leftovers(to: Path) -> None:
    """Refuse a target whose previous contents were left aside by an interrupted ``--force``.

    A ``--force`` restore moves the old contents of ``to`` aside (``to/.glacier-replaced``
    for a mount point, ``.<name>.replaced`` next to ``to`` otherwise) and deletes them only
    once the restored tree is in place. If it was killed in between, the user's data may be
    nowhere else: it is never deleted nor merged back automatically (a half-done swap would
    mix old and restored entries); the error names the path and how to put it back.
    """
    inside_old = to / _REPLACED_NAME
    if os.path.isdir(to) and not to.is_symlink() and _holds_something(inside_old):
        raise ExtractError(
            f"{to} is not empty: {inside_old} holds the previous contents of {to}, left by "
            f"an interrupted --force restore. Put them back (move every entry of {inside_old} "
            f"into {to}, e.g. 'mv {inside_old}/* {inside_old}/.[!.]* {to}/', after removing "
            f"any restored entry of the same name), or move them elsewhere; then remove the "
            f"empty {inside_old} and restore again"
        )
    beside_old = _replaced_beside(to)
    if _holds_something(beside_old):
        back = (
            f"'mv {beside_old} {to}'"
            if not os.path.lexists(to)
            else f"move {to} aside, then 'mv {beside_old} {to}'"
        )
        raise ExtractError(
            f"{beside_old} holds the previous contents of {to}, left by an interrupted "
            f"--force restore. To put them back: {back}; or, if they are no longer needed, "
            f"delete {beside_old} yourself; then restore again"
        )


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
    retrieved archive would be downloaded) cannot be created or written. The previous contents
    of ``to`` left aside by an interrupted ``--force`` restore (a non-empty
    ``to/.glacier-replaced`` or ``.<name>.replaced`` next to it) are refused even with
    ``force``, naming where they are: they are never deleted.
    """
    to = Path(os.path.abspath(to))
    _check_leftovers(to)
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
    what it had. With ``force`` the old entries wait in ``to/.glacier-replaced`` meanwhile,
    deleted once the restored ones are in place.

    A leftover work directory (restored data only) is removed. The old contents left aside by
    a ``--force`` restore that was killed mid-swap (a non-empty ``.glacier-replaced`` or
    ``.<name>.replaced``) are never deleted nor merged back: the restore is refused with an
    error naming them (see :func:`check_target`) until the user has put them back or away.
    That is the safer choice: after a half-done swap ``to`` may hold some restored entries,
    and moving the old ones back would silently mix two trees. If a failed swap cannot be
    rolled back, :class:`ExtractError` says where the old entries are.
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
    os.mkdir(work, PRIVATE_DIR_MODE)
    try:
        yield work
        os.chmod(work, stat.S_IMODE(to.stat().st_mode) if existed else PRIVATE_DIR_MODE)
        if existed and any(to.iterdir()):
            old = _replaced_beside(to)
            _check_leftovers(to)  # never delete a leftover: it may be the only copy
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(old)  # an empty directory holds nothing
            os.rename(to, old)
            testpoints.pause("restore.swap.beside_moved_aside")
            os.rename(work, to)
            _force_rmtree(old)
        else:
            os.rename(work, to)  # replaces an empty directory
    except BaseException as exc:
        written = _staged_bytes(work) if is_no_space(exc) else None
        _force_rmtree(work)
        if written is not None:
            raise _no_space(to, written) from exc
        raise
    fsync_dir(to.parent)


@contextlib.contextmanager
def _staged_inside(to: Path) -> Iterator[Path]:
    """:func:`staged_target` for a target that cannot be renamed onto: stage inside it."""
    work = to / STAGE_NAME
    old = to / _REPLACED_NAME
    _check_leftovers(to)  # the old contents left aside by a killed --force: never deleted
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(old)  # empty: nothing to keep
    if os.path.lexists(work):
        _force_rmtree(work)  # restored entries of an earlier restore that was killed
    os.mkdir(work, PRIVATE_DIR_MODE)
    try:
        yield work
        restored = os.listdir(work)
        clash = sorted(_STAGE_NAMES.intersection(restored))
        if clash:
            raise ExtractError(
                f"the restored tree has a top-level entry named {', '.join(clash)}: "
                "restore into a directory that is not a mount point"
            )
        _swap_entries(to, work, old, restored)
        os.rmdir(work)
    except BaseException as exc:
        written = _staged_bytes(work) if is_no_space(exc) else None
        _force_rmtree(work)
        with contextlib.suppress(OSError):
            os.rmdir(old)  # emptied by the rollback
        if written is not None:
            raise _no_space(to, written) from exc
        raise
    _force_rmtree(old)
    fsync_dir(to)


def _staged_bytes(work: Path) -> int:
    """What a restore had written into its work directory."""
    written = 0
    for root, _dirs, files in os.walk(work):
        for name in files:
            with contextlib.suppress(OSError):
                written += os.lstat(os.path.join(root, name)).st_size
    return written


def _no_space(to: Path, written: int) -> NoSpaceError:
    """A full filesystem while restoring into ``to``, said with the path and the sizes."""
    return NoSpaceError(
        to,
        f"restoring into {to}",
        written,
        "free some space there, or restore to another place with --to",
        removed="the partial restore",
    )


def _swap_entries(to: Path, work: Path, old: Path, restored: list[str]) -> None:
    """Move the old entries of ``to`` into ``old``, then those of ``work`` up into ``to``;
    on failure move everything back where it was."""
    moved_out: list[str] = []
    moved_up: list[str] = []
    try:
        previous = _entries(to, True)
        if previous:
            os.mkdir(old, PRIVATE_DIR_MODE)
            for name in previous:
                _move(to / name, old / name)
                moved_out.append(name)
        testpoints.pause("restore.swap.before_up")
        for name in restored:
            _move(work / name, to / name)
            moved_up.append(name)
            testpoints.pause("restore.swap.moved_up")
    except BaseException as exc:
        _roll_back(to, work, old, moved_up, moved_out, cause=exc)
        raise


def _roll_back(
    to: Path,
    work: Path,
    old: Path,
    moved_up: list[str],
    moved_out: list[str],
    *,
    cause: BaseException,
) -> None:
    """Undo :func:`_swap_entries` entry by entry: one failed move does not stop the others.

    Raises :class:`ExtractError` naming where the old entries are if any could not go back.
    """
    stuck_up: list[str] = []
    for name in reversed(moved_up):
        try:
            _move(to / name, work / name)
        except OSError:
            stuck_up.append(name)
    stuck_out: list[str] = []
    for name in reversed(moved_out):
        try:
            _move(old / name, to / name)
        except OSError:
            stuck_out.append(name)
    if not stuck_out and not stuck_up:
        return
    parts = [f"the restore into {to} failed ({cause!r}) and could not be fully undone"]
    if stuck_out:
        parts.append(
            f"{len(stuck_out)} of the previous entries of {to} are still in {old} "
            f"({', '.join(sorted(stuck_out))}): move them back into {to} yourself"
        )
    if stuck_up:
        parts.append(
            f"{len(stuck_up)} restored entries remain in {to} ({', '.join(sorted(stuck_up))})"
        )
    raise ExtractError("; ".join(parts)) from cause


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

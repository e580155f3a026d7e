"""The restore target's preconditions, checked before anything is paid for or downloaded.

A cold restore would otherwise request (and pay for) a retrieval and download it all, only to
be refused at the end because ``--to`` is not empty or not writable.
"""

from __future__ import annotations

from pathlib import Path

from localbackup.pointintime import LATEST
from localbackup.staging import check_target
from uploader.catalogue import Catalogue, FinishedRestore, last_restore_into
from uploader.restore.request import RestoreRequest
from uploader.restore.ui import RestoreUI, consent

__all__ = ["already_restored", "check_target_first", "confirm_replace"]


def already_restored(catalogue: Catalogue, request: RestoreRequest) -> FinishedRestore | None:
    """With ``--resume``: the restore into ``request.to`` that finished already (the command
    was stopped after its very end), when the target is not empty, ``force`` is not set and the
    cycle asked for is the one restored there; else None."""
    to = request.to
    if not request.retrieval.resume or request.force or request.from_spool:
        return None
    if not (to.is_dir() and not to.is_symlink() and any(to.iterdir())):
        return None
    done = last_restore_into(catalogue, to)
    if done is None or request.cycle not in (LATEST, done.cycle_id):
        return None
    return done


def check_target_first(request: RestoreRequest, ui: RestoreUI) -> None:
    """Every precondition on ``request.to`` before any work: raises
    :class:`~localbackup.extract.ExtractError` if it cannot be restored into (not a directory,
    not empty without ``force``, not writable), :class:`~uploader.restore.RestoreDeclined` if
    replacing its contents was not confirmed (see :func:`confirm_replace`)."""
    check_target(request.to, force=request.force)
    confirm_replace(request.to, force=request.force, assume_yes=request.assume_yes, ui=ui)


def confirm_replace(to: Path, *, force: bool, assume_yes: bool, ui: RestoreUI) -> None:
    """``force`` on a non-empty directory replaces its contents: that needs ``assume_yes``
    or a yes from the user, else :class:`~uploader.restore.RestoreDeclined` is raised."""
    if not (force and to.is_dir() and not to.is_symlink() and any(to.iterdir())):
        return
    consent(
        ui,
        f"replace everything in {to} with the restored tree?",
        assume_yes=assume_yes,
        unattended=f"{to} is not empty: add --yes to replace its contents",
    )

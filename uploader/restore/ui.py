"""How a restore talks with its user: :class:`RestoreUI`, what it says, and consent.

The use cases below ``watcher`` never print or read a terminal: they hand their messages to a
:class:`RestoreUI` (the command line prints them and asks with ``input``). Steps that cost money
or replace data need consent: ``assume_yes`` in the request, or a yes from someone the UI can
ask; otherwise they raise :class:`RestoreDeclined` and nothing is requested or replaced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

from localbackup.configkit import format_size
from localbackup.extract import ExtractOptions
from localbackup.formats import IncrementManifest
from localbackup.pointintime import increment_chain
from uploader.restore.stream import RestoreError

__all__ = [
    "RestoreDeclined",
    "RestoreUI",
    "RetrievalDeclined",
    "chain_size",
    "consent",
    "describe_plan",
    "with_progress",
]


class RestoreUI(Protocol):
    """The user's side of a restore (the CLI: print, input, a progress line on a terminal).

    Calls may come from a worker thread (the plan is said while the archive is being read).
    """

    @property
    def can_ask(self) -> bool:
        """Whether :meth:`confirm` reaches someone who can answer (the CLI: a terminal)."""
        ...

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question (no ``[y/N]`` in it); True for yes."""
        ...

    def say(self, text: str, *, now: bool = False) -> None:
        """Tell the user ``text`` (one or more lines); ``now``: show it at once, a long step
        follows."""
        ...

    def warn(self, text: str) -> None:
        """Tell the user about a problem the restore works around (the CLI: on stderr)."""
        ...

    def status(self, text: str) -> None:
        """Show a status line, at once, in place of the previous one (while waiting); the next
        :meth:`say` ends it."""
        ...

    def progress(self, done: int, total: int, left: int) -> None:
        """Download progress: ``done`` of ``total`` bytes, ``left`` ranges to go."""
        ...

    def progress_done(self) -> None:
        """The download is over (the CLI ends its progress line)."""
        ...

    def restoring(self, files: int, done: int, total: int) -> None:
        """Restore progress: ``files`` written, ``done`` of ``total`` compressed bytes of the
        increments applied (called from the worker thread that restores)."""
        ...

    def restoring_done(self) -> None:
        """The restore is over, whichever way (the CLI removes its progress bar)."""
        ...


class RestoreDeclined(RestoreError):
    """A step that needs consent was not confirmed: no one to ask and no ``--yes``, or the
    answer was no. The message says what to do; it is empty when the user answered no
    themselves (there is nothing to tell them)."""


class RetrievalDeclined(RestoreDeclined):
    """The retrieval was not confirmed (no terminal and no --yes, or the user said no)."""


def consent(
    ui: RestoreUI,
    question: str,
    *,
    assume_yes: bool,
    unattended: str,
    declined: str = "",
    error: type[RestoreDeclined] = RestoreDeclined,
) -> None:
    """Go on with ``assume_yes`` or a yes to ``question``; else raise ``error``: saying
    ``unattended`` when no one can be asked, ``declined`` when the answer was no."""
    if assume_yes:
        return
    if not ui.can_ask:
        raise error(unattended)
    if not ui.confirm(question):
        raise error(declined)


def chain_size(increments: Sequence[IncrementManifest], inc: IncrementManifest) -> int:
    """The compressed bytes of the increments applied to restore ``inc``."""
    chain = increment_chain(increments, inc.number)
    return sum(m.tar.size for m in increments if m.number in chain)


def with_progress(options: ExtractOptions, ui: RestoreUI, total: list[int]) -> ExtractOptions:
    """``options`` reporting the restore's progress to ``ui``; ``total[0]`` holds the bytes to
    apply once the plan is known."""
    return dataclasses.replace(
        options, progress=lambda files, done: ui.restoring(files, done, total[0])
    )


def describe_plan(
    where: str, increments: Sequence[IncrementManifest], inc: IncrementManifest, mode: str | None
) -> str:
    """What a restore is about to apply: the cycle (``where`` it is), the increment chosen and
    the chain of increments that makes it."""
    chain = increment_chain(increments, inc.number)
    size = chain_size(increments, inc)
    finished = inc.finished_at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    return (
        f"restoring cycle {where}\n"
        f"  increment {inc.number} ({inc.kind}), finished {finished}"
        f"{f', {mode} cycle' if mode else ''}\n"
        f"  applying increments {', '.join(map(str, chain))} ({format_size(size)} compressed)"
    )

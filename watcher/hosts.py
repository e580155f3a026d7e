"""``--host NAME``: act as another host (recover, list, verify and restore its backups).

A global option (``glacier-backup --host NAME COMMAND``) and, for the commands a recovery uses,
an option of the command too (``inventory``, ``restore``, ``verify``); either overrides
``[backup] host`` for the run (:func:`watcher.config.with_host`).
"""

from __future__ import annotations

import argparse

from localbackup.config import is_host_name

HELP = (
    "act as host NAME instead of [backup] host: recover, list, verify and restore another "
    "host's backups (a lost machine's, from a new one)"
)


def host_name(text: str) -> str:
    """A host name as ``[backup] host`` takes it (an argparse type)."""
    if not is_host_name(text):
        raise argparse.ArgumentTypeError(
            f"not a host name (letters, digits, '.', '_', '-'; at most 63): {text!r}"
        )
    return text


def add_host_option(p: argparse.ArgumentParser) -> None:
    """``--host NAME`` on a command (the global option's value stays when it is not given)."""
    p.add_argument("--host", type=host_name, default=argparse.SUPPRESS, metavar="NAME", help=HELP)

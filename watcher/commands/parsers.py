"""Every subcommand's ``--help``: a one-line summary, a description and runnable examples."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

__all__ = ["Subparsers", "add_command"]

if TYPE_CHECKING:
    #: What each command module's ``add_parser`` is given.
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


class _HelpFormatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal as usual; the examples kept line by line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line + "\n" for line in text.splitlines()).rstrip("\n")
        return super()._fill_text(text, width, indent)


def add_command(
    sub: Subparsers, name: str, *, summary: str, description: str, examples: Sequence[str]
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` says what it does and shows how it is used."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    return sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=_HelpFormatter,
    )


def add_identity_option(p: argparse.ArgumentParser, what: str = "") -> None:
    """``--identity FILE``: the age identity file to decrypt with (``what`` says for what)."""
    p.add_argument(
        "--identity",
        type=Path,
        metavar="FILE",
        help=f"age identity file{what} (default: [encryption] identity_file)",
    )

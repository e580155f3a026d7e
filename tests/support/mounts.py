"""A real mount point for tests (a small tmpfs), where the machine allows mounting."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

NO_MOUNT = "cannot mount a tmpfs here (needs root and mount rights)"


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "64m") -> Iterator[Path]:
    """Mount an empty tmpfs at ``path`` (created if needed) for the block; skip the test with
    the allow-listed reason :data:`NO_MOUNT` where mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode:
        pytest.skip(f"{NO_MOUNT}: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)

"""Shared fixtures for the local backup tests: build trees, run increments, extract them."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from localbackup.increment import IncrementOptions, IncrementResult, write_increment
from localbackup.index import Index, read_index

HAVE_GNU_TAR = (
    shutil.which("tar") is not None
    and b"GNU tar" in subprocess.run(["tar", "--version"], capture_output=True, check=False).stdout
)
needs_gnu_tar = pytest.mark.skipif(not HAVE_GNU_TAR, reason="GNU tar not available")


@dataclass
class Backup:
    tar: Path
    index: Index
    result: IncrementResult

    @property
    def warnings_by_kind(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for w in self.result.warnings:
            out.setdefault(w.kind, []).append(w.path)
        return out


BackupFn = Callable[..., Backup]


@pytest.fixture
def backup(tmp_path: Path) -> BackupFn:
    """``backup(sources, base=None, **options)`` -> Backup, outputs under tmp_path/out."""
    out = tmp_path / "out"
    out.mkdir()
    counter = iter(range(1000))

    def run(
        sources: list[Path] | Path,
        base: Backup | None = None,
        opener: Callable[[bytes], int] | None = None,
        **options: object,
    ) -> Backup:
        n = next(counter)
        srcs = tuple(sources) if isinstance(sources, list) else (sources,)
        opts = IncrementOptions(sources=srcs, **options)  # type: ignore[arg-type]
        tar_path = out / f"inc-{n:04d}.tar.zst"
        index_buf = io.BytesIO()
        kwargs = {"opener": opener} if opener is not None else {}
        with open(tar_path, "wb") as t:
            result = write_increment(
                opts, base.index if base is not None else None, t, index_buf, **kwargs
            )
        index_buf.seek(0)
        return Backup(tar_path, read_index(index_buf), result)

    return run


def gnu_extract(dest: Path, *tars: Path, extra: tuple[str, ...] = ()) -> None:
    """Extract increments in order with GNU tar, as a restore would."""
    dest.mkdir(exist_ok=True)
    for t in tars:
        res = subprocess.run(
            ["tar", "--zstd", "-xpf", str(t), "-C", str(dest), *extra],
            capture_output=True,
            check=False,
        )
        assert res.returncode == 0, res.stderr.decode(errors="replace")
        assert res.stderr == b"", res.stderr.decode(errors="replace")


def snapshot(root: Path, dir_mtimes: bool = True) -> dict[bytes, tuple[object, ...]]:
    """Relative path -> (kind, mode, mtime_ns, content or link target) for comparisons.

    Extracting an increment over a full replaces changed files, which touches their parent
    directory on the restore side; ``dir_mtimes=False`` leaves directory mtimes out."""
    out: dict[bytes, tuple[object, ...]] = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, base)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", st.st_mode, st.st_mtime_ns if dir_mtimes else None)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", st.st_mode, st.st_mtime_ns, f.read())
    return out


def archived_root(dest: Path, source: Path) -> Path:
    """Where ``source`` lands inside an extraction directory (leading "/" stripped)."""
    return dest / str(source).lstrip("/")

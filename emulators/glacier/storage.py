"""On-disk layout of the emulator's data directory.

``archives/<id>``            archive bytes
``uploads/<upload>/<first>`` received multipart parts
``jobs/<job>/output``        job output (a hard link to the archive, or the inventory document)
``tmp/``                     request bodies being received
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

COPY_CHUNK = 1024 * 1024


class Storage:
    """File operations on the data directory; every path it returns lies inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("archives", "uploads", "jobs", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def temp_path(self) -> Path:
        """A fresh path for a body being received."""
        return self.root / "tmp" / uuid.uuid4().hex

    def archive_path(self, archive_id: str) -> Path:
        """Where an archive's bytes are kept."""
        return self.root / "archives" / archive_id

    def part_path(self, upload_id: str, first: int) -> Path:
        """Where a part starting at ``first`` is kept."""
        directory = self.root / "uploads" / upload_id
        directory.mkdir(exist_ok=True)
        return directory / str(first)

    def job_output_path(self, job_id: str) -> Path:
        """Where a job's output is kept."""
        directory = self.root / "jobs" / job_id
        directory.mkdir(exist_ok=True)
        return directory / "output"

    @staticmethod
    def commit(temp: Path, final: Path) -> None:
        """Atomically move a received body into place (replacing an older one)."""
        os.replace(temp, final)

    @staticmethod
    def discard(path: Path) -> None:
        """Remove a file if it exists."""
        path.unlink(missing_ok=True)

    @staticmethod
    def concatenate(sources: Iterable[Path], dest: Path) -> None:
        """Join part files into one archive file without loading them into memory."""
        with dest.open("wb") as out:
            for src in sources:
                with src.open("rb") as inp:
                    shutil.copyfileobj(inp, out, COPY_CHUNK)

    def link_job_output(self, job_id: str, archive: Path) -> Path:
        """Give a retrieval job its own name for the archive bytes (hard link, else copy)."""
        dest = self.job_output_path(job_id)
        try:
            os.link(archive, dest)
        except OSError:
            shutil.copyfile(archive, dest)
        return dest

    def remove_upload(self, upload_id: str) -> None:
        """Delete all parts of an upload."""
        shutil.rmtree(self.root / "uploads" / upload_id, ignore_errors=True)

    def remove_job(self, job_id: str) -> None:
        """Delete a job's output."""
        shutil.rmtree(self.root / "jobs" / job_id, ignore_errors=True)

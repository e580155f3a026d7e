"""The spool: the cycle directories on local disk, their lock, and recovery after a crash.

Nothing here trusts a file that may be half-written: increment files are written under a
``.partial`` name and renamed, and an increment counts only once its manifest exists. Recovery
deletes everything else, so a later run never builds on a partial file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from localbackup import formats
from localbackup.atomic import PARTIAL_SUFFIX, atomic_write_bytes, fsync_dir, temp_name
from localbackup.fileio import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE
from localbackup.logevents import get_logger
from localbackup.paths import ensure_private_dir
from localbackup.plan import OpenCycle

log = get_logger(__name__)

CYCLES = "cycles"
LOCK = ".lock"
CREATED = "created"  # cycle start time, written when a cycle directory is made
USED_IDS = "cycle-ids"  # every cycle id given out, one a line
LAST_BACKUP = "last-backup"  # finish time of the newest increment (survives local pruning)
LAST_RESULT = "last-backup.json"  # how the last backup run ended (BackupRecord)

BackupResult = Literal["ok", "warnings", "failed"]


class SpoolBusyError(RuntimeError):
    """Another process holds the spool lock."""


@dataclass(frozen=True, slots=True)
class CycleDir:
    """One cycle directory of the spool, sealed or not."""

    path: Path
    cycle_id: str

    @property
    def sealed(self) -> bool:
        """Whether ``cycle.json`` exists (a sealed cycle never changes again)."""
        return (self.path / formats.CYCLE_JSON).exists()

    def manifests(self) -> list[formats.IncrementManifest]:
        """Complete increments, in order, stopping at the first gap."""
        out: list[formats.IncrementManifest] = []
        while (self.path / formats.manifest_name(len(out))).exists():
            out.append(formats.load_manifest(self.path / formats.manifest_name(len(out))))
        return out

    def created_at(self) -> datetime:
        """The start time of the cycle (its ``created`` file)."""
        return formats.parse_iso((self.path / CREATED).read_text().strip())


@dataclass(frozen=True, slots=True)
class BackupRecord:
    """How the last ``backup`` run ended: ``status`` shows it."""

    at: datetime
    result: BackupResult
    warnings: int = 0
    cycle_id: str | None = None
    increment: int | None = None
    message: str = ""  # the error of a failed run, or the first warning

    def render(self) -> bytes:
        """The JSON form, as written in the spool."""
        data = asdict(self)
        data["at"] = formats.utc_iso(self.at)
        return (json.dumps(data, indent=2) + "\n").encode()

    @classmethod
    def parse(cls, raw: bytes) -> BackupRecord:
        """The reverse of :meth:`render` (ValueError, KeyError, TypeError if malformed)."""
        data = json.loads(raw)
        return cls(
            at=formats.parse_iso(data["at"]),
            result=data["result"],
            warnings=int(data.get("warnings", 0)),
            cycle_id=data.get("cycle_id"),
            increment=data.get("increment"),
            message=str(data.get("message", "")),
        )


class Spool:
    """The spool directory of one host: ``cycles/``, the lock, the ids given out."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cycles_dir = root / CYCLES

    def prepare(self) -> None:
        """Create the spool and ``cycles/`` (0700) if needed."""
        ensure_private_dir(self.root)
        ensure_private_dir(self.cycles_dir)

    @contextlib.contextmanager
    def locked(self, wait: float = 3600.0) -> Iterator[None]:
        """Hold the spool lock (one writer at a time: timer, service and CLI may all run)."""
        self.prepare()
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
        try:
            deadline = time.monotonic() + wait
            logged = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise SpoolBusyError(
                            f"another glacier-backup process holds {self.root / LOCK}"
                        ) from None
                    if not logged:
                        log.info("spool.waiting_for_lock", spool=str(self.root))
                        logged = True
                    time.sleep(0.2)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def cycles(self) -> list[CycleDir]:
        """Every cycle directory, sealed or not, oldest first."""
        if not self.cycles_dir.is_dir():
            return []
        return sorted(
            (
                CycleDir(p, p.name)
                for p in self.cycles_dir.iterdir()
                if p.is_dir() and formats.CYCLE_ID.match(p.name)
            ),
            key=lambda c: c.cycle_id,
        )

    def sealed_cycles(self) -> list[CycleDir]:
        """The sealed cycles, oldest first."""
        return [c for c in self.cycles() if c.sealed]

    def open_cycle(self) -> CycleDir | None:
        """The newest unsealed cycle, if any (there is at most one in a healthy spool)."""
        unsealed = [c for c in self.cycles() if not c.sealed]
        return unsealed[-1] if unsealed else None

    def open_cycle_state(self) -> tuple[CycleDir, OpenCycle] | None:
        """The open cycle and what the planner needs to know about it, or None."""
        c = self.open_cycle()
        if c is None:
            return None
        return c, OpenCycle(c.cycle_id, c.created_at(), len(c.manifests()))

    def used_cycle_ids(self) -> set[str]:
        """Every id this spool ever gave out: a cycle removed after its upload keeps its id."""
        ids = {c.cycle_id for c in self.cycles()}
        with contextlib.suppress(FileNotFoundError):
            ids |= set((self.root / USED_IDS).read_text().split())
        return ids

    def next_cycle_id(self, now: datetime) -> str:
        """The id :meth:`create_cycle` gives a cycle started at ``now`` (under the lock)."""
        return formats.new_cycle_id(now, self.used_cycle_ids())

    def create_cycle(self, now: datetime) -> CycleDir:
        """Make a new, empty cycle started at ``now`` (crash-safe: a temp directory
        renamed into place, its id recorded first).
        """
        self.prepare()
        cycle_id = self.next_cycle_id(now)
        # Recorded first: an id is never given out twice, even after a crash right here.
        with open(self.root / USED_IDS, "a") as f:
            f.write(cycle_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        path = self.cycles_dir / cycle_id
        tmp = temp_name(path)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=PRIVATE_DIR_MODE)
        created = tmp / CREATED
        with open(created, "w") as f:
            f.write(formats.utc_iso(now) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
        fsync_dir(self.cycles_dir)
        return CycleDir(path, cycle_id)

    def remove_cycle(self, cycle: CycleDir) -> None:
        """Delete a cycle so that a crash half-way cannot leave something that looks like one:
        rename it to a ``.partial`` name first (recovery finishes the job)."""
        doomed = temp_name(self.cycles_dir / cycle.cycle_id)
        os.rename(cycle.path, doomed)
        fsync_dir(self.cycles_dir)
        shutil.rmtree(doomed)

    def record_backup_time(self, when: datetime) -> None:
        """Remember when the newest increment finished (see :meth:`last_backup_time`)."""
        atomic_write_bytes(self.root / LAST_BACKUP, (formats.utc_iso(when) + "\n").encode())

    def record_result(self, record: BackupRecord) -> None:
        """Remember how the last backup run ended (see :meth:`last_result`)."""
        self.prepare()
        atomic_write_bytes(self.root / LAST_RESULT, record.render())

    def last_result(self) -> BackupRecord | None:
        """How the last backup run ended, if one was recorded (and is readable)."""
        try:
            return BackupRecord.parse((self.root / LAST_RESULT).read_bytes())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def last_backup_time(self) -> datetime | None:
        """When the newest increment finished (None before the first backup)."""
        try:
            return formats.parse_iso((self.root / LAST_BACKUP).read_text().strip())
        except (FileNotFoundError, ValueError):
            times = [m[-1].finished_at for c in self.cycles() if (m := c.manifests())]
            return max(times, default=None)

    def recover(self) -> list[Path]:
        """Delete what a crash left behind; return the removed paths.

        - ``.partial`` files and directories anywhere in the spool;
        - in unsealed cycles, increment data files without a manifest, and every increment
          after the first gap (a later manifest is never trusted without its predecessors);
        - an unsealed cycle that has no start time (its creation never finished).
        """
        removed: list[Path] = []
        if not self.cycles_dir.is_dir():
            return removed
        for p in self.cycles_dir.iterdir():
            if p.name.endswith(PARTIAL_SUFFIX):
                _remove(p)
                removed.append(p)
        for c in self.cycles():
            if c.sealed:
                continue
            if not (c.path / CREATED).exists():
                _remove(c.path)
                removed.append(c.path)
                continue
            complete = {formats.manifest_name(i) for i in range(len(c.manifests()))}
            keep = {CREATED} | complete
            keep |= {formats.tar_name(i) for i in range(len(complete))}
            keep |= {formats.index_name(i) for i in range(len(complete))}
            for p in sorted(c.path.iterdir()):
                if p.name not in keep:
                    _remove(p)
                    removed.append(p)
        for p in removed:
            log.warning("spool.recovered", removed=str(p))
        return removed


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink(missing_ok=True)

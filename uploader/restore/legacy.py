"""Restore archives made by the original tool (glacierclient's ``GlacierBackup.py``).

Its archive is a plain tar (``GlacierBackup-<ts>.tar``) of the files its local stage left in
one directory, stored under their bare names: ``<ts>_full.tar.bz2`` and
``<ts>_incr_from_<base>.tar.bz2``, where ``<ts>`` is ``%Y%m%d%H%M%S`` in the backup host's local
time and ``<base>`` the timestamp of the backup this one is an increment from. Each of those is
a bzip2 tar (Python's ``tarfile``, absolute paths stored without their leading ``/``) of the
files that were new or changed since ``<base>``. The whole archive, and with a local key each
inner one too (``.enc``), may be encrypted with ``openssl enc -aes-256-cbc -pbkdf2 -salt``.

The original tool recorded no deletions: a restore brings back every file the chain ever held,
including files deleted (or renamed away) before the chosen point in time.

The restore goes through :func:`localbackup.staging.staged_target` and the restore engine's
:class:`localbackup.extract.Extractor` (with the old tool's rules, see :class:`_LegacyExtractor`):
the same member writer, path-safety rules and staging as every other restore. An encrypted
archive is first decrypted to a private scratch file next to the target: CBC carries no
authentication, so only a complete decryption (its padding check) tells a wrong passphrase
before anything is extracted, and the members may sit in any order in the outer tar.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, BinaryIO, cast

from localbackup.extract import ExtractOptions, Extractor, ExtractStats
from localbackup.logevents import get_logger
from localbackup.pathmatch import NoPathMatch
from localbackup.paxreader import Member
from localbackup.pointintime import PointInTimeError
from localbackup.safepath import ExtractError, show_member
from localbackup.staging import staged_target
from uploader.crypto import LegacyDecryptError, decrypt_openssl

__all__ = [
    "LEGACY_PASSPHRASE_ENV",
    "LegacyArchiveError",
    "LegacyPlan",
    "LegacyPoint",
    "LegacyResult",
    "choose_point",
    "legacy_archive_name",
    "list_legacy",
    "parse_legacy_at",
    "plan_restore",
    "read_points",
    "restore_legacy",
]

log = get_logger(__name__)

LEGACY_PASSPHRASE_ENV = "GLACIER_BACKUP_LEGACY_PASSPHRASE"  # noqa: S105 - a name, not a secret
TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"
_MEMBER = re.compile(
    r"^(?P<ts>\d{14})_(?:full|incr_from_(?P<base>\d{14}))\.tar\.bz2(?P<enc>\.enc)?$"
)
_TIMESTAMP = re.compile(r"^\d{14}$")
# The outer archive as the original tool named it; its vault description was the archive's
# local path (``<backupArchiveLocalPath>/GlacierBackup-<ts>.tar[.enc]``).
_ARCHIVE_NAME = re.compile(r"^GlacierBackup-\d{14}\.tar(?:\.enc)?$")
_SALTED = b"Salted__"
_DEFAULT_DIR_MODE = 0o755  # the old tool archived files only, never directories


class LegacyArchiveError(ExtractError):
    """The legacy archive cannot be restored (wrong passphrase, broken chain, bad member)."""


@dataclass(frozen=True, slots=True)
class LegacyPoint:
    """One backup inside a legacy archive: a full or an increment, a point in time."""

    number: int  # position in the archive, oldest first
    timestamp: str  # as the old tool wrote it: %Y%m%d%H%M%S, the backup host's local time
    base: str | None  # the backup this is an increment from; None for a full
    member: str  # name in the outer tar
    size: int

    @property
    def kind(self) -> str:
        """``full`` or ``incremental``."""
        return "full" if self.base is None else "incremental"

    @property
    def encrypted(self) -> bool:
        """Whether this backup is encrypted on its own (``.enc``, with the old local key)."""
        return self.member.endswith(".enc")

    @property
    def when(self) -> datetime:
        """The timestamp read as local time of this machine (the old tool stored no zone)."""
        return datetime.strptime(self.timestamp, TIMESTAMP_FORMAT).astimezone()


@dataclass(frozen=True, slots=True)
class LegacyPlan:
    """What a legacy restore applies: every backup in the archive, the one chosen, its chain."""

    points: tuple[LegacyPoint, ...]
    target: LegacyPoint
    chain: tuple[LegacyPoint, ...]  # the full first, then each increment up to the target
    ignored: tuple[str, ...]  # outer members that are not backups of the old tool


@dataclass(frozen=True, slots=True)
class LegacyResult:
    """What a legacy restore brought back: its plan and what was written."""

    plan: LegacyPlan
    stats: ExtractStats


def legacy_archive_name(description: str) -> str | None:
    """The archive's file name if ``description`` is one the original tool gave an archive in
    a vault (its local path, ending ``GlacierBackup-<ts>.tar`` or ``.tar.enc``), else None."""
    name = description.replace("\\", "/").rsplit("/", 1)[-1]
    return name if _ARCHIVE_NAME.match(name) else None


def read_points(members: Sequence[tuple[str, int]]) -> tuple[list[LegacyPoint], list[str]]:
    """The backups among the outer tar's ``(name, size)`` members, oldest first, and the rest."""
    found: dict[str, tuple[str | None, str, int]] = {}
    ignored: list[str] = []
    for name, size in members:
        m = _MEMBER.match(name)
        if m is None:
            ignored.append(name)
            continue
        if m["ts"] in found:
            raise LegacyArchiveError(f"two backups with the timestamp {m['ts']} in the archive")
        found[m["ts"]] = (m["base"], name, size)
    points = [
        LegacyPoint(n, ts, base, name, size)
        for n, (ts, (base, name, size)) in enumerate(sorted(found.items()))
    ]
    return points, ignored


def choose_point(points: Sequence[LegacyPoint], at: int | str | datetime | None) -> LegacyPoint:
    """``--at``: a number (0 = the oldest backup), a timestamp as the old tool wrote it
    (``20210510033700``), or a time; for the last two, the newest backup at or before it."""
    if not points:
        raise PointInTimeError("the archive holds no backup of the original tool")
    if at is None:
        return points[-1]
    if isinstance(at, int):
        if not 0 <= at < len(points):
            raise PointInTimeError(f"no backup number {at}: the archive has 0 to {len(points) - 1}")
        return points[at]
    before = [p for p in points if (p.timestamp <= at if isinstance(at, str) else p.when <= at)]
    if not before:
        raise PointInTimeError(f"no backup at or before {at} (the oldest is {points[0].timestamp})")
    return before[-1]


def plan_restore(members: Sequence[tuple[str, int]], at: int | str | datetime | None) -> LegacyPlan:
    """Which backups to apply, in order: follow ``_incr_from_`` links back to a full."""
    points, ignored = read_points(members)
    target = choose_point(points, at)
    by_ts = {p.timestamp: p for p in points}
    chain = [target]
    while chain[-1].base is not None:
        base = chain[-1].base
        if base not in by_ts:
            raise LegacyArchiveError(
                f"{chain[-1].member} is an increment from {base}, which is not in this archive "
                "(it was probably uploaded in an earlier archive)"
            )
        chain.append(by_ts[base])
    return LegacyPlan(tuple(points), target, tuple(reversed(chain)), tuple(ignored))


def parse_legacy_at(text: str) -> int | str | datetime:
    """``--at`` for legacy archives: an old-tool timestamp, a number or an ISO date/time."""
    from localbackup.pointintime import parse_at

    text = text.strip()
    return text if _TIMESTAMP.match(text) else parse_at(text)


def restore_legacy(
    archive: Path,
    to: Path,
    *,
    passphrase: bytes | None,
    inner_passphrase: bytes | None = None,
    at: int | str | datetime | None = None,
    force: bool = False,
    options: ExtractOptions | None = None,
    on_plan: Callable[[LegacyPlan], None] | None = None,
) -> LegacyResult:
    """Restore the point in time ``at`` of the legacy ``archive`` (a local file) into ``to``.

    ``passphrase`` decrypts an encrypted archive; ``inner_passphrase`` (default: the same)
    decrypts ``.enc`` members. Nothing is left in or next to ``to`` when this fails.
    """
    with staged_target(to, force=force) as work, _scratch_dir(work) as scratch:
        with (
            _plaintext(archive, passphrase, scratch) as plain,
            _open_outer(archive, plain) as outer,
        ):
            infos = {m.name: m for m in outer.getmembers() if m.isreg()}
            plan = plan_restore([(m.name, m.size) for m in infos.values()], at)
            if on_plan is not None:
                on_plan(plan)
            log.info("legacy.restore_started", archive=str(archive), at=plan.target.timestamp)
            extractor = _LegacyExtractor(work, options or ExtractOptions())
            for point in plan.chain:
                src = outer.extractfile(infos[point.member])
                assert src is not None
                with src, _inner(point, src, inner_passphrase or passphrase, scratch) as f:
                    extractor.apply_bz2(f, point.member)
        return LegacyResult(plan, extractor.finish_legacy())


def list_legacy(archive: Path, passphrase: bytes | None) -> LegacyPlan:
    """The backups in ``archive``; an encrypted one is decrypted to a scratch file beside it."""
    with (
        _scratch_dir(archive) as scratch,
        _plaintext(archive, passphrase, scratch) as plain,
        _open_outer(archive, plain) as outer,
    ):
        members = [(m.name, m.size) for m in outer.getmembers() if m.isreg()]
    return plan_restore(members, None)


@contextlib.contextmanager
def _open_outer(archive: Path, plain: Path) -> Iterator[tarfile.TarFile]:
    hint = " after decryption (wrong passphrase?)" if plain != archive else ""
    try:
        outer = tarfile.open(plain, mode="r:")  # noqa: SIM115 - closed just below
    except tarfile.TarError as exc:
        raise LegacyArchiveError(f"{archive} is not a tar archive{hint}: {exc}") from None
    with outer:
        yield outer


@contextlib.contextmanager
def _scratch_dir(beside: Path) -> Iterator[Path]:
    """A private directory next to ``beside`` (same filesystem), removed on the way out.

    A leftover from a restore killed earlier is removed first.
    """
    path = beside.parent / f"{beside.name}.legacy-scratch"
    if os.path.lexists(path):
        shutil.rmtree(path)
    os.mkdir(path, 0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _plaintext(archive: Path, passphrase: bytes | None, scratch: Path) -> Iterator[Path]:
    """``archive`` itself, or its decryption in ``scratch`` when it starts with ``Salted__``."""
    try:
        with open(archive, "rb") as f:
            encrypted = f.read(len(_SALTED)) == _SALTED
    except OSError as exc:
        raise LegacyArchiveError(f"cannot read {archive}: {exc.strerror}") from None
    if not encrypted:
        yield archive
        return
    if passphrase is None:
        raise LegacyArchiveError(
            f"{archive} is encrypted (openssl enc): give the old tool's localEncryptionKey with "
            f"--passphrase-file FILE or the {LEGACY_PASSPHRASE_ENV} environment variable"
        )
    out = scratch / "archive.tar"
    _decrypt(archive.name, archive, out, passphrase)
    yield out


@contextlib.contextmanager
def _inner(
    point: LegacyPoint, src: IO[bytes], passphrase: bytes | None, scratch: Path
) -> Iterator[IO[bytes]]:
    """The bzip2 tar of one backup: read in place, or decrypted to ``scratch`` first."""
    if not point.encrypted:
        yield src
        return
    if passphrase is None:
        raise LegacyArchiveError(f"{point.member} is encrypted and no passphrase was given")
    out = scratch / "inner.tar.bz2"
    _decrypt(point.member, src, out, passphrase)
    try:
        with open(out, "rb") as f:
            yield f
    finally:
        out.unlink(missing_ok=True)


def _decrypt(label: str, src: Path | IO[bytes], out: Path, passphrase: bytes) -> None:
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with contextlib.ExitStack() as stack:
            dst = stack.enter_context(os.fdopen(fd, "wb"))
            reader = stack.enter_context(open(src, "rb")) if isinstance(src, Path) else src
            decrypt_openssl(cast(BinaryIO, reader), dst, passphrase)
    except LegacyDecryptError as exc:
        out.unlink(missing_ok=True)
        raise LegacyArchiveError(f"{label}: cannot decrypt: {exc}") from None


class _LegacyExtractor(Extractor):
    """:class:`Extractor` with the original tool's rules, for its bzip2 tars.

    It archived regular files and symlinks (hardlinks within one tar); directories appear only
    as parents, and there is no index: :meth:`finish_legacy` removes nothing and gives
    directories their archived owner, mode and mtime (0755 when not archived). Device nodes,
    FIFOs and unknown types are skipped with a warning; extended attributes (Python's tarfile
    wrote none) are not restored.
    """

    def __init__(self, root: Path, options: ExtractOptions) -> None:
        super().__init__(root, options)
        self.dirs: dict[bytes, Member] = {}

    def apply_bz2(self, stream: IO[bytes], label: str) -> None:
        try:
            with tarfile.open(
                fileobj=stream, mode="r|bz2", encoding="utf-8", errors="surrogateescape"
            ) as tf:
                self.apply_tar(tf)
        except (tarfile.TarError, EOFError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise  # a local I/O error, not a damaged archive
            raise LegacyArchiveError(f"{label}: not a valid bzip2 tar: {exc}") from None
        except ExtractError as exc:
            if type(exc) is not ExtractError:
                raise  # UnsafeMemberError, IntegrityError: as they are
            raise LegacyArchiveError(f"{label}: {exc}") from None

    def _directory(self, m: Member, parts: tuple[bytes, ...]) -> None:
        self.dirs[b"/".join(parts)] = m

    def _special(self, m: Member, name: bytes, parts: tuple[bytes, ...]) -> bool:
        self.warn(f"{show_member(name)}: not restored (a device node, FIFO or unknown type)")
        return False

    def _xattrs(self, target: int | bytes, m: Member) -> None:
        pass

    def finish_legacy(self) -> ExtractStats:
        """Set directory modes last, deepest first: archived ones as archived, others 0755.
        Raises :class:`~localbackup.pathmatch.NoPathMatch` if ``--path`` selected nothing."""
        if self.select and not self.stats.members:
            raise NoPathMatch([p.text for p in self.select.patterns])
        dirs: list[bytes] = []
        for top, subdirs, files in os.walk(self.tree.root):
            dirs.extend(os.path.join(top, d) for d in subdirs)
            for name in files:  # the restored tree, counted for the summary
                st = os.lstat(os.path.join(top, name))
                if stat.S_ISREG(st.st_mode):
                    self.stats.files += 1
                    self.stats.bytes += st.st_size
                elif stat.S_ISLNK(st.st_mode):
                    self.stats.symlinks += 1
        root = self.tree.root + b"/"
        for full in sorted(dirs, key=lambda d: d.count(b"/"), reverse=True):
            m = self.dirs.get(full.removeprefix(root))
            if stat.S_ISLNK(os.lstat(full).st_mode):
                self.stats.symlinks += 1
                continue
            self.stats.dirs += 1
            if m is None:
                os.chmod(full, _DEFAULT_DIR_MODE)
                continue
            if self.owners:
                os.chown(full, m.uid, m.gid, follow_symlinks=False)
            os.chmod(full, m.mode & 0o7777)
            os.utime(full, ns=(m.mtime_ns, m.mtime_ns), follow_symlinks=False)
        return self.stats

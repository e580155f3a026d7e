"""The cycle formats: increment manifests, ``cycle.json`` and markers (see docs/formats.md).

A cycle is a directory ``<spool>/cycles/<cycle_id>/`` holding, for each increment ``N``:

- ``inc-NNNN.tar.zst``   the pax tar, zstd-compressed
- ``inc-NNNN.index.zst`` the index of every path present at that moment
- ``inc-NNNN.json``      the manifest, written last: an increment exists only once it is there

and, once sealed, ``cycle.json``. These functions parse and render; they do no planning.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

CYCLE_FORMAT = "glacier-backup-cycle"
MARKER_FORMAT = "glacier-backup-marker"
MANIFEST_FORMAT = "glacier-backup-increment"
FORMAT_VERSION = 1

CYCLE_JSON = "cycle.json"
_CYCLE_ID_PATTERN = r"\d{8}T\d{6}Z(?:-\d+)?"  # UTC start time, -2, -3... within one second
CYCLE_ID = re.compile(rf"^{_CYCLE_ID_PATTERN}$")
MARKER_NAME = re.compile(rf"^cycle-(?P<host>[^/\s]+?)-(?P<cycle>{_CYCLE_ID_PATTERN})\.json$")
# The subdirectories of the marker directory where the watcher files the markers it has handled:
# uploaded, failed (the reason next to it), malformed. A marker there still counts as written.
HANDLED_MARKER_DIRS = ("done", "failed", "quarantine")
_CYCLE_ID_TIME = "%Y%m%dT%H%M%SZ"  # a cycle id's start time, UTC to the second
_ISO_UTC = "%Y-%m-%dT%H:%M:%S.%fZ"  # every time in these files: UTC, microseconds


class FormatError(ValueError):
    """A cycle file, manifest or marker is not what this version writes."""


class IncrementKind(StrEnum):
    """What an increment was compared against: its manifest's ``kind``."""

    FULL = "full"  # increment 0: everything, no base
    INCREMENTAL = "incremental"  # base: the previous increment
    DIFFERENTIAL = "differential"  # base: the full


class BackupMode(StrEnum):
    """How the increments of a cycle are taken: ``[backup] mode``, and ``mode`` in cycle.json."""

    INCREMENTAL = "incremental"  # each against the previous increment
    DIFFERENTIAL = "differential"  # each against the full


_E = TypeVar("_E", bound=StrEnum)


def utc_iso(t: datetime) -> str:
    """A time as these files write it: ``2026-11-26T04:00:00.000000Z``."""
    return t.astimezone(UTC).strftime(_ISO_UTC)


def parse_iso(text: str) -> datetime:
    """The reverse of :func:`utc_iso` (an aware UTC datetime)."""
    return datetime.strptime(text, _ISO_UTC).replace(tzinfo=UTC)


def new_cycle_id(now: datetime, taken: set[str]) -> str:
    """A sortable id from the UTC start time; a suffix keeps two cycles of one second apart."""
    base = now.astimezone(UTC).strftime(_CYCLE_ID_TIME)
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def cycle_sequence(cycle_id: str) -> int:
    """Which of the cycles started in one second this is: 1 for ``20261126T040000Z``, 2 for
    ``...Z-2``. Text order puts ``...Z-2.tar.age`` before ``...Z.tar.age`` (and ``-10`` before
    ``-2``): order by (time, sequence) instead."""
    _, _, n = cycle_id.partition("-")
    return int(n) if n.isdigit() else 1


def cycle_order(cycle_id: str) -> tuple[str, int]:
    """A sort key for cycle ids in the order they were made: start second, then sequence
    (``...Z``, ``...Z-2``, ..., ``...Z-10``; not text order)."""
    return (cycle_id.partition("-")[0], cycle_sequence(cycle_id))


def cycle_id_time(cycle_id: str) -> datetime | None:
    """The start time a cycle id carries (``20261126T040000Z``, maybe ``-2``), if it is one."""
    try:
        return datetime.strptime(cycle_id.split("-", 1)[0], _CYCLE_ID_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


def _increment_stem(number: int) -> str:
    return f"inc-{number:04d}"


def tar_name(number: int) -> str:
    """``inc-NNNN.tar.zst``: the tar of increment ``number``."""
    return f"{_increment_stem(number)}.tar.zst"


def index_name(number: int) -> str:
    """``inc-NNNN.index.zst``: the index of increment ``number``."""
    return f"{_increment_stem(number)}.index.zst"


def manifest_name(number: int) -> str:
    """``inc-NNNN.json``: the manifest of increment ``number``, its commit point."""
    return f"{_increment_stem(number)}.json"


@dataclass(frozen=True, slots=True)
class CycleFile:
    """One file of a cycle as it will travel in the bundle."""

    name: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        """The ``{name, size, sha256}`` object of a manifest or ``cycle.json``."""
        return {"name": self.name, "size": self.size, "sha256": self.sha256}

    @staticmethod
    def from_json(d: dict[str, Any]) -> CycleFile:
        """The reverse of :meth:`to_json`."""
        return CycleFile(name=str(d["name"]), size=int(d["size"]), sha256=str(d["sha256"]))


@dataclass(frozen=True, slots=True)
class IncrementManifest:
    """What ``inc-NNNN.json`` records about one finished increment."""

    number: int
    kind: IncrementKind
    base: int | None  # the increment whose index this one was compared against
    started_at: datetime
    finished_at: datetime
    tar: CycleFile
    index: CycleFile
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The manifest as a JSON object (``format`` and ``version`` included)."""
        return {
            "format": MANIFEST_FORMAT,
            "version": FORMAT_VERSION,
            "number": self.number,
            "kind": self.kind,
            "base": self.base,
            "started_at": utc_iso(self.started_at),
            "finished_at": utc_iso(self.finished_at),
            "tar": self.tar.to_json(),
            "index": self.index.to_json(),
            "stats": self.stats,
        }

    def render(self) -> bytes:
        """The bytes of ``inc-NNNN.json``."""
        return _render(self.to_json())

    @staticmethod
    def from_json(d: dict[str, Any]) -> IncrementManifest:
        """Parse a manifest; raises :class:`FormatError` on another format or version."""
        _check_format(d, MANIFEST_FORMAT)
        base = d.get("base")
        return IncrementManifest(
            number=int(d["number"]),
            kind=_member(IncrementKind, d["kind"], "kind"),
            base=None if base is None else int(base),
            started_at=parse_iso(d["started_at"]),
            finished_at=parse_iso(d["finished_at"]),
            tar=CycleFile.from_json(d["tar"]),
            index=CycleFile.from_json(d["index"]),
            stats=dict(d.get("stats", {})),
        )


@dataclass(frozen=True, slots=True)
class SealedCycle:
    """The content of ``cycle.json``: a complete, immutable cycle."""

    host: str
    cycle_id: str
    mode: BackupMode
    created_at: datetime
    sealed_at: datetime
    increments: tuple[IncrementManifest, ...]

    @property
    def files(self) -> tuple[CycleFile, ...]:
        """Every data file of the cycle in bundle order (``cycle.json`` itself excluded)."""
        out: list[CycleFile] = []
        for inc in self.increments:
            out.extend((inc.tar, inc.index))
        return tuple(out)

    @property
    def data_size(self) -> int:
        """Bytes of all data files: the bundle's size without ``cycle.json`` and tar framing."""
        return sum(f.size for f in self.files)

    def to_json(self) -> dict[str, Any]:
        """``cycle.json`` as a JSON object (``files`` derived from the increments)."""
        return {
            "format": CYCLE_FORMAT,
            "version": FORMAT_VERSION,
            "host": self.host,
            "cycle_id": self.cycle_id,
            "mode": self.mode,
            "created_at": utc_iso(self.created_at),
            "sealed_at": utc_iso(self.sealed_at),
            "increments": [m.to_json() for m in self.increments],
            "files": [f.to_json() for f in self.files],
        }

    def render(self) -> bytes:
        """The bytes of ``cycle.json``."""
        return _render(self.to_json())

    @staticmethod
    def from_json(d: dict[str, Any]) -> SealedCycle:
        """Parse ``cycle.json``; raises :class:`FormatError` on another format or version."""
        _check_format(d, CYCLE_FORMAT)
        return SealedCycle(
            host=str(d["host"]),
            cycle_id=str(d["cycle_id"]),
            mode=_member(BackupMode, d["mode"], "mode"),
            created_at=parse_iso(d["created_at"]),
            sealed_at=parse_iso(d["sealed_at"]),
            increments=tuple(IncrementManifest.from_json(m) for m in d["increments"]),
        )


def load_sealed_cycle(cycle_dir: Path) -> SealedCycle:
    """Read ``cycle.json`` of a sealed cycle directory."""
    return SealedCycle.from_json(_load_json(cycle_dir / CYCLE_JSON))


def load_manifest(path: Path) -> IncrementManifest:
    """Read an ``inc-NNNN.json`` file."""
    return IncrementManifest.from_json(_load_json(path))


@dataclass(frozen=True, slots=True)
class Marker:
    """The note that a sealed cycle is ready to leave the machine."""

    host: str
    cycle_id: str
    cycle_dir: Path
    sealed_at: datetime
    cycle_json_sha256: str

    @property
    def file_name(self) -> str:
        """``cycle-<host>-<cycle_id>.json``."""
        return marker_file_name(self.host, self.cycle_id)

    def render(self) -> bytes:
        """The bytes of the marker file."""
        d = {
            "format": MARKER_FORMAT,
            "version": FORMAT_VERSION,
            "host": self.host,
            "cycle_id": self.cycle_id,
            "cycle_dir": str(self.cycle_dir),
            "sealed_at": utc_iso(self.sealed_at),
            "cycle_json_sha256": self.cycle_json_sha256,
        }
        return _render(d)


def marker_file_name(host: str, cycle_id: str) -> str:
    """The name of the marker of cycle ``cycle_id`` of ``host``."""
    return f"cycle-{host}-{cycle_id}.json"


def is_marker_name(name: str) -> bool:
    """Marker files have this shape; anything else in the marker directory is a force request."""
    return MARKER_NAME.match(name) is not None


def parse_marker(data: bytes) -> Marker:
    """Parse a marker file; raises :class:`FormatError` saying what is wrong."""
    try:
        d = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"marker is not valid JSON: {exc}") from None
    if not isinstance(d, dict):
        raise FormatError("marker is not a JSON object")
    _check_format(d, MARKER_FORMAT)
    try:
        cycle_id = str(d["cycle_id"])
        if not CYCLE_ID.match(cycle_id):
            raise FormatError(f"marker has a malformed cycle_id {cycle_id!r}")
        return Marker(
            host=str(d["host"]),
            cycle_id=cycle_id,
            cycle_dir=Path(str(d["cycle_dir"])),
            sealed_at=parse_iso(str(d["sealed_at"])),
            cycle_json_sha256=str(d["cycle_json_sha256"]),
        )
    except KeyError as exc:
        raise FormatError(f"marker lacks the field {exc.args[0]!r}") from None
    except ValueError as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"marker has a malformed field: {exc}") from None


def _render(d: dict[str, Any]) -> bytes:
    """The bytes of every JSON document here: sorted keys, two-space indent, final newline."""
    return (json.dumps(d, indent=2, sort_keys=True) + "\n").encode()


def _load_json(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(d, dict):
        raise FormatError(f"{path}: not a JSON object")
    return d


def _member(kind: type[_E], value: object, field: str) -> _E:
    """``value`` as a member of ``kind``; an unknown value is a :class:`FormatError`."""
    try:
        return kind(str(value))
    except ValueError:
        raise FormatError(f"unknown {field} {value!r}") from None


def _check_format(d: dict[str, Any], expected: str) -> None:
    if d.get("format") != expected:
        raise FormatError(f"expected format {expected!r}, found {d.get('format')!r}")
    version = d.get("version")
    if version != FORMAT_VERSION:
        raise FormatError(
            f"{expected} version {version!r} is not supported (this reads {FORMAT_VERSION})"
        )

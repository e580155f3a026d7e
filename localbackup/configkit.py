"""Typed reading of one TOML table, with errors that name the file, the key path and the problem.

Each package builds its own frozen config object from a :class:`Section`; the section remembers
which keys were read so that :meth:`Section.finish` can reject the rest (with a "did you mean"
hint). Durations ("90s", "12h", "7d") and sizes ("64MiB", "500GB") accept human forms.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Literal, TypeVar

__all__ = [
    "DAY",
    "ConfigError",
    "Section",
    "format_duration",
    "format_size",
    "parse_duration",
    "parse_rate",
    "parse_size",
]

T = TypeVar("T")
#: What a zero duration means for a key: refused (it must be positive), a valid duration (a
#: minimum age of zero), or "off" (None, like leaving the key out).
ZeroDuration = Literal["refused", "valid", "off"]
E = TypeVar("E", bound=StrEnum)

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DAY = float(_DURATION_UNITS["d"])  # seconds: what the planners count ages and intervals in
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


class ConfigError(Exception):
    """A configuration value is missing, unknown or wrong."""

    def __init__(self, file: Path | None, key: str, message: str) -> None:
        self.file = file
        self.key = key
        self.message = message
        where = f"{file}: " if file is not None else ""
        super().__init__(f"{where}{key}: {message}")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "90s", "12h", "7d", "1d12h" (a bare number means seconds)."""
    s = text.strip().lower()
    if not s:
        raise ValueError("empty duration")
    try:
        return float(s)
    except ValueError:
        pass
    pos = 0
    total = 0.0
    for m in _DURATION_PART.finditer(s):
        if s[pos : m.start()].strip():
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos == 0 or s[pos:].strip():
        raise ValueError(f"not a duration: {text!r} (use forms like 90s, 30m, 12h, 7d, 2w)")
    return total


def format_duration(seconds: float) -> str:
    """Shortest exact human form of a duration in whole seconds ("7d", "36h", "90s")."""
    whole = int(seconds)
    for unit in ("w", "d", "h", "m"):
        n = _DURATION_UNITS[unit]
        if whole and whole % n == 0:
            return f"{whole // n}{unit}"
    return f"{whole}s"


def parse_size(text: str | int) -> int:
    """Bytes in a size such as "64MiB", "500GB", "1.5GiB" or an integer."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError("size must not be negative")
        return text
    m = _SIZE.match(text)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"not a size: {text!r} (use forms like 5MiB, 64MiB, 500GB, 2TiB)")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


_BITS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgKMG]?)(?:bit|bps)\s*$")
# "5Mb/s": megabits on an ISP's page, megabytes to some tools. Asked to be written out.
_AMBIGUOUS_B = re.compile(r"^\s*\d+(?:\.\d+)?\s*[kmgKMG]?b\s*$")


def parse_rate(text: str | int) -> int:
    """Bytes per second in a rate such as "5MiB/s", "500KiB/s", "40Mbit/s" or an integer."""
    if isinstance(text, int):
        return parse_size(text)
    body = text.strip().removesuffix("/s")
    if _AMBIGUOUS_B.match(body):
        raise ValueError(f"ambiguous rate: {text!r}: write bytes as MB/s or MiB/s, bits as Mbit/s")
    m = _BITS.match(body)
    if m:
        scale = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}[m.group(2).lower()]
        return int(float(m.group(1)) * scale / 8)
    try:
        return parse_size(body)
    except ValueError:
        raise ValueError(
            f"not a rate: {text!r} (use forms like 5MiB/s, 500KiB/s, 40Mbit/s)"
        ) from None


def format_size(n: float) -> str:
    """Human form of a byte count with binary units, e.g. "1.5 GiB"."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


class Section:
    """One TOML table being read into a typed config object."""

    def __init__(
        self, data: Mapping[str, object], name: str, file: Path | None, base_dir: Path | None = None
    ) -> None:
        self._data = data
        self.name = name
        self.file = file
        self.base_dir = base_dir if base_dir is not None else (file.parent if file else None)
        self._read: set[str] = set()

    def key_path(self, key: str) -> str:
        """The dotted name of ``key`` as error messages show it (``backup.mode``)."""
        return f"{self.name}.{key}" if self.name else key

    def error(self, key: str, message: str) -> ConfigError:
        """A :class:`ConfigError` about ``key`` in this section, to raise."""
        return ConfigError(self.file, self.key_path(key), message)

    def has(self, key: str) -> bool:
        """Whether the table sets ``key`` (without counting it as read)."""
        return key in self._data

    def peek(self, key: str) -> object:
        """The raw value (None when absent), without counting the key as read."""
        return self._data.get(key)

    def _get(self, key: str, kind: type[T] | tuple[type, ...], what: str) -> object:
        self._read.add(key)
        value = self._data[key]
        # bool is an int in Python; never accept it where a number is wanted (and vice versa).
        if isinstance(value, bool) and kind is not bool:
            raise self.error(key, f"expected {what}, got a boolean")
        if not isinstance(value, kind):
            raise self.error(key, f"expected {what}, got {type(value).__name__} {value!r}")
        return value

    def string(self, key: str, default: str) -> str:
        """A string; ``default`` when the key is absent."""
        if key not in self._data:
            self._read.add(key)
            return default
        value = self._get(key, str, "a string")
        assert isinstance(value, str)
        return value

    def optional_string(self, key: str) -> str | None:
        """A string, or None when the key is absent."""
        self._read.add(key)
        if key not in self._data:
            return None
        return self.string(key, "")

    def choice(self, key: str, default: str, choices: Sequence[str]) -> str:
        """A string among ``choices``; the error lists them and names the closest."""
        value = self.string(key, default)
        if value not in choices:
            hint = _hint(value, choices)
            raise self.error(
                key, f"must be one of {', '.join(map(repr, choices))}, got {value!r}{hint}"
            )
        return value

    def enum_choice(self, key: str, default: E) -> E:
        """A :meth:`choice` among the values of ``default``'s enum, returned as its member."""
        kind = type(default)
        return kind(self.choice(key, default.value, [m.value for m in kind]))

    def integer(
        self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        """An integer (never a boolean) within ``minimum``..``maximum`` when given."""
        if key not in self._data:
            self._read.add(key)
            return default
        value = self._get(key, int, "an integer")
        assert isinstance(value, int)
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        """``true`` or ``false``."""
        if key not in self._data:
            self._read.add(key)
            return default
        value = self._get(key, bool, "true or false")
        assert isinstance(value, bool)
        return value

    def duration(
        self, key: str, default: float | None, *, zero: ZeroDuration = "refused"
    ) -> float | None:
        """Seconds; the key may hold a string like "7d" or a number of seconds. A zero
        ("0d", 0) is ``zero``: refused, a valid duration (0.0), or "off" (None)."""
        if key not in self._data:
            self._read.add(key)
            return default
        value = self._get(key, (str, int, float), 'a duration like "7d" or "12h"')
        try:
            seconds = parse_duration(value) if isinstance(value, str) else float(value)  # type: ignore[arg-type]
        except ValueError as exc:
            raise self.error(key, str(exc)) from None
        if seconds < 0 or (seconds == 0 and zero == "refused"):
            return self._bad_duration(key, zero)
        if seconds == 0:
            return None if zero == "off" else 0.0
        return seconds

    def _bad_duration(self, key: str, zero: ZeroDuration) -> float:
        if zero == "refused":
            raise self.error(key, "must be a positive duration")
        meaning = '"0" turns it off' if zero == "off" else '"0d" is allowed'
        raise self.error(key, f"must not be negative ({meaning})")

    def size(self, key: str, default: int | None) -> int | None:
        """Bytes; the key may hold an integer or a string like "64MiB" or "500GB"."""
        if key not in self._data:
            self._read.add(key)
            return default
        value = self._get(key, (str, int), 'a size like "64MiB" or "500GB"')
        try:
            return parse_size(value)  # type: ignore[arg-type]
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def rate(self, key: str) -> int | None:
        """Bytes per second ("5MiB/s", "40Mbit/s", an integer), or None when absent."""
        if key not in self._data:
            self._read.add(key)
            return None
        value = self._get(key, (str, int), 'a rate like "5MiB/s" or "40Mbit/s"')
        try:
            rate = parse_rate(value)  # type: ignore[arg-type]
        except ValueError as exc:
            raise self.error(key, str(exc)) from None
        if rate <= 0:
            raise self.error(key, "must be a positive rate (leave the key out for no limit)")
        return rate

    def path(self, key: str, default: Path | None) -> Path | None:
        """A path with ``~`` expanded; relative paths are taken from the config file's folder."""
        if key not in self._data:
            self._read.add(key)
            return default
        value = self._get(key, str, "a path string")
        assert isinstance(value, str)
        if not value:
            raise self.error(key, "must not be empty")
        return self.resolve(value)

    def resolve(self, value: str) -> Path:
        """A path as the config file means it: ``~`` expanded, relative to the file's folder."""
        p = Path(value).expanduser()
        if not p.is_absolute() and self.base_dir is not None:
            p = self.base_dir / p
        return p

    def string_list(self, key: str, default: Sequence[str] = ()) -> tuple[str, ...]:
        """A list of strings (as a tuple); each item is checked."""
        if key not in self._data:
            self._read.add(key)
            return tuple(default)
        value = self._get(key, list, "a list of strings")
        assert isinstance(value, list)
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise ConfigError(
                    self.file, f"{self.key_path(key)}[{i}]", f"expected a string, got {item!r}"
                )
            out.append(item)
        return tuple(out)

    def table(self, key: str) -> Section:
        """A sub-table as its own :class:`Section` (empty when absent)."""
        if key not in self._data:
            self._read.add(key)
            return Section({}, self.key_path(key), self.file, self.base_dir)
        value = self._get(key, dict, "a table")
        assert isinstance(value, dict)
        return Section(value, self.key_path(key), self.file, self.base_dir)

    def finish(self) -> None:
        """Reject keys that were never read: they are typos or options that do not exist."""
        unknown = [k for k in self._data if k not in self._read]
        if unknown:
            key = unknown[0]
            hint = _hint(key, sorted(self._read))
            raise self.error(key, f"unknown key{hint}")


def _hint(word: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""

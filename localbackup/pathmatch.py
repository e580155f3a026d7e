"""Path patterns for ``files PATTERN`` and ``restore --path``: one matcher, gitignore-like.

Paths are archive paths, as the indexes store them: raw bytes, the absolute path without its
leading ``/``. A pattern reads like a line of a ``.gitignore`` placed at each source root:

- ``a.txt``, ``*.txt``, ``docs`` (no ``/`` but a trailing one): a file or directory of that
  name at any depth below a source root, the root itself included;
- ``docs/*.txt``, ``docs/sub`` (a ``/`` inside): a path from a source root, or from the folder
  that holds it, the source's own name first (``Documents/docs`` for ``~/Documents``);
- ``/home/me/Documents/docs`` (a leading ``/``): an absolute path;
- ``docs/`` (a trailing ``/``): directories only;
- ``*`` and ``?`` stay within one component, ``**`` spans any number of them, ``[...]`` is a
  character class.

A path is *selected* when it or one of its parents (up to its source root) matches: ``docs``
and ``docs/`` bring the folder and everything below it, ``docs/*`` everything in it.

A pattern that selects nothing is an error for its callers (:class:`NoPathMatch`, with near
matches to suggest). :attr:`PathPattern.needs` says what a matching path must contain, so that
a catalogue can narrow millions of paths down with a cheap query before the exact match.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from localbackup.exclude import GLOB_CHARS, glob_regex
from localbackup.index import TYPE_CODE, EntryType, Record

__all__ = [
    "NoPathMatch",
    "PathPattern",
    "PathSelection",
    "PatternNeeds",
    "roots_of",
    "roots_of_sources",
    "suggest",
]

_MAX_SUGGESTIONS = 3
_CLOSE_ENOUGH = 0.75  # difflib ratio: "doc" ~ "docs" is 0.86, "raport" ~ "report" 0.83
_BEST_BY = 0.1  # suggestions at most this much less alike than the best one
_DIR = TYPE_CODE[EntryType.DIR]


class NoPathMatch(ValueError):
    """Patterns that select no backed-up path; the message suggests near matches."""

    def __init__(self, patterns: Sequence[str], suggestions: Sequence[str] = ()) -> None:
        self.patterns = tuple(patterns)
        self.suggestions = tuple(suggestions)
        shown = _either(self.patterns)
        if self.suggestions:
            hint = f"did you mean {_either(self.suggestions)}?"
        else:
            hint = (
                "'glacier-backup files PATTERN' lists the backed-up paths and the points in "
                "time that have them (a deleted file: restore --at an earlier increment)"
            )
        super().__init__(f"no backed-up path matches {shown}; {hint}")


def _either(words: Sequence[str]) -> str:
    quoted = [repr(w) for w in words]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]


@dataclass(frozen=True, slots=True)
class PatternNeeds:
    """What every path a pattern selects contains: a cheap prefilter before the exact match
    (an SQL ``LIKE`` over a catalogue of paths, say). Each field that is set must hold; with
    none set, any path may match.

    ``name``: one component of the path is exactly this. ``name_suffix``: one component ends
    with this. ``prefixes``: the path starts with one of these bytes.
    """

    name: bytes | None = None
    name_suffix: bytes | None = None
    prefixes: tuple[bytes, ...] = ()


def _parent(root: bytes) -> bytes:
    return root.rpartition(b"/")[0]


def roots_of(paths: Iterable[bytes]) -> tuple[bytes, ...]:
    """The source roots among the paths of one index: the paths whose parent is not listed
    (the folders above a source are never archived)."""
    listed = paths if isinstance(paths, (set, frozenset, dict)) else set(paths)
    return tuple(sorted(p for p in listed if _parent(p) not in listed))


def roots_of_sources(sources: Iterable[Path]) -> tuple[bytes, ...]:
    """The archive paths of configured sources (absolute paths, normalised)."""
    return tuple(sorted({os.path.normpath(os.fsencode(s)).strip(b"/") for s in sources} - {b""}))


def _root_of(path: bytes, roots: Sequence[bytes]) -> bytes | None:
    for r in roots:  # longest first: a nested root wins
        if path == r or (path.startswith(r) and path[len(r) : len(r) + 1] == b"/"):
            return r
    return None


class PathPattern:
    """One compiled pattern (see the module docstring) for the given source roots."""

    def __init__(self, text: str, roots: Sequence[bytes]) -> None:
        self.text = text
        raw = os.fsencode(text.strip())
        self.dir_only = raw.endswith(b"/") and raw.strip(b"/") != b""
        self.absolute = raw.startswith(b"/")
        body = raw.strip(b"/") or b"**"
        self.anchored = self.absolute or b"/" in body
        self._roots = tuple(sorted(set(roots), key=len, reverse=True))
        self._body = body
        regex = glob_regex(body)
        if self.anchored:
            starts = self._starts()
            lead = b"(?:" + b"|".join(re.escape(s) for s in starts) + b")"
            self._exact: re.Pattern[bytes] = re.compile(lead + regex, re.S)
            self._below: re.Pattern[bytes] = re.compile(lead + regex + b"/", re.S)
        else:  # a name at any depth below a root: the root's own name is the first one
            parents = {_parent(r) for r in self._roots}
            if not parents or b"" in parents:
                lead = b"\\A(?:[^/]*/)*"
            else:
                alternatives = b"|".join(re.escape(p) for p in sorted(parents))
                lead = b"\\A(?:" + alternatives + b")/(?:[^/]*/)*"
            self._exact = re.compile(lead + regex + b"\\Z", re.S)
            self._below = re.compile(lead + regex + b"/", re.S)
        self.needs = self._needs()

    def _starts(self) -> list[bytes]:
        """Where an anchored pattern may begin: the archive root for an absolute one, else
        below each source root and below the folder holding it."""
        if self.absolute or not self._roots:
            return [b""]
        starts: set[bytes] = set()
        for r in self._roots:
            parent = _parent(r)
            starts.update({r + b"/", parent + b"/" if parent else b""})
        return sorted(starts)

    def _needs(self) -> PatternNeeds:
        components = self._body.split(b"/")
        if not self.anchored:
            name = components[-1]
            if not GLOB_CHARS.intersection(name):
                return PatternNeeds(name=name)
            if name.startswith(b"*") and not GLOB_CHARS.intersection(name[1:]) and name[1:]:
                return PatternNeeds(name_suffix=name[1:])
            return PatternNeeds()
        literal: list[bytes] = []
        for c in components:
            if GLOB_CHARS.intersection(c):
                break
            literal.append(c)
        lead = b"/".join(literal)
        if not lead:
            return PatternNeeds(prefixes=tuple(s for s in self._starts() if s))
        if len(literal) < len(components):
            lead += b"/"
        return PatternNeeds(prefixes=tuple(s + lead for s in self._starts()))

    def selects(self, path: bytes, is_dir: bool = False) -> bool:
        """Whether the archive path ``path`` (a directory if ``is_dir``), or one of its parents
        up to its source root, matches."""
        if self._below.match(path):
            return True
        return (is_dir or not self.dir_only) and self._exact.fullmatch(path) is not None


class PathSelection:
    """Several patterns (``--path`` may be repeated): a path is selected if any selects it."""

    def __init__(self, patterns: Sequence[str], roots: Sequence[bytes] = ()) -> None:
        self.patterns = tuple(PathPattern(p, roots) for p in patterns)
        self.roots = tuple(roots)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __call__(self, path: bytes, is_dir: bool = False) -> bool:
        """Whether ``path`` is selected (always, when there are no patterns)."""
        if not self.patterns:
            return True
        return any(p.selects(path, is_dir) for p in self.patterns)

    def unmatched(self, records: Mapping[bytes, Record]) -> list[str]:
        """The patterns that select none of ``records`` (an index's path -> record)."""
        return self.unmatched_in(records.items())

    def unmatched_in(self, items: Iterable[tuple[bytes, Record]]) -> list[str]:
        """The patterns that select none of ``items`` (an index's (path, record) pairs, as a
        stream: nothing is kept)."""
        left = list(self.patterns)
        for path, rec in items:
            is_dir = rec[9] == _DIR
            left = [p for p in left if not p.selects(path, is_dir)]
            if not left:
                break
        return [p.text for p in left]

    def require(self, records: Mapping[bytes, Record]) -> None:
        """Raise :class:`NoPathMatch`, with near matches, if a pattern selects none of
        ``records`` (an index's path -> record)."""
        missing = self.unmatched(records)
        if missing:
            hints = [s for m in missing for s in suggest(m, records, self.roots)]
            raise NoPathMatch(missing, list(dict.fromkeys(hints))[:_MAX_SUGGESTIONS])


def suggest(pattern: str, paths: Iterable[bytes], roots: Sequence[bytes]) -> list[str]:
    """Near matches of a pattern that selects nothing, as patterns that would select something.

    The pattern's literal leading components are followed down the backed-up tree as far as
    they exist; the first one that does not is compared with the names found there
    (``doc/*`` -> ``docs/*``, ``Documets/docs`` -> ``Documents/docs``, ``raport.txt`` ->
    ``report.txt``, a name alone with every name at any depth).
    """
    raw = os.fsencode(pattern.strip())
    trailing = "/" if raw.endswith(b"/") else ""
    absolute = raw.startswith(b"/")
    components = raw.strip(b"/").split(b"/")
    depth = next((i for i, c in enumerate(components) if GLOB_CHARS.intersection(c)), None)
    lead = components[: len(components) if depth is None else max(depth, 1)]
    rest = components[len(lead) :]
    children = _children(paths, roots, len(lead), absolute, anywhere=len(components) == 1)
    known = 0
    while known < len(lead) - 1 and b"/".join(lead[: known + 1]) in children:
        known += 1
    prefix = b"/".join(lead[:known])
    out = []
    for name in _closest(os.fsdecode(lead[known]), children.get(prefix, set())):
        parts = [*map(os.fsdecode, lead[:known]), name, *map(os.fsdecode, lead[known + 1 :])]
        text = "/".join(parts + [os.fsdecode(r) for r in rest]) + trailing
        out.append("/" + text if absolute else text)
    return out


def _children(
    paths: Iterable[bytes], roots: Sequence[bytes], depth: int, absolute: bool, *, anywhere: bool
) -> dict[bytes, set[str]]:
    """Folder (joined components, as a pattern would name it) -> the names in it, down to
    ``depth`` components; ``anywhere``: every name at any depth, under the folder ``b""``."""
    ordered = sorted(set(roots), key=len, reverse=True)
    children: dict[bytes, set[str]] = {}

    def add(components: list[bytes]) -> None:
        for i, name in enumerate(components[:depth]):
            children.setdefault(b"/".join(components[:i]), set()).add(os.fsdecode(name))

    for p in paths:
        if absolute:
            add(p.split(b"/"))
            continue
        root = _root_of(p, ordered)
        parent = _parent(root) if root is not None else b""
        rel = (p[len(parent) + 1 :] if parent else p).split(b"/")
        if anywhere:
            children.setdefault(b"", set()).update(map(os.fsdecode, rel))
            continue
        add(rel)  # from the folder holding the source: its own name first
        if root is not None and len(rel) > 1:
            add(rel[1:])  # from the source root
    return children


def _closest(word: str, candidates: set[str]) -> list[str]:
    """The candidates most like ``word`` (difflib's ratio): at most three, all close."""
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(word)
    scored = []
    for c in candidates:
        matcher.set_seq1(c)
        if (
            matcher.real_quick_ratio() >= _CLOSE_ENOUGH
            and matcher.quick_ratio() >= _CLOSE_ENOUGH
            and (ratio := matcher.ratio()) >= _CLOSE_ENOUGH
        ):
            scored.append((ratio, c))
    scored.sort(key=lambda rc: (-rc[0], rc[1]))
    best = scored[0][0] if scored else 0.0
    return [c for r, c in scored[:_MAX_SUGGESTIONS] if r >= best - _BEST_BY]

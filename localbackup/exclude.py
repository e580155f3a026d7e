"""Gitignore-like exclude patterns, compiled once and matched against absolute byte paths.

Supported forms (a pattern may combine them):

- ``*.tmp``          no slash: matched against the basename, at any depth
- ``cache``          bare name: any file or directory called ``cache``
- ``node_modules/``  trailing slash: directories only
- ``/abs/path/file`` leading slash: anchored to the absolute path
- ``dir/*.log``      inner slash: matched against the trailing components of the path
- ``**``             any number of whole components (``a/**/b``, ``**/x``, ``x/**``)

``*`` and ``?`` never cross a ``/``; ``[...]`` classes are supported. Matching a directory
excludes everything below it, because the scanner does not descend into it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["GLOB_CHARS", "ExcludeMatcher", "compile_excludes", "glob_regex"]

#: The bytes that make a pattern a glob rather than a literal name or path.
GLOB_CHARS = frozenset(b"*?[")


def _double_star(pattern: bytes, i: int) -> tuple[bytes, int]:
    """Regex for the ``**`` at ``pattern[i]``, and the index after it."""
    n = len(pattern)
    j = i + 2
    while j < n and pattern[j : j + 1] == b"*":
        j += 1
    whole = i == 0 or pattern[i - 1 : i] == b"/"
    if whole and pattern[j : j + 1] == b"/":
        return b"(?:[^/]*/)*", j + 1  # "**/": zero or more leading components
    if whole and j == n:
        return b".*", j  # trailing "/**": everything below
    return b"[^/]*", j  # "**" inside a component acts like "*"


def _char_class(pattern: bytes, i: int) -> tuple[bytes, int]:
    """Regex for the ``[...]`` at ``pattern[i]`` (a literal ``[`` if unterminated)."""
    n = len(pattern)
    j = i + 1
    if pattern[j : j + 1] in (b"!", b"^"):
        j += 1
    if pattern[j : j + 1] == b"]":
        j += 1
    while j < n and pattern[j : j + 1] != b"]":
        j += 1
    if j >= n:
        return re.escape(b"["), i + 1
    body = pattern[i + 1 : j]
    negate = body[:1] in (b"!", b"^")
    if negate:
        body = body[1:]
    body = body.replace(b"\\", b"\\\\")
    return b"[" + (b"^/" if negate else b"") + body + b"]", j + 1


_SIMPLE = {b"*": b"[^/]*", b"?": b"[^/]"}


def glob_regex(pattern: bytes) -> bytes:
    """Translate a glob (with ``**``) to a regular expression body, no anchors: ``*`` and ``?``
    stay within one component, ``**`` spans whole components, ``[...]`` is a class."""
    out: list[bytes] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i : i + 1]
        if pattern.startswith(b"**", i):
            part, i = _double_star(pattern, i)
        elif c == b"[":
            part, i = _char_class(pattern, i)
        else:
            part, i = _SIMPLE.get(c) or re.escape(c), i + 1
        out.append(part)
    return b"".join(out)


@dataclass(frozen=True, slots=True)
class ExcludeMatcher:
    """Precompiled exclude patterns. ``matches(path, is_dir)`` on absolute byte paths."""

    names: frozenset[bytes]
    dir_names: frozenset[bytes]
    suffixes: tuple[bytes, ...]
    dir_suffixes: tuple[bytes, ...]
    base_re: re.Pattern[bytes] | None
    dir_base_re: re.Pattern[bytes] | None
    path_re: re.Pattern[bytes] | None
    dir_path_re: re.Pattern[bytes] | None

    def __bool__(self) -> bool:
        return bool(
            self.names
            or self.dir_names
            or self.suffixes
            or self.dir_suffixes
            or self.base_re
            or self.dir_base_re
            or self.path_re
            or self.dir_path_re
        )

    def matches(self, path: bytes, is_dir: bool) -> bool:
        """True if the absolute path ``path`` (a file, or a directory if ``is_dir``) is excluded."""
        base = path[path.rfind(b"/") + 1 :]
        if (
            base in self.names
            or (self.suffixes and base.endswith(self.suffixes))
            or (self.base_re is not None and self.base_re.fullmatch(base))
            or (self.path_re is not None and self.path_re.search(path))
        ):
            return True
        return is_dir and bool(
            base in self.dir_names
            or (self.dir_suffixes and base.endswith(self.dir_suffixes))
            or (self.dir_base_re is not None and self.dir_base_re.fullmatch(base))
            or (self.dir_path_re is not None and self.dir_path_re.search(path))
        )


def _join(parts: list[bytes]) -> re.Pattern[bytes] | None:
    return re.compile(b"|".join(b"(?:" + p + b")" for p in parts), re.S) if parts else None


def compile_excludes(patterns: tuple[str, ...] | list[str]) -> ExcludeMatcher:
    """Compile patterns once; cheap literal/suffix forms skip the regex engine entirely."""
    names: dict[bool, set[bytes]] = {False: set(), True: set()}
    suffixes: dict[bool, list[bytes]] = {False: [], True: []}
    base_res: dict[bool, list[bytes]] = {False: [], True: []}
    path_res: dict[bool, list[bytes]] = {False: [], True: []}
    for text in patterns:
        raw = text.encode("utf-8", "surrogateescape")
        if not raw.strip() or raw.startswith(b"#"):
            continue
        dir_only = raw.endswith(b"/")
        raw = raw.rstrip(b"/")
        if not raw:
            continue
        if b"/" not in raw:
            if not GLOB_CHARS.intersection(raw):
                names[dir_only].add(raw)
            elif raw.startswith(b"*") and len(raw) > 1 and not GLOB_CHARS.intersection(raw[1:]):
                suffixes[dir_only].append(raw[1:])
            else:
                base_res[dir_only].append(glob_regex(raw))
        elif raw.startswith(b"/"):
            path_res[dir_only].append(b"\\A" + glob_regex(raw) + b"\\Z")
        else:
            path_res[dir_only].append(b"(?:\\A|/)" + glob_regex(raw) + b"\\Z")
    return ExcludeMatcher(
        names=frozenset(names[False]),
        dir_names=frozenset(names[True]),
        suffixes=tuple(suffixes[False]),
        dir_suffixes=tuple(suffixes[True]),
        base_re=_join(base_res[False]),
        dir_base_re=_join(base_res[True]),
        path_re=_join(path_res[False]),
        dir_path_re=_join(path_res[True]),
    )

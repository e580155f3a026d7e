"""Exclude patterns: gitignore-like forms, the original tool's forms, a property test."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localbackup.exclude import compile_excludes

CASES = [
    # pattern, path, is_dir, excluded
    ("*.tmp", b"/home/u/a.tmp", False, True),
    ("*.tmp", b"/home/u/deep/er/a.tmp", False, True),
    ("*.tmp", b"/home/u/a.tmp.keep", False, False),
    ("*.tmp", b"/home/u/x.tmp", True, True),  # a directory named like it too
    ("node_modules/", b"/p/node_modules", True, True),
    ("node_modules/", b"/p/node_modules", False, False),  # trailing slash: dirs only
    ("node_modules/", b"/p/a/b/node_modules", True, True),
    ("/home/u/secret.txt", b"/home/u/secret.txt", False, True),
    ("/home/u/secret.txt", b"/other/home/u/secret.txt", False, False),  # anchored
    ("/home/u/secret.txt", b"/home/u/x/secret.txt", False, False),
    ("dir/*.log", b"/srv/dir/a.log", False, True),
    ("dir/*.log", b"/srv/dir/sub/a.log", False, False),  # * does not cross /
    ("dir/*.log", b"/srv/otherdir/a.log", False, False),  # component boundary
    ("a/**/b", b"/x/a/b", False, True),
    ("a/**/b", b"/x/a/1/2/3/b", False, True),
    ("a/**/b", b"/x/a/1/c", False, False),
    ("**/build", b"/p/q/build", True, True),
    ("/srv/**", b"/srv/x/y", False, True),
    ("/srv/**", b"/srv", True, False),
    ("cache", b"/home/u/cache", True, True),  # bare name: file or dir, anywhere
    ("cache", b"/home/u/cache", False, True),
    ("cache", b"/home/u/cachex", False, False),
    ("*.ext", b"/a/b.ext", False, True),
    ("?.c", b"/a/x.c", False, True),
    ("?.c", b"/a/xy.c", False, False),
    ("[ab].c", b"/a/b.c", False, True),
    ("[!ab].c", b"/a/b.c", False, False),
    ("[!ab].c", b"/a/z.c", False, True),
    ("caf\udce9", b"/a/caf\xe9", False, True),  # non-UTF-8 names via surrogateescape
    ("# comment", b"/a/# comment", False, False),
    ("", b"/a/", False, False),
]


@pytest.mark.parametrize(("pattern", "path", "is_dir", "excluded"), CASES)
def test_pattern_forms(pattern: str, path: bytes, is_dir: bool, excluded: bool) -> None:
    assert compile_excludes((pattern,)).matches(path, is_dir) is excluded


def test_no_patterns_is_falsy_and_matches_nothing() -> None:
    m = compile_excludes(())
    assert not m
    assert not m.matches(b"/anything", True)


def test_many_patterns_over_50k_paths_match_only_what_they_name() -> None:
    """Correctness at scale; how fast it is belongs in bench/, not in a wall-clock assertion."""
    m = compile_excludes(
        (
            "*.tmp",
            "*.o",
            ".git/",
            "node_modules/",
            "cache",
            "/etc/shadow",
            "build/**/*.log",
            "[Tt]humbs.db",
        )
    )
    paths = [
        b"/home/user/project%d/src/module%d/file%d.py" % (i % 10, i % 100, i) for i in range(50_000)
    ]
    assert sum(m.matches(p, False) for p in paths) == 0
    hits = [b"/home/user/project1/src/module%d/file%d.tmp" % (i % 100, i) for i in range(1000)]
    assert all(m.matches(p, False) for p in hits)
    assert m.matches(b"/home/user/project1/build/x/y/out.log", False)
    assert m.matches(b"/home/user/project1/node_modules", True)
    assert not m.matches(b"/home/user/project1/node_modules", False)


name_chars = st.sampled_from("ab.-_x")
names = st.text(name_chars, min_size=1, max_size=8)
globs = st.text(st.sampled_from("ab.-_x*?"), min_size=1, max_size=6)


@given(pattern=globs, dirs=st.lists(names, max_size=3), base=names)
def test_slashless_glob_is_fnmatch_on_the_basename(
    pattern: str, dirs: list[str], base: str
) -> None:
    path = ("/" + "/".join([*dirs, base])).encode()
    expected = fnmatch.fnmatchcase(base, pattern)
    assert compile_excludes((pattern,)).matches(path, False) is expected


@given(pattern=globs, base=names)
def test_trailing_slash_never_matches_files(pattern: str, base: str) -> None:
    m = compile_excludes((pattern + "/",))
    assert not m.matches(b"/x/" + base.encode(), False)
    assert m.matches(b"/x/" + base.encode(), True) is fnmatch.fnmatchcase(base, pattern)


@given(dirs=st.lists(names, min_size=1, max_size=4), base=names)
def test_anchored_literal_matches_only_itself(dirs: list[str], base: str) -> None:
    path = "/" + "/".join([*dirs, base])
    m = compile_excludes((path,))
    assert m.matches(path.encode(), False)
    assert not m.matches(b"/prefix" + path.encode(), False)

"""Path patterns (files PATTERN, restore --path): golden table, near matches, the prefilter."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localbackup.index import TYPE_CODE, EntryType, Record
from localbackup.pathmatch import (
    NoPathMatch,
    PathPattern,
    PathSelection,
    PatternNeeds,
    roots_of,
    roots_of_sources,
    suggest,
)

# Two sources: the folder /home/me/Documents and the single file /etc/hosts.
D = b"home/me/Documents"
TREE = {
    D: "dir",
    D + b"/a.txt": "file",
    D + b"/report-1.txt": "file",
    D + b"/docs": "dir",
    D + b"/docs/a.txt": "file",
    D + b"/docs/notes.md": "file",
    D + b"/docs/sub": "dir",
    D + b"/docs/sub/b.txt": "file",
    D + b"/notdocs": "dir",
    D + b"/notdocs/x": "file",
    D + b"/files": "dir",
    D + b"/files/docs": "file",  # a file called docs
    D + b"/caf\xe9.txt": "file",  # not UTF-8
    b"etc/hosts": "file",
}
ROOTS = (D, b"etc/hosts")


def shown(path: bytes) -> str:
    return path.removeprefix(D + b"/").decode("utf-8", "backslashreplace")


def selected(pattern: str) -> set[str]:
    p = PathPattern(pattern, ROOTS)
    return {shown(path) for path, kind in TREE.items() if p.selects(path, kind == "dir")}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # relative to the source root: the folder's contents, the folder and all below
        ("docs/*", {"docs/a.txt", "docs/notes.md", "docs/sub", "docs/sub/b.txt"}),
        ("docs/", {"docs", "docs/a.txt", "docs/notes.md", "docs/sub", "docs/sub/b.txt"}),
        ("docs/sub/b.txt", {"docs/sub/b.txt"}),
        ("docs/**", {"docs/a.txt", "docs/notes.md", "docs/sub", "docs/sub/b.txt"}),
        ("**/b.txt", {"docs/sub/b.txt"}),
        ("sub/b.txt", set()),  # anchored at the root, as in .gitignore
        # a name anywhere below a root (a file named docs too, unless the / asks for folders)
        (
            "docs",
            {"docs", "docs/a.txt", "docs/notes.md", "docs/sub", "docs/sub/b.txt", "files/docs"},
        ),
        ("a.txt", {"a.txt", "docs/a.txt"}),
        ("*.txt", {"a.txt", "report-1.txt", "docs/a.txt", "docs/sub/b.txt", "caf\\xe9.txt"}),
        ("report*.txt", {"report-1.txt"}),
        ("hosts", {"etc/hosts"}),
        ("home", set()),  # above the source roots: not a backed-up folder of its own
        # the source's own name, and absolute paths
        ("Documents/docs/a.txt", {"docs/a.txt"}),
        ("/home/me/Documents/docs/sub", {"docs/sub", "docs/sub/b.txt"}),
        ("/etc/hosts", {"etc/hosts"}),
        ("/home/me", {shown(k) for k in TREE if k.startswith(b"home/")}),
        # * and ? stay within one component; character classes
        (
            "docs*",
            {"docs", "docs/a.txt", "docs/notes.md", "docs/sub", "docs/sub/b.txt", "files/docs"},
        ),
        ("d?cs/[an]*", {"docs/a.txt", "docs/notes.md"}),
    ],
)
def test_golden_table(pattern: str, expected: set[str]) -> None:
    assert selected(pattern) == expected


def test_a_pattern_is_read_the_same_whichever_source_it_names() -> None:
    nested = (b"srv/a", b"srv/b")
    p = PathPattern("x/*", nested)
    assert p.selects(b"srv/a/x/1") and p.selects(b"srv/b/x/2")
    assert PathPattern("a/x/1", nested).selects(b"srv/a/x/1")  # the source's own name
    assert not PathPattern("b/x/1", nested).selects(b"srv/a/x/1")


def test_roots_are_the_paths_whose_parent_is_not_archived() -> None:
    assert roots_of(TREE) == (b"etc/hosts", D)
    assert roots_of_sources([]) == ()
    from pathlib import Path

    assert roots_of_sources([Path("/home/me/Documents/"), Path("/etc//hosts")]) == (b"etc/hosts", D)


def _records(tree: dict[bytes, str]) -> dict[bytes, Record]:
    dir_code, file_code = TYPE_CODE[EntryType.DIR], TYPE_CODE[EntryType.FILE]
    return {
        p: (0, 0, 0, 0, 0, 0, 0, 0, 1, dir_code if k == "dir" else file_code)
        for p, k in tree.items()
    }


@pytest.mark.parametrize(
    ("pattern", "hint"),
    [
        ("doc/*", "did you mean 'docs/*'?"),
        ("raport-1.txt", "did you mean 'report-1.txt'?"),
        ("Documets/docs/a.txt", "did you mean 'Documents/docs/a.txt'?"),
        ("/home/me/Documents/dosc", "did you mean '/home/me/Documents/docs'?"),
        (
            "zzzz",
            "'glacier-backup files PATTERN' lists the backed-up paths and the points in time "
            "that have them (a deleted file: restore --at an earlier increment)",
        ),
    ],
)
def test_a_pattern_that_selects_nothing_names_near_matches(pattern: str, hint: str) -> None:
    selection = PathSelection([pattern, "a.txt"], roots_of(TREE))
    with pytest.raises(NoPathMatch) as caught:
        selection.require(_records(TREE))
    assert str(caught.value) == f"no backed-up path matches {pattern!r}; {hint}"
    assert caught.value.patterns == (pattern,)


def test_suggestions_are_patterns_that_select_something() -> None:
    for pattern in ("doc/*", "raport-1.txt", "Documets/docs/a.txt"):
        for s in suggest(pattern, TREE, ROOTS):
            assert selected(s), s


def test_no_patterns_select_everything() -> None:
    everything = PathSelection([])
    assert not everything and everything(b"any/path")
    PathSelection([]).require({})


def test_needs_are_what_a_prefilter_can_use() -> None:
    assert PathPattern("a.txt", ROOTS).needs == PatternNeeds(name=b"a.txt")
    assert PathPattern("*.txt", ROOTS).needs == PatternNeeds(name_suffix=b".txt")
    assert PathPattern("/home/me/Documents/docs", ROOTS).needs == PatternNeeds(
        prefixes=(D + b"/docs",)
    )
    needs = PathPattern("docs/*.md", ROOTS).needs
    assert D + b"/docs/" in needs.prefixes and needs.name is None


def _holds(needs: PatternNeeds, path: bytes) -> bool:
    components = path.split(b"/")
    return (
        (needs.name is None or needs.name in components)
        and (needs.name_suffix is None or any(c.endswith(needs.name_suffix) for c in components))
        and (not needs.prefixes or path.startswith(needs.prefixes))
    )


_names = st.sampled_from([b"docs", b"a.txt", b"b.md", b"sub", b"x", b"docs.txt", b"\xff"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_names, min_size=0, max_size=4),
    st.sampled_from(
        [
            "docs",
            "docs/",
            "*.txt",
            "a.txt",
            "docs/*",
            "docs/**/x",
            "/home/me/Documents/sub",
            "Documents/docs",
            "**/b.md",
            "sub/*.md",
            "[ab].*",
        ]
    ),
    st.booleans(),
)
def test_every_selected_path_holds_what_its_pattern_needs(
    tail: list[bytes], pattern: str, is_dir: bool
) -> None:
    path = b"/".join([D, *tail])
    p = PathPattern(pattern, ROOTS)
    if p.selects(path, is_dir):
        assert _holds(p.needs, path), (pattern, path)

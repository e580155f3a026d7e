"""``files PATTERN`` and ``restore --path`` read a pattern the same way (issue 13), through the
real ``glacier-backup`` process: what ``files`` shows is what ``restore --path`` brings back,
and a pattern that selects nothing fails before anything is retrieved or written."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest

from tests.watcher.service_harness import Project


def tree(p: Project) -> None:
    (p.src / "docs" / "sub").mkdir(parents=True)
    (p.src / "docs" / "a.txt").write_text("docs a\n")
    (p.src / "docs" / "notes.md").write_text("notes\n")
    (p.src / "docs" / "sub" / "b.txt").write_text("deep b\n")
    (p.src / "a.txt").write_text("top a\n")
    (p.src / "photo.jpg").write_bytes(b"\xff\xd8 not really")


def restored(out: Path, p: Project) -> set[str]:
    """The files of a restore, relative to the source root."""
    root = out / str(p.src).lstrip("/")
    return {str(f.relative_to(root)) for f in root.rglob("*") if f.is_file()}


def listed(p: Project, pattern: str) -> set[str]:
    r = p.run("files", "--json", pattern)
    assert r.returncode == 0, r.stderr
    prefix = f"{p.src}/"
    return {h["path"].removeprefix(prefix) for h in json.loads(r.stdout)}


@pytest.fixture(scope="module")
def uploaded(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One uploaded cycle for the whole module: the tests only read it (each restores into a
    directory of its own)."""
    p = Project(tmp_path_factory.mktemp("paths"), increments=0)  # every backup: a sealed full
    tree(p)
    p.backup()
    r = p.run("upload")
    assert r.returncode == 0, r.stderr
    return p


@pytest.mark.parametrize(
    ("pattern", "files"),
    [
        ("docs/*", {"docs/a.txt", "docs/notes.md", "docs/sub/b.txt"}),  # the README's example
        ("a.txt", {"a.txt", "docs/a.txt"}),  # `files a.txt` found it, restore restored nothing
        ("*.txt", {"a.txt", "docs/a.txt", "docs/sub/b.txt"}),
        ("src/docs/sub/b.txt", {"docs/sub/b.txt"}),  # from the source's own name
    ],
)
def test_restore_path_brings_back_what_files_lists(
    uploaded: Project, pattern: str, files: set[str]
) -> None:
    p = uploaded
    out = p.root / f"out-{uuid.uuid4().hex[:6]}"
    r = p.run("restore", "latest", "--to", str(out), "--path", pattern)
    assert r.returncode == 0, r.stderr
    assert restored(out, p) == files
    assert f"restored into {out}: {len(files)} file" in r.stdout
    assert {f for f in listed(p, pattern) if (p.src / f).is_file()} == files


def test_an_absolute_pattern_and_the_spool_restore_agree(uploaded: Project) -> None:
    p = uploaded
    out = p.root / "from-spool"
    pattern = f"{p.src}/docs/sub"
    r = p.run("restore", "--from-spool", "latest", "--to", str(out), "--path", pattern)
    assert r.returncode == 0, r.stderr
    assert restored(out, p) == {"docs/sub/b.txt"}
    assert listed(p, pattern) == {"docs/sub", "docs/sub/b.txt"}


def test_a_pattern_that_selects_nothing_fails_and_names_near_matches(uploaded: Project) -> None:
    p = uploaded
    out = p.root / "nothing"
    r = p.run("restore", "latest", "--to", str(out), "--path", "doc/*")
    assert r.returncode == 1
    assert "no backed-up path matches 'doc/*'; did you mean 'docs/*'?" in r.stderr
    assert not out.exists()
    f = p.run("files", "raport.txt")
    assert f.returncode == 1 and "no backed-up path matches 'raport.txt'" in f.stderr


def test_no_match_is_found_before_a_retrieval_is_requested(
    tmp_path: Path, moto_server: str, aws_env: None
) -> None:
    """DEEP_ARCHIVE: a retrieval is billed. The pattern is checked against the catalogue's
    copy of the index first; nothing is requested, nothing recorded, nothing written."""
    bucket = f"gb-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    store = (
        f'type = "s3"\nbucket = "{bucket}"\nstorage_class = "DEEP_ARCHIVE"\n'
        f'endpoint_url = "{moto_server}"\nregion = "us-east-1"'
    )
    p = Project(tmp_path, increments=0, store=store)
    tree(p)
    p.backup()
    assert p.run("upload").returncode == 0
    out = tmp_path / "out"
    r = p.run("restore", "latest", "--to", str(out), "--path", "nope/*", "--yes")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "no backed-up path matches 'nope/*'" in r.stderr
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "Restore" not in s3.head_object(Bucket=bucket, Key=key)  # no retrieval asked
    assert "requesting" not in r.stdout and not out.exists()

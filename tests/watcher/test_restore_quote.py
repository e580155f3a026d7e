"""``restore ... --quote``: the archive, its size, every tier's wait and cost, what a ``--path``
restore reads — with nothing requested or downloaded; the retrieval prompt says the same."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import boto3
import pytest

from tests.watcher.service_harness import Project


@pytest.fixture
def bucket(moto_server: str, aws_env: None) -> str:
    name = f"gb-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def _tiers(text: str) -> list[str]:
    """The tier lines, without the clock time they are expected around."""
    return [re.sub(r" \(around [^)]*\)", "", line) for line in text.splitlines() if "tier " in line]


def test_a_deep_archive_quote_requests_nothing_and_matches_the_prompt(
    tmp_path: Path, moto_server: str, bucket: str
) -> None:
    store = (
        f'type = "s3"\nbucket = "{bucket}"\nprefix = "q/"\nstorage_class = "DEEP_ARCHIVE"\n'
        f'endpoint_url = "{moto_server}"\nregion = "us-east-1"'
    )
    p = Project(tmp_path, increments=1, store=store)
    (p.src / "docs").mkdir()
    (p.src / "docs" / "a.txt").write_text("a" * 1000)
    (p.src / "other.txt").write_text("o")
    p.backup()
    (p.src / "docs" / "b.txt").write_text("b" * 500)
    p.backup()
    assert p.run("upload").returncode == 0

    q = p.run("restore", "latest", "--quote", "--path", f"{p.src}/docs")
    assert q.returncode == 0, q.stderr
    assert re.search(r"archive needed: \S+\.tar\.age \(cycle \S+, [\d.]+ KiB\)", q.stdout)
    assert "point in time: increment 1" in q.stdout
    tiers = _tiers(q.stdout)
    assert [t.split(":")[0].strip() for t in tiers] == ["tier Standard", "tier Bulk"]
    assert "typically ready within 12 hours" in tiers[0] and "estimated $" in tiers[0]
    assert tiers[1].endswith("<- this restore")  # Bulk: DEEP_ARCHIVE's default
    assert "3 entries (2 files, 1.5 KiB)" in q.stdout  # docs/, a.txt, b.txt
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    (archive,) = [
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if ".tar." in o["Key"]
    ]
    assert "Restore" not in s3.head_object(Bucket=bucket, Key=archive)  # nothing requested

    # the prompt before a real retrieval shows the same numbers (and, unattended, stops)
    prompt = p.run("restore", "latest", "--to", str(tmp_path / "out"), "--path", f"{p.src}/docs")
    assert prompt.returncode == 2 and "add --yes" in prompt.stderr
    assert _tiers(prompt.stdout)[:2] == tiers
    assert "Restore" not in s3.head_object(Bucket=bucket, Key=archive)


def test_a_readable_archive_quotes_no_retrieval_and_what_is_read(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=1)
    (p.src / "a.txt").write_text("a")
    p.backup()
    p.backup()
    assert p.run("upload").returncode == 0
    q = p.run("restore", "--quote", "--at", "0")
    assert q.returncode == 0, q.stderr
    assert "readable at once: no retrieval, nothing to wait for" in q.stdout
    assert "point in time: increment 0 (full)" in q.stdout
    read = re.search(r"the restore reads ([\d.]+ \w+) of it", q.stdout)
    assert read is not None
    assert not (tmp_path / "out").exists()
    assert p.run("restore", "--quote", "--from-spool").returncode == 2
    assert p.run("restore", "latest").returncode == 2  # without --quote, --to is needed

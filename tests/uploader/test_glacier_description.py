"""Archive descriptions, tree hashes and job values of the Glacier store (pure functions)."""

from __future__ import annotations

import io
import json

import pytest
from botocore.utils import calculate_tree_hash
from hypothesis import given
from hypothesis import strategies as st

from emulators.glacier import treehash as emulator_treehash
from uploader.archive import ARCHIVE_FORMAT
from uploader.stores.base import MiB
from uploader.stores.glacier.description import (
    MAX_DESCRIPTION,
    ArchiveDescription,
    DescriptionError,
    parse_description,
)
from uploader.stores.glacier.jobs import job_from_response, tree_hash_ranges
from uploader.stores.glacier.treehash import (
    TreeHasher,
    combine_tree_hashes,
    is_tree_hash_aligned,
    tree_hash,
)

SHA = "ab" * 32
OURS = '{"format": "glacier-backup-archive", "format-version": 1, '
METADATA = {
    "format": ARCHIVE_FORMAT,
    "format-version": "1",
    "host": "büro-pc",  # non-ASCII: escaped, the description stays printable ASCII
    "cycle-id": "20260101T000000Z",
    "cycle-sha256": SHA,
    "plaintext-size": "12345",
    "encryption": "age",
}


def test_a_description_round_trips_through_its_text_and_the_object_metadata() -> None:
    desc = ArchiveDescription.from_metadata("büro-pc/20260101T000000Z.tar.age", METADATA)
    text = desc.render()
    assert len(text) <= MAX_DESCRIPTION and all(0x20 <= ord(c) <= 0x7E for c in text)
    assert json.loads(text)["format"] == "glacier-backup-archive"
    assert parse_description(text) == desc
    assert desc.metadata() == METADATA


def test_optional_fields_are_dropped_only_when_the_description_would_not_fit() -> None:
    long_host = "h" * 500
    desc = ArchiveDescription(f"{long_host}/c.tar.age", host=long_host, cycle_sha256=SHA)
    text = desc.render()
    assert len(text) <= MAX_DESCRIPTION
    parsed = parse_description(text)
    assert parsed is not None and parsed.key == desc.key and parsed.cycle_sha256 == SHA
    assert parsed.host is None
    with pytest.raises(DescriptionError, match="too long"):
        ArchiveDescription("k" * 1100).render()
    with pytest.raises(DescriptionError, match="SHA-256"):
        ArchiveDescription.from_metadata("h/c", {"cycle-sha256": "nope"})


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "my archive1",
        "{",
        "[1, 2]",
        '{"format": "mt-aws-glacier", "key": "a"}',
        '{"format": "glacier-backup-archive", "format-version": 2, "key": "h/c"}',
        '{"format": "glacier-backup-archive", "format-version": "1", "key": "h/c"}',
        '{"format": "glacier-backup-archive", "format-version": 1}',
        '{"format": "glacier-backup-archive", "format-version": 1, "key": ""}',
        '{"format": "glacier-backup-archive", "format-version": 1, "key": 7}',
        '{"format": "glacier-backup-archive", "format-version": 1, "key": "k", "cycle-sha256": 1}',
        OURS + '"key": "k", "plaintext-size": -1}',
        '{"format": "glacier-backup-archive", "format-version": true, "key": "k"}',
        '{"format": "glacier-backup-archive", "format-version": 1, "key": "k", "x": "\u00e9"}',
        "[" * 100_000,
        '{"format": "glacier-backup-archive", "format-version": 1, "key": "' + "k" * 1100 + '"}',
    ],
)
def test_foreign_and_malformed_descriptions_are_told_apart(text: str | None) -> None:
    assert parse_description(text) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)


@given(st.text(max_size=1200))
def test_parse_description_never_raises_on_arbitrary_text(text: str) -> None:
    parse_description(text)


@given(st.dictionaries(st.sampled_from(["format", "format-version", "key", "host",
                                        "cycle-id", "plaintext-size", "cycle-sha256"]),
                       json_values))  # fmt: skip
def test_parse_description_never_raises_on_json_that_looks_almost_like_ours(
    fields: dict[str, object],
) -> None:
    body = {"format": ARCHIVE_FORMAT, "format-version": 1, **fields}
    parsed = parse_description(json.dumps(body))
    assert parsed is None or isinstance(parsed.key, str)


HOSTS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", fullmatch=True)


@given(
    host=HOSTS,
    cycle=st.from_regex(r"20[0-9]{6}T[0-9]{6}Z(-[0-9]{1,3})?", fullmatch=True),
    size=st.none() | st.integers(min_value=0, max_value=2**63),
    sha=st.none() | st.just(SHA),
)
def test_every_description_we_render_parses_back(
    host: str, cycle: str, size: int | None, sha: str | None
) -> None:
    """Real descriptions (a hostname-like host, as the config requires) always fit whole."""
    key = f"{host}/{cycle}.tar.age"
    desc = ArchiveDescription(key, host=host, plaintext_size=size, cycle_sha256=sha)
    assert parse_description(desc.render()) == desc


@given(
    key=st.text(min_size=1, max_size=200),
    host=st.none() | st.text(max_size=100),
    size=st.none() | st.integers(min_value=0, max_value=2**63),
    sha=st.none() | st.just(SHA),
)
def test_arbitrary_text_keeps_the_key_and_drops_only_optional_fields(
    key: str, host: str | None, size: int | None, sha: str | None
) -> None:
    """Escaping can push odd text past 1,024 characters: optional fields are then dropped (never
    altered), and a key that cannot fit at all is refused rather than cut."""
    desc = ArchiveDescription(key, host=host, plaintext_size=size, cycle_sha256=sha)
    try:
        text = desc.render()
    except DescriptionError:
        return
    parsed = parse_description(text)
    assert parsed is not None and parsed.key == key
    assert parsed.host in (None, host)
    assert parsed.plaintext_size in (None, size)
    assert parsed.cycle_sha256 in (None, sha)


# -- tree hashes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 5, MiB - 1, MiB, MiB + 1, 3 * MiB, 6 * MiB + MiB // 2])
def test_tree_hash_matches_botocore_and_the_emulator(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    expected = calculate_tree_hash(io.BytesIO(data))
    assert tree_hash(data) == expected == emulator_treehash.tree_hash(data)
    hasher = TreeHasher()
    for i in range(0, len(data), 300_000):
        hasher.update(data[i : i + 300_000])
    assert hasher.hexdigest() == expected


@pytest.mark.parametrize("part", [MiB, 2 * MiB, 4 * MiB])
def test_part_tree_hashes_combine_into_the_archive_tree_hash(part: int) -> None:
    data = bytes(range(256)) * (7 * MiB // 256) + b"tail"
    parts = [tree_hash(data[i : i + part]) for i in range(0, len(data), part)]
    assert combine_tree_hashes(parts) == tree_hash(data)
    assert combine_tree_hashes(parts) == emulator_treehash.combine_tree_hashes(parts)


def test_tree_hash_ranges_are_all_tree_hash_aligned() -> None:
    size = 9 * MiB + 5
    ranges = tree_hash_ranges(size, 4 * MiB)
    assert ranges == [(0, 4 * MiB), (4 * MiB, 8 * MiB), (8 * MiB, size)]
    assert all(is_tree_hash_aligned(a, b - 1, size) for a, b in ranges)
    assert not is_tree_hash_aligned(MiB, 3 * MiB - 1, size)
    with pytest.raises(ValueError, match="power of two"):
        tree_hash_ranges(size, 3 * MiB)


def test_a_job_description_is_read_with_its_optional_fields() -> None:
    job = job_from_response(
        {
            "JobId": "j",
            "Action": "ArchiveRetrieval",
            "StatusCode": "Succeeded",
            "CreationDate": "2013-03-20T17:03:43.221Z",
            "CompletionDate": "2013-03-20T17:03:43Z",
            "Tier": "Bulk",
            "ArchiveId": "a",
            "ArchiveSizeInBytes": 10,
            "RetrievalByteRange": "0-9",
            "SHA256TreeHash": "t",
            "InventorySizeInBytes": None,
        },
        "test",
    )
    assert (job.succeeded, job.byte_range, job.archive_size, job.tree_hash) == (
        True,
        (0, 10),
        10,
        "t",
    )
    assert job.completed is not None and job.created.microsecond == 221000

from pathlib import Path

import pytest

from localbackup.configkit import (
    ConfigError,
    Section,
    format_duration,
    parse_duration,
    parse_rate,
    parse_size,
)

F = Path("/etc/gb/config.toml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("12h", 43200),
        ("7d", 604800),
        ("2w", 1209600),
        ("1d12h", 129600),
        ("1.5h", 5400),
        ("45", 45),
        (" 3 d ", 259200),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7x", "d", "7d garbage", "-3d", "1d-2h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    for s in (90, 3600, 86400 * 7, 86400 * 9, 129600):
        assert parse_duration(format_duration(s)) == s


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("64MiB", 64 * 2**20),
        ("5 MiB", 5 * 2**20),
        ("500GB", 500 * 10**9),
        ("2TiB", 2 * 2**40),
        ("1.5GiB", 3 * 2**29),
        ("1024", 1024),
        (4096, 4096),
        ("10k", 10_000),
    ],
)
def test_parse_size(text: str | int, n: int) -> None:
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "64 furlongs", "MiB", "-5MiB", "1.2.3GB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_error_names_file_key_and_problem() -> None:
    s = Section({"increments_per_cycle": "seven"}, "backup", F)
    with pytest.raises(ConfigError) as e:
        s.integer("increments_per_cycle", 7)
    assert str(e.value) == (
        "/etc/gb/config.toml: backup.increments_per_cycle: expected an integer, got str 'seven'"
    )


def test_unknown_key_gets_a_did_you_mean_hint() -> None:
    s = Section({"incremnts_per_cycle": 3}, "backup", F)
    s.integer("increments_per_cycle", 7)
    with pytest.raises(
        ConfigError,
        match=r"backup\.incremnts_per_cycle: unknown key "
        r"\(did you mean 'increments_per_cycle'\?\)",
    ):
        s.finish()


def test_booleans_are_not_integers_and_vice_versa() -> None:
    s = Section({"n": True, "b": 1}, "t", F)
    with pytest.raises(ConfigError, match="got a boolean"):
        s.integer("n", 0)
    with pytest.raises(ConfigError, match="expected true or false"):
        s.boolean("b", False)


def test_list_items_are_named_by_index() -> None:
    s = Section({"sources": ["/a", 3]}, "backup", F)
    with pytest.raises(ConfigError, match=r"backup\.sources\[1\]: expected a string"):
        s.string_list("sources")


def test_bounds_and_choices() -> None:
    s = Section({"level": 40, "mode": "differentail"}, "backup", F)
    with pytest.raises(ConfigError, match="at most 22"):
        s.integer("level", 3, minimum=1, maximum=22)
    with pytest.raises(ConfigError, match="did you mean 'differential'"):
        s.choice("mode", "incremental", ("incremental", "differential"))


def test_paths_expand_home_and_resolve_relative_to_the_file(monkeypatch) -> None:
    monkeypatch.setenv("HOME", "/home/u")
    s = Section({"a": "~/x", "b": "rel/y", "c": "/abs"}, "t", F)
    assert s.path("a", None) == Path("/home/u/x")
    assert s.path("b", None) == Path("/etc/gb/rel/y")
    assert s.path("c", None) == Path("/abs")


def test_durations_and_sizes_in_sections() -> None:
    s = Section({"d": "7d", "z": "64MiB", "bad": "soon", "neg": 0}, "t", F)
    assert s.duration("d", None) == 604800
    assert s.size("z", None) == 64 * 2**20
    with pytest.raises(ConfigError, match=r"t\.bad: not a duration"):
        s.duration("bad", None)
    with pytest.raises(ConfigError, match="positive"):
        s.duration("neg", None)


@pytest.mark.parametrize("zero", ["0d", "0", 0, 0.0])
def test_a_zero_duration_is_refused_valid_or_off_as_the_key_says(zero: object) -> None:
    s = Section({"k": zero, "neg": -5}, "t", None)
    with pytest.raises(ConfigError, match=r"t\.k: must be a positive duration"):
        s.duration("k", None)
    assert s.duration("k", None, zero="valid") == 0.0  # min_age = "0d": no minimum age
    assert s.duration("k", 7.0, zero="off") is None  # full_every = "0": off
    with pytest.raises(ConfigError, match=r"t\.neg: must not be negative"):
        s.duration("neg", None, zero="valid")


@pytest.mark.parametrize(
    ("text", "n"),
    [("5MiB/s", 5 * 2**20), ("5MB/s", 5_000_000), ("40Mbit/s", 5_000_000), ("20Mbps", 2_500_000)],
)
def test_parse_rate(text: str, n: int) -> None:
    assert parse_rate(text) == n


@pytest.mark.parametrize("text", ["5Mb/s", "5mb/s", "100kb/s"])
def test_a_rate_in_b_is_refused_as_ambiguous(text: str) -> None:
    """An ISP's "20Mb/s" means bits: read as bytes it would allow eight times as much."""
    with pytest.raises(ValueError, match=r"ambiguous rate.*Mbit/s"):
        parse_rate(text)

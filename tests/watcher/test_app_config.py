"""The configuration file as users write it: every error names the file, the key and the problem."""

import subprocess
import sys
from pathlib import Path

import pytest

from localbackup.configkit import ConfigError
from watcher.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_example_config_is_valid_and_documents_the_defaults(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "config.example.toml")
    assert cfg.backup.increments_per_cycle == 7
    assert cfg.backup.mode == "incremental"
    assert cfg.backup.exclude_caches is True
    assert cfg.watch.keep_local_cycles == 1
    assert cfg.store.type == "local"
    assert cfg.upload.concurrency == 4
    assert cfg.retention.keep_last == 2
    assert cfg.watch.marker_dir == Path("~/.local/share/glacier-backup/spool/markers").expanduser()


def test_example_config_shows_every_unattended_key_with_its_default() -> None:
    from uploader.config import RestoreConfig
    from watcher.metrics import MetricsConfig
    from watcher.notify.config import NotifyConfig

    cfg = load_config(ROOT / "config.example.toml")
    assert cfg.notify == NotifyConfig() and cfg.metrics == MetricsConfig()
    assert cfg.restore == RestoreConfig() and cfg.upload.max_rate is None
    assert (cfg.backup.before, cfg.backup.after, cfg.backup.hook_timeout) == ((), (), 300.0)
    assert cfg.backup.before_failure == "fail"
    text = (ROOT / "config.example.toml").read_text()
    for section, keys in {
        "backup": ("before", "after", "hook_timeout", "before_failure"),
        "store": ("object_lock", "lock_for"),
        "upload": ("max_rate", "window"),
        "restore": ("max_rate",),
        "notify": ("url", "url_style", "command", "on", "retrying_after", "timeout"),
        "metrics": ("textfile",),
    }.items():
        body = text.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
        for key in keys:
            assert f"{key} = " in body, f"[{section}] {key} is not in config.example.toml"


def test_minimal_config_gets_xdg_defaults(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    cfg = load_config(
        write(tmp_path, '[backup]\nsources = ["/srv"]\n[encryption]\nmode = "none"\n')
    )
    assert cfg.backup.sources == (Path("/srv"),)
    assert cfg.backup.spool_dir == tmp_path / "data/glacier-backup/spool"
    assert cfg.watch.marker_dir == tmp_path / "data/glacier-backup/spool/markers"
    assert cfg.state_dir == tmp_path / "state/glacier-backup"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[backup]\nsources = ["/a"]\nincrements_per_cycle = -1\n',
            "backup.increments_per_cycle: must be at least 0, got -1",
        ),
        (
            '[backup]\nsources = ["/a"]\nfull_every = "weekly"\n',
            "backup.full_every: not a duration",
        ),
        (
            '[backup]\nsources = ["/a"]\nexlude = ["*.tmp"]\n',
            "backup.exlude: unknown key (did you mean 'exclude'?)",
        ),
        ('[bakup]\nsources = ["/a"]\n', "bakup: unknown key (did you mean 'backup'?)"),
        ('[backup]\nsources = "/a"\n', "backup.sources: expected a list of strings"),
        ('[backup]\nmode = "diff"\n', "backup.mode: must be one of 'incremental', 'differential'"),
        ('[watch]\nkeep_local_cycles = "one"\n', "watch.keep_local_cycles: expected an integer"),
        ('[retention]\nmax_store_size = "lots"\n', "retention.max_store_size: not a size"),
        ("[backup\nsources = 1\n", "(syntax): is not valid TOML"),
    ],
)
def test_errors_name_file_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}: ")
    assert message in str(e.value)


def test_missing_default_config_suggests_init(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="run 'glacier-backup init'"):
        load_config()


def test_cli_reports_config_errors_with_exit_code_2(tmp_path: Path) -> None:
    path = write(tmp_path, '[backup]\nsources = ["/a"]\ncompresion_level = 3\n')
    proc = subprocess.run(
        [sys.executable, "-m", "watcher", "--config", str(path), "backup"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert (
        f"{path}: backup.compresion_level: unknown key (did you mean 'compression_level'?)"
        in proc.stderr
    )


def test_each_command_is_found_in_argv_and_help_lists_them_all() -> None:
    from watcher.cli import COMMANDS, build_parser, command_of

    assert (
        command_of(["--config", "c.toml", "--log-level", "debug", "backup", "--full"]) == "backup"
    )
    assert command_of(["--log-format", "json", "restore", "latest"]) == "restore"
    assert command_of(["--help"]) is None
    choices = build_parser(None)._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(COMMANDS) <= set(choices)


@pytest.mark.parametrize("host", ["a/b", "two words", "caf\u00e9", "x" * 64, "-lead", ""])
def test_host_must_be_a_host_name(tmp_path: Path, host: str) -> None:
    path = write(tmp_path, f'[backup]\nsources = ["/a"]\nhost = "{host}"\n')
    with pytest.raises(ConfigError, match=r"backup\.host: must be a host name"):
        load_config(path)


def test_the_default_host_is_always_a_valid_host_name(monkeypatch) -> None:
    import socket

    from localbackup import config as backup_config

    for raw in ("my laptop.local", "_weird", "caf\u00e9-box", ""):
        monkeypatch.setattr(socket, "gethostname", lambda raw=raw: raw)
        assert backup_config._HOST.match(backup_config.default_host())

"""``config import-legacy``: the original tool's JSON options -> a TOML config that loads."""

from __future__ import annotations

import argparse
import json
import stat
import tomllib
from pathlib import Path

import pytest

from uploader.config import GlacierStoreConfig, LocalStoreConfig
from watcher.commands import config_cmd
from watcher.config import load_config
from watcher.legacy_config import DEFAULT_GLACIER_KEY, read_legacy

# Modelled on the original's built-in defaults, with the values a user typically changed.
INCLUDE_EXCLUDE = {
    "includes": ["/home/me/Documents", "~/Pictures", "projects"],
    "excludes": ["*.tmp", "*~", "node_modules", ".cache", "/home/me/Documents/big", ""],
}
LOCAL_OPTIONS = {
    "includeexcludefilespec": "~/.glacierclient/includeexclude.json",
    "previousFileStateStore": "~/.glacierclient/previousfilestore.json",
    "backupArchiveLocalPath": "/var/tmp/glacierclient",
    "opensslbinary": "/usr/bin/openssl",
    "maxIncrementsBetweenFullBackups": 7,
    "localEncryptionKey": "",
    "DEBUGME": False,
    "INFOMSG": True,
}
GLACIER_OPTIONS = {
    "backupArchiveLocalPath": "/var/tmp/glacierclient",
    "localEncryptionKey": "correct horse battery staple",
    "GlacierVault": "family-photos",
    "VaultSizeLimit": 536870912000,
    "VaultArchiveMinRetentionDays": 90,
    "DEBUGME": False,
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    (h / "Pictures").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(h))
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)
    return h


def _old_dir(base: Path, **files: object) -> Path:
    d = base / ".glacierclient"
    d.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (d / f"{name}.json").write_text(json.dumps(data))
    return d


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path)
    sub = parser.add_subparsers(dest="command")
    config_cmd.add_parser(sub)
    args = parser.parse_args(list(argv))
    return int(args.run(args))


def _full(home: Path) -> Path:
    return _old_dir(
        home,
        includeexclude=INCLUDE_EXCLUDE,
        localbackupoptions=LOCAL_OPTIONS,
        glacierbackupoptions=GLACIER_OPTIONS,
    )


def test_writes_a_config_that_loads_and_explains_every_setting(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _full(home)
    cfg = tmp_path / "conf" / "config.toml"
    assert _run("--config", str(cfg), "config", "import-legacy", str(old)) == 0
    config = load_config(cfg)
    assert config.backup.sources == (
        Path("/home/me/Documents"),
        home / "Pictures",
        home / "projects",
    )
    assert config.backup.exclude == ("*.tmp", "*~", "node_modules/", ".cache/")
    assert config.backup.increments_per_cycle == 8  # the old tool made max + 1 increments
    assert config.backup.mode == "incremental"
    assert config.store == GlacierStoreConfig(vault="family-photos")
    assert config.retention.max_store_size == 536870912000
    assert config.retention.min_age == 90 * 86400
    assert len(config.encryption.recipients) == 1  # age, to a new identity next to the config
    assert config.encryption.identity_file == cfg.parent / "identity.txt"
    assert '# "/home/me/Documents/big"' in cfg.read_text()  # never matched by the old tool
    out = capsys.readouterr().out
    for phrase in (
        "mapped: includeexclude.json: excludes 'node_modules' -> \"node_modules/\"",
        "changed: localbackupoptions.json: maxIncrementsBetweenFullBackups = 7",
        "not carried over: localbackupoptions.json: previousFileStateStore",
        "not carried over: glacierbackupoptions.json: localEncryptionKey",
        "did not expand '~'",
        "one request per archive",
    ):
        assert phrase in out
    assert "correct horse" not in out  # a secret is never printed


def test_the_old_key_goes_to_a_0600_file_for_legacy_restores(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "config.toml"
    assert _run("--config", str(cfg), "config", "import-legacy", str(_full(home))) == 0
    key = cfg.parent / "legacy-passphrase"
    assert key.read_text() == "correct horse battery staple\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert "correct horse" not in cfg.read_text()
    assert load_config(cfg).encryption.passphrase_file is None  # new archives: age recipients


def test_refuses_to_overwrite_an_existing_config(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("# mine\n")
    assert _run("--config", str(cfg), "config", "import-legacy", str(_full(home))) == 1
    assert cfg.read_text() == "# mine\n"
    assert "not overwriting" in capsys.readouterr().err
    assert not (tmp_path / "legacy-passphrase").exists()


def test_dry_run_prints_loadable_toml_and_writes_nothing(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "conf" / "config.toml"
    assert _run("--config", str(cfg), "config", "import-legacy", "--stdout", str(_full(home))) == 0
    captured = capsys.readouterr()
    data = tomllib.loads(captured.out)
    assert data["store"] == {"type": "glacier", "vault": "family-photos"}
    assert "what became of each setting" in captured.err
    assert not (tmp_path / "conf").exists()
    printed = tmp_path / "printed.toml"
    printed.write_text(captured.out)
    assert load_config(printed).backup.increments_per_cycle == 8


def test_missing_files_mean_the_old_defaults_and_are_reported(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _old_dir(home)  # an empty ~/.glacierclient
    cfg = tmp_path / "config.toml"
    assert _run("--config", str(cfg), "config", "import-legacy", str(old)) == 0
    config = load_config(cfg)
    assert config.backup.sources == ()
    assert isinstance(config.store, LocalStoreConfig)  # the default vault is a placeholder
    assert config.retention.max_store_size is None  # the 1 MiB default is not carried over
    out = capsys.readouterr().out
    for name in ("localbackupoptions.json", "glacierbackupoptions.json"):
        assert f"missing: {name}" in out
    assert "missing: includeexclude.json: includes -> backup.sources = []" in out
    # GlacierBackup.py's default key encrypted the old archives: saved, with a warning
    assert (tmp_path / "legacy-passphrase").read_text() == DEFAULT_GLACIER_KEY + "\n"
    assert "built-in default, which is public" in out


def test_an_empty_key_and_a_separate_local_key(home: Path, tmp_path: Path) -> None:
    old = _old_dir(
        home,
        includeexclude={"includes": [], "excludes": []},
        localbackupoptions={"localEncryptionKey": "inner"},
        glacierbackupoptions={"localEncryptionKey": ""},
    )
    cfg = tmp_path / "config.toml"
    assert _run("--config", str(cfg), "config", "import-legacy", str(old)) == 0
    assert not (tmp_path / "legacy-passphrase").exists()
    assert (tmp_path / "legacy-inner-passphrase").read_text() == "inner\n"


def test_the_include_file_named_in_local_options_is_used(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "elsewhere.json"
    spec.write_text(json.dumps({"includes": ["/srv/data"], "excludes": ["*.iso"]}))
    old = _old_dir(home, localbackupoptions={"includeexcludefilespec": str(spec)})
    settings = read_legacy(old, home)
    assert settings.includes == ("/srv/data",) and settings.excludes == ("*.iso",)


def test_malformed_json_is_a_usage_error(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _old_dir(home)
    (old / "glacierbackupoptions.json").write_text("{not json")
    cfg = tmp_path / "config.toml"
    assert _run("--config", str(cfg), "config", "import-legacy", str(old)) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert not cfg.exists()

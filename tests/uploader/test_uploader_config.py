"""The [encryption], [store] and [upload] sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from localbackup.configkit import ConfigError, Section
from uploader.config import (
    CONNECT_TIMEOUT,
    PASSPHRASE_ENV,
    READ_TIMEOUT,
    EncryptionConfig,
    GlacierStoreConfig,
    LocalStoreConfig,
    S3StoreConfig,
    UploadConfig,
    encryption_config,
    store_config,
    upload_config,
)
from uploader.crypto import generate_identity
from uploader.stores import open_store
from uploader.stores.local import LocalStore
from uploader.stores.s3 import S3Store

FILE = Path("/etc/gb/config.toml")
RECIPIENT = generate_identity().recipient().to_string()


def sec(name: str, **data: object) -> Section:
    return Section(data, name, FILE)


def test_recipients_are_parsed() -> None:
    cfg = encryption_config(sec("encryption", recipients=[RECIPIENT]), environ={})
    assert cfg == EncryptionConfig(mode="age", recipients=(RECIPIENT,))
    assert cfg.enabled


def test_a_passphrase_file_is_resolved_from_the_config_folder() -> None:
    cfg = encryption_config(sec("encryption", passphrase_file="pass.txt"), environ={})
    assert cfg.passphrase_file == Path("/etc/gb/pass.txt")


def test_the_passphrase_may_come_from_the_environment() -> None:
    cfg = encryption_config(sec("encryption"), environ={PASSPHRASE_ENV: "s3cret"})
    assert cfg.passphrase_env == PASSPHRASE_ENV
    assert "s3cret" not in repr(cfg)


def test_mode_none_is_allowed_but_not_with_keys() -> None:
    assert not encryption_config(sec("encryption", mode="none"), environ={}).enabled
    with pytest.raises(ConfigError, match=r"encryption\.recipients: cannot be combined"):
        encryption_config(sec("encryption", mode="none", recipients=[RECIPIENT]), environ={})


def test_a_missing_key_is_an_error_only_when_something_uploads() -> None:
    cfg = encryption_config(sec("encryption"), environ={})  # a local backup needs no key
    with pytest.raises(
        ConfigError, match=r"/etc/gb/config\.toml: encryption\.recipients: no encryption key"
    ):
        cfg.require_key()
    encryption_config(sec("encryption", mode="none"), environ={}).require_key()


async def test_store_timeouts_are_read_and_reach_the_aws_client(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = store_config(sec("store", type="s3", bucket="b-1", connect_timeout="2s", read_timeout=30))
    assert isinstance(cfg, S3StoreConfig)
    assert (cfg.connect_timeout, cfg.read_timeout) == (2.0, 30.0)
    defaults = store_config(sec("store", type="glacier", vault="v", region="us-east-1"))
    assert isinstance(defaults, GlacierStoreConfig)
    assert (defaults.connect_timeout, defaults.read_timeout) == (CONNECT_TIMEOUT, READ_TIMEOUT)
    for config, attempts in ((cfg, 6), (defaults, 5)):
        async with open_store(config) as store:
            client_config = store.client.meta.config  # type: ignore[attr-defined]
            assert client_config.connect_timeout == config.connect_timeout
            assert client_config.read_timeout == config.read_timeout
            assert client_config.retries["total_max_attempts"] == attempts
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # the user's AWS setting, as in the AWS CLI
        async with open_store(config) as store:
            retries = store.client.meta.config.retries  # type: ignore[attr-defined]
            assert retries["total_max_attempts"] == 2
        monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    with pytest.raises(ConfigError, match=r"store\.read_timeout: must be a positive duration"):
        store_config(sec("store", type="s3", bucket="b-1", read_timeout="0s"))
    with pytest.raises(ConfigError, match=r"store\.connect_timeout: applies to store type 's3'"):
        store_config(sec("store", type="local", path="/tmp/v", connect_timeout="5s"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"recipients": ["age1nope"]}, r"encryption\.recipients\[0\]: not an age recipient"),
        ({"recipients": [RECIPIENT], "passphrase_file": "p"}, r"encryption\.passphrase_file"),
        (
            {"recipient": [RECIPIENT]},
            r"encryption\.recipient: unknown key \(did you mean 'recipients'",
        ),
        ({"mode": "aes"}, r"encryption\.mode: must be one of"),
    ],
)
def test_encryption_errors_name_file_key_and_problem(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        encryption_config(sec("encryption", **data), environ={})


def test_local_store_defaults_to_the_xdg_data_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/data")
    assert store_config(sec("store")) == LocalStoreConfig(Path("/data/glacier-backup/vault"))


def test_s3_store_reads_all_its_keys() -> None:
    cfg = store_config(
        sec(
            "store",
            type="s3",
            bucket="my-backups",
            prefix="hosts/",
            storage_class="GLACIER_IR",
            region="eu-west-3",
            profile="backup",
            endpoint_url="https://s3.example.net",
        )
    )
    assert cfg == S3StoreConfig(
        "my-backups", "hosts/", "GLACIER_IR", "eu-west-3", "backup", "https://s3.example.net"
    )
    assert store_config(sec("store", type="s3", bucket="b-1")).storage_class == "DEEP_ARCHIVE"


def test_glacier_store_is_read_validated_and_opened() -> None:
    cfg = store_config(sec("store", type="glacier", vault="photos", region="us-east-1"))
    assert cfg == GlacierStoreConfig("photos", "-", "us-east-1")
    assert open_store(cfg).name == "glacier://us-east-1/-/photos"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "s3"}, r"store\.bucket: is required"),
        ({"type": "s3", "bucket": "Bad_Bucket"}, r"store\.bucket: not a valid"),
        ({"type": "s3", "bucket": "b-1", "storage_class": "COLD"}, r"store\.storage_class"),
        (
            {"type": "s3", "bucket": "b-1", "path": "/x"},
            r"store\.path: applies to store type 'local'",
        ),
        ({"type": "s3", "bucket": "b-1", "endpoint_url": "s3.local"}, r"store\.endpoint_url"),
        ({"type": "s3", "bucket": "b-1", "access_key": "AKIA"}, r"store\.access_key: unknown key"),
        ({"type": "glacier", "vault": "v", "account_id": "12"}, r"store\.account_id"),
        ({"type": "ftp"}, r"store\.type: must be one of"),
    ],
)
def test_store_errors_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        store_config(sec("store", **data))


def test_open_store_builds_the_configured_store() -> None:
    assert isinstance(open_store(LocalStoreConfig(Path("/v"))), LocalStore)
    s3 = open_store(S3StoreConfig("b-1", "p/"))
    assert isinstance(s3, S3Store) and s3.name == "s3://b-1/p/"
    assert s3.capabilities.needs_retrieval


def test_upload_section() -> None:
    assert upload_config(sec("upload")) == UploadConfig()
    assert upload_config(sec("upload", part_size="auto")).part_size is None
    assert upload_config(
        sec("upload", part_size="64MiB", concurrency=8, retries=2)
    ) == UploadConfig(64 << 20, 8, 2)
    assert upload_config(sec("upload", part_size=8 << 20)).part_size == 8 << 20


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"part_size": "1KiB"}, r"upload\.part_size: must be \"auto\""),
        ({"part_size": "lots"}, r"upload\.part_size: not a size"),
        ({"concurrency": 0}, r"upload\.concurrency: must be at least 1"),
        ({"retries": "3"}, r"upload\.retries: expected an integer"),
    ],
)
def test_upload_errors_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        upload_config(sec("upload", **data))

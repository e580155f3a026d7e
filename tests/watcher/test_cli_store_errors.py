"""No credentials, a missing bucket, a missing vault, an unreachable endpoint: ``restore``,
``prune`` and ``inventory`` (the real ``glacier-backup`` process, its TOML file and exit code)
fail with exit 1, name the problem and say how to fix it."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from emulators.glacier import Emulator
from tests.support.killpoints import glacier_backup, write_config
from tests.support.servers import free_port

NO_CREDENTIALS = "no AWS credentials found"
ALL = ["inventory", "prune", "restore"]
# prune reports a store it cannot reach the way inventory does (the same pass): those two ways
# of failing, the maintenance pass's and restore's, are what the other cases run through.
COMMANDS = ["inventory", "restore"]


def _run(config: Path, command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    extra = ["--to", str(config.parent / "out"), "--yes"] if command == "restore" else []
    return subprocess.run(
        glacier_backup(config, command, *extra),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=env,
    )


def _config(tmp_path: Path, store: dict[str, Any]) -> Path:
    return write_config(
        tmp_path / "config.toml",
        {
            "state_dir": tmp_path / "state",
            "backup": {"sources": [str(tmp_path)], "spool_dir": tmp_path / "spool", "host": "h"},
            "encryption": {"mode": "none"},
            "store": store,
        },
    )


def _without_credentials(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "HOME": str(tmp_path),
    }


@pytest.mark.parametrize("command", ALL)
def test_no_credentials(tmp_path: Path, moto_server: str, command: str) -> None:
    store = {"type": "s3", "bucket": "b-creds", "endpoint_url": moto_server, "region": "us-east-1"}
    r = _run(_config(tmp_path, store), command, _without_credentials(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert NO_CREDENTIALS in r.stderr
    assert "fix: no AWS credentials were found: export AWS_ACCESS_KEY_ID" in r.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_bucket(tmp_path: Path, moto_server: str, aws_env: None, command: str) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:12]}"
    store = {"type": "s3", "bucket": bucket, "endpoint_url": moto_server, "region": "us-east-1"}
    config = _config(tmp_path, store)
    r = _run(config, command, dict(os.environ))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "NoSuchBucket" in r.stderr
    assert f"fix: the bucket '{bucket}' does not exist" in r.stderr
    assert f"set store.bucket in {config} to an existing bucket" in r.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_vault(
    tmp_path: Path, glacier_emulator: Emulator, aws_env: None, command: str
) -> None:
    store = {
        "type": "glacier",
        "vault": f"missing-{uuid.uuid4().hex[:12]}",
        "endpoint_url": glacier_emulator.endpoint_url,
        "region": "us-east-1",
    }
    r = _run(_config(tmp_path, store), command, dict(os.environ))
    assert r.returncode == 1, r.stdout + r.stderr
    if command == "restore":  # nothing known yet: a vault is found only by an inventory
        assert "run 'glacier-backup inventory --request --wait'" in r.stderr
    else:
        assert "Vault not found" in r.stderr
        assert f"fix: the vault '{store['vault']}' does not exist in us-east-1" in r.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_endpoint(tmp_path: Path, aws_env: None, command: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = {"type": "s3", "bucket": "b-unreachable", "endpoint_url": endpoint}
    # One try per request (the user's AWS setting): botocore's backoff would only add time.
    env = os.environ | {"AWS_MAX_ATTEMPTS": "1"}
    r = _run(_config(tmp_path, store), command, env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f'Could not connect to the endpoint URL: "{endpoint}/' in r.stderr
    assert f"fix: the store did not answer ({endpoint}): check the network" in r.stderr

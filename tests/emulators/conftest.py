"""Fixtures for the Glacier emulator tests: one emulator process per session, real clients."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from emulators.glacier import Emulator, run_emulator

CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "AKIDEXAMPLE",
    "aws_secret_access_key": "secret",
}
_names = itertools.count()


def glacier_client(endpoint_url: str, *, max_attempts: int = 1, mode: str = "standard") -> Any:
    """A plain boto3 Glacier client on the endpoint (retries off unless asked)."""
    config = Config(
        retries={"mode": mode, "total_max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=10,
    )
    return boto3.client("glacier", endpoint_url=endpoint_url, config=config, **CREDENTIALS)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    zero = {"Expedited": 0.0, "Standard": 0.0, "Bulk": 0.0}
    with run_emulator(tmp_path_factory.mktemp("glacier-data"), tier_delays=zero) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _fresh_emulator_settings(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts with instant jobs, a 24 h output TTL, no faults, zero counters."""
    if "emulator" in request.fixturenames:
        emu: Emulator = request.getfixturevalue("emulator")
        emu.control.clear_faults()
        emu.control.set_tier_delays(Expedited=0, Standard=0, Bulk=0)
        emu.control.set_output_ttl(24 * 3600)
        emu.control.reset_stats()
    yield


@pytest.fixture
def glacier(emulator: Emulator) -> Any:
    return glacier_client(emulator.endpoint_url)


@pytest.fixture
def make_client(emulator: Emulator) -> Callable[..., Any]:
    def make(**kwargs: Any) -> Any:
        return glacier_client(emulator.endpoint_url, **kwargs)

    return make


@pytest.fixture
def vault_name() -> str:
    return f"vault-{next(_names)}-{time.monotonic_ns()}"


@pytest.fixture
def vault(glacier: Any, vault_name: str) -> str:
    glacier.create_vault(vaultName=vault_name)
    return vault_name


@pytest.fixture(scope="session")
def moto_endpoint(moto_server: str) -> str:
    """The suite's real moto server process, for the calls moto implements."""
    return moto_server


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic non-repeating test bytes."""
    return random.Random(seed).randbytes(size)


@pytest.fixture
def make_payload() -> Callable[..., bytes]:
    return payload


@pytest.fixture
def data_dir(emulator: Emulator) -> Path:
    return emulator.data_dir


@pytest.fixture
def client_for() -> Callable[..., Any]:
    """``glacier_client`` as a fixture, for tests that build clients on other endpoints."""
    return glacier_client

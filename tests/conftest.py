"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.servers import FAKE_AWS, moto_server_process


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A real moto server process for the whole session; yields its endpoint URL."""
    with moto_server_process() as url:
        yield url


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials through the standard chain (never in our config)."""
    for k, v in FAKE_AWS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def s3_proxy(moto_server: str) -> Iterator[FaultProxy]:
    """A fault proxy (tests/support/faultproxy.py) in front of the session's moto server:
    point a store's ``endpoint_url`` at ``s3_proxy.url`` and set faults on it."""
    with FaultProxy(moto_server) as proxy:
        yield proxy


@pytest.fixture(autouse=True)
def _no_leaked_emulator_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Faults planned on the session's Glacier emulator die with the test that planned them,
    passed or failed, so they can never fire in another test."""
    if "glacier_emulator" not in request.fixturenames:
        yield
        return
    control = request.getfixturevalue("glacier_emulator").control
    control.clear_faults()
    yield
    control.clear_faults()

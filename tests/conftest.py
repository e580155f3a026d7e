"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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

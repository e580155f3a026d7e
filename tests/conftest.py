"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.glacier import Emulator, run_emulator
from tests.support.faultproxy import FaultProxy
from tests.support.servers import FAKE_AWS, moto_server_process, seaweedfs_server_process
from tests.support.skips import SkipAudit, load_allowlist


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--skip-allowlist",
        metavar="FILE",
        help="fail the run if a test is skipped for a reason no entry of FILE matches",
    )


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("skip_allowlist")
    if path:
        config.pluginmanager.register(SkipAudit(load_allowlist(Path(path))), "skip-audit")


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
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


@pytest.fixture(scope="session")
def seaweedfs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real SeaweedFS server (``weed server -s3``) for the whole session; its S3 endpoint."""
    with seaweedfs_server_process(tmp_path_factory.mktemp("seaweedfs")) as url:
        yield url


@pytest.fixture(params=["moto", "seaweedfs"])
def s3_endpoint(request: pytest.FixtureRequest) -> str:
    """Each S3 server in turn (moto, SeaweedFS): its endpoint URL."""
    return str(request.getfixturevalue(f"{request.param}_server"))


@pytest.fixture(params=["moto", "seaweedfs"])
def s3_endpoint_for_restores(request: pytest.FixtureRequest) -> str:
    """:func:`s3_endpoint` for tests that restore from GLACIER / DEEP_ARCHIVE objects: moto
    restores them, SeaweedFS refuses restore requests (MethodNotAllowed) and the restore reads
    the object directly (issue 12 defect 8)."""
    return str(request.getfixturevalue(f"{request.param}_server"))


@pytest.fixture
def s3_proxy(moto_server: str) -> Iterator[FaultProxy]:
    """A fault proxy (tests/support/faultproxy.py) in front of the session's moto server:
    point a store's ``endpoint_url`` at ``s3_proxy.url`` and set faults on it."""
    with FaultProxy(moto_server) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def glacier_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One Glacier emulator process for the session (virtual clock, default job delays)."""
    with run_emulator(tmp_path_factory.mktemp("glacier-emulator")) as emu:
        yield emu


@pytest.fixture(scope="session")
def glacier_endpoint(glacier_emulator: Emulator) -> str:
    return glacier_emulator.endpoint_url


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

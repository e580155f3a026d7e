"""Which upload failures the service retries (RetryLater) and which file a marker under failed/."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from localbackup.formats import FormatError
from uploader.bundle import BundleError
from uploader.stores.base import (
    CredentialsRejected,
    PermanentStoreError,
    TransientStoreError,
    UploadNotFound,
)
from watcher.dispatch import _failure_reason, _retry_reason


@pytest.mark.parametrize(
    "exc",
    [
        TransientStoreError("network down"),
        UploadNotFound("no such upload"),
        sqlite3.OperationalError("database is locked"),
        PermissionError(13, "Permission denied", "/var/lib/glacier-backup/catalogue.sqlite3"),
        OSError(28, "No space left on device"),
    ],
)
def test_retried(exc: BaseException, tmp_path: Path) -> None:
    assert _retry_reason(exc, tmp_path / "cycle") is not None


@pytest.mark.parametrize(
    "exc",
    [
        BundleError("SHA-256 does not match"),
        FormatError("bad cycle.json"),
        PermanentStoreError("AccessDenied: nope"),
        ValueError("a bug"),
    ],
)
def test_failed(exc: BaseException, tmp_path: Path) -> None:
    assert _retry_reason(exc, tmp_path / "cycle") is None


def test_a_file_of_the_cycle_that_cannot_be_read_fails_it(tmp_path: Path) -> None:
    cycle = tmp_path / "cycle"
    cycle.mkdir()
    exc = FileNotFoundError(2, "No such file", str(cycle / "inc-0000.tar.zst"))
    assert _retry_reason(exc, cycle) is None


def test_auth_failures_say_so() -> None:
    reason = _failure_reason(CredentialsRejected("uploading: ExpiredTokenException: expired"))
    assert "credentials or permissions" in reason and "upload --retry-failed" in reason
    assert "credentials" not in _failure_reason(PermanentStoreError("bad request"))

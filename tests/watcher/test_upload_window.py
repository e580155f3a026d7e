"""``[upload] window`` as users meet it: ``upload``, ``upload --now``, ``status``, the service."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.support.receiver import http_receiver
from tests.watcher.service_harness import Project
from uploader.catalogue import Catalogue
from uploader.window import UploadWindow, local_now
from watcher.commands.status import upload_window
from watcher.config import load_config
from watcher.dispatch import Dispatcher, RetryLater
from watcher.outcomes import Outcomes


def _closed_window() -> tuple[str, datetime]:
    """A window that opens two hours from now (local time), and when that is."""
    now = local_now()
    start, end = now + timedelta(hours=2), now + timedelta(hours=3)
    return f"{start:%H:%M}-{end:%H:%M}", start.replace(second=0, microsecond=0)


def test_upload_waits_for_its_window_and_now_overrides_it(tmp_path: Path) -> None:
    window, opens = _closed_window()
    p = Project(tmp_path, increments=0, upload=f'window = "{window}"')
    (p.src / "a.txt").write_text("alpha\n")
    p.backup()

    r = p.run("upload")
    assert r.returncode == 3, r.stderr
    assert f"outside the upload window {window}" in r.stdout
    assert f"opens at {opens:%Y-%m-%d %H:%M}" in r.stdout and "--now" in r.stdout
    assert not list(p.vault.rglob("*.tar.age"))

    status = p.run("status")
    # local time with its zone (issue 13: times people read carry their zone)
    assert f"upload window {window}: closed; opens {opens:%Y-%m-%d %H:%M %Z}" in status.stdout

    r = p.run("upload", "--now")
    assert r.returncode == 0, r.stderr
    assert len(list(p.vault.rglob("*.tar.age"))) == 1


async def test_the_service_waits_until_the_window_opens(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0, upload='window = "01:00-07:00"')
    (p.src / "a.txt").write_text("alpha\n")
    p.backup()
    (marker,) = p.markers.glob("cycle-*.json")
    noon = datetime(2026, 3, 2, 12, 0).astimezone()
    with http_receiver() as rx:
        p.config.write_text(
            p.config.read_text() + f'[notify]\nurl = "{rx.url}"\non = ["success"]\n'
        )
        config = load_config(p.config)
        outcomes = Outcomes(config)
        with Catalogue.in_state_dir(config.state_dir) as catalogue:
            dispatcher = Dispatcher(
                lambda: config, catalogue, clock=lambda: noon, outcomes=outcomes
            )
            with pytest.raises(RetryLater) as wait:
                await dispatcher.handle(marker)
            assert not wait.value.failing  # waiting for the window is not a failure
            expected = UploadWindow.parse("01:00-07:00").seconds_until_open(noon)
            assert wait.value.after == pytest.approx(expected) == 13 * 3600
            assert catalogue.uploads() == [] and marker.exists()  # nothing started

            inside = noon.replace(hour=2)
            dispatcher = Dispatcher(
                lambda: config, catalogue, clock=lambda: inside, outcomes=outcomes
            )
            outcome = await dispatcher.handle(marker)
        outcomes.close()
        got = [r.json() for r in rx.wait_for(2)]
    assert outcome.action == "uploaded"
    # the service says when an upload starts and ends (nothing while it waited)
    assert [g["event"] for g in got] == ["upload_started", "upload_done"]
    assert got[1]["sizes"]["archive"] > 0 and got[1]["cycle"] in marker.name
    assert upload_window(config, noon) == {
        "window": "01:00-07:00",
        "open": False,
        "closes_at": None,
        "next_open": (noon + timedelta(hours=13)).isoformat(),
    }
    assert upload_window(config, inside)["closes_at"] == inside.replace(hour=7).isoformat()

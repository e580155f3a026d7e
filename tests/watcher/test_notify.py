"""Notifications: a local HTTP receiver and a real command take what ``[notify]`` sends."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from localbackup.configkit import ConfigError, Section
from tests.support.receiver import http_receiver
from tests.watcher.service_harness import Project
from watcher.dispatch import RetryLater
from watcher.notify.config import NotifyConfig, UrlStyle, notify_config
from watcher.notify.delivery import Notifier, mask_url, ping_url
from watcher.notify.events import Category, Notice, NoticeEvent

SECRET = "3f2a9c1e-5b7d-4e8f-a0b1-c2d3e4f5a6b7"
T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


def _notice(event: NoticeEvent, **kw: object) -> Notice:
    return Notice(event, "laptop", T0, **kw)  # type: ignore[arg-type]


def _config(url: str | None = None, **kw: object) -> NotifyConfig:
    section = Section({"url": url, **kw} if url else dict(kw), "notify", Path("/c.toml"))
    return notify_config(section)


def test_a_failure_is_posted_as_one_json_event() -> None:
    with http_receiver() as rx:
        notifier = Notifier(_config(rx.url + "/hook"))
        notifier.send(
            _notice(
                NoticeEvent.UPLOAD_FAILED,
                cycle="20260301T000000Z",
                sizes={"archive": 1234},
                error="the bucket is gone",
            )
        )
        notifier.close()
        (req,) = rx.wait_for(1)
    assert req.path == "/hook"
    assert req.headers["Content-Type"] == "application/json"
    doc = req.json()
    assert doc["event"] == "upload_failed"
    assert doc["result"] == "failure" and doc["category"] == "failure"
    assert doc["host"] == "laptop" and doc["cycle"] == "20260301T000000Z"
    assert doc["sizes"] == {"archive": 1234}
    assert doc["error"] == "the bucket is gone"
    assert datetime.fromisoformat(doc["time"]) == T0


def test_successes_are_not_sent_unless_asked_for() -> None:
    with http_receiver() as rx:
        quiet = Notifier(_config(rx.url))
        quiet.send(_notice(NoticeEvent.BACKUP_DONE))
        quiet.send(_notice(NoticeEvent.ARCHIVE_MISSING, error="absent"))
        quiet.close()
        loud = Notifier(_config(rx.url, on=["success"]))
        loud.send(_notice(NoticeEvent.BACKUP_DONE))
        loud.send(_notice(NoticeEvent.UPLOAD_FAILED))  # "failure" is not on this time
        loud.close()
        got = [r.json()["event"] for r in rx.wait_for(2)]
    assert got == ["archive_missing", "backup_done"]


def test_healthchecks_style_pings_start_success_fail_and_log() -> None:
    with http_receiver() as rx:
        cfg = _config(f"{rx.url}/ping/{SECRET}", url_style="healthchecks")
        assert cfg.on == frozenset(Category) - {Category.START}  # everything, by default
        notifier = Notifier(cfg)
        for event in (
            NoticeEvent.BACKUP_STARTED,
            NoticeEvent.BACKUP_DONE,
            NoticeEvent.UPLOAD_FAILED,
            NoticeEvent.RETRIEVAL_READY,
        ):
            notifier.send(_notice(event))
        notifier.close()
        paths = [r.path for r in rx.wait_for(4)]
    base = f"/ping/{SECRET}"
    assert paths == [f"{base}/start", base, f"{base}/fail", f"{base}/log"]


def test_a_refused_delivery_is_retried_then_delivered() -> None:
    waits: list[float] = []
    with http_receiver() as rx, capture_logs() as logs:
        rx.answers = [503, 500]
        notifier = Notifier(_config(rx.url), sleep=waits.append, backoff=(2.0, 10.0))
        notifier.send(_notice(NoticeEvent.BACKUP_FAILED, error="disk full"))
        notifier.close()
        got = rx.wait_for(3)
    assert [r.json()["event"] for r in got] == ["backup_failed"] * 3
    assert waits == [2.0, 10.0]
    assert [e["event"] for e in logs if e["event"].startswith("notify.")] == [
        "notify.retry",
        "notify.retry",
        "notify.sent",
    ]


def test_an_undeliverable_notification_is_logged_without_its_secret() -> None:
    with http_receiver() as rx, capture_logs() as logs:
        rx.answers = [500, 500, 500]
        url = f"http://user:pw@127.0.0.1:{rx.url.rsplit(':', 1)[1]}/ping/{SECRET}?key=tok3n"
        notifier = Notifier(_config(url), sleep=lambda _: None)
        notifier.send(_notice(NoticeEvent.UPLOAD_FAILED))  # returns at once
        notifier.close()
        assert len(rx.wait_for(3)) == 3
    (gave_up,) = [e for e in logs if e["event"] == "notify.undeliverable"]
    assert gave_up["attempts"] == 3 and "HTTP 500" in gave_up["error"]
    assert gave_up["target"] == "http://***@127.0.0.1:" + rx.url.rsplit(":", 1)[1] + "/***?***"
    text = json.dumps(logs)
    for secret in (SECRET, "tok3n", "pw"):
        assert secret not in text


def test_a_closed_port_is_tried_a_few_times_and_given_up() -> None:
    with http_receiver() as rx:
        url = rx.url  # the receiver stops: nothing listens there any more
    with capture_logs() as logs:
        notifier = Notifier(_config(url), sleep=lambda _: None)
        notifier.send(_notice(NoticeEvent.UPLOAD_FAILED))
        notifier.close()
    (gave_up,) = [e for e in logs if e["event"] == "notify.undeliverable"]
    assert gave_up["attempts"] == 3 and "refused" in gave_up["error"].lower()


def test_an_unexpected_delivery_error_is_logged_and_the_command_still_runs(
    tmp_path: Path,
) -> None:
    """A URL urllib refuses (made past the config check) ends that delivery only: logged
    without its secret, and the command still gets the event."""
    out = tmp_path / "got.json"
    config = NotifyConfig(
        url=f"http://127.0.0.1:1/{SECRET} x",
        command=(sys.executable, "-c", f"import sys; open({str(out)!r}, 'w').write('ok')"),
    )
    with capture_logs() as logs:
        notifier = Notifier(config, sleep=lambda _: None)
        notifier.send(_notice(NoticeEvent.UPLOAD_FAILED))
        notifier.close()
    gave_up = [e for e in logs if e["event"] == "notify.undeliverable"]
    assert len(gave_up) == 1 and gave_up[0]["target"] == "http://127.0.0.1:1/***"
    assert SECRET not in json.dumps(logs)
    assert out.read_text() == "ok"


def test_mask_url_keeps_scheme_and_host_only() -> None:
    assert mask_url(f"https://hc-ping.com/{SECRET}") == "https://hc-ping.com/***"
    assert (
        mask_url("https://a:b@example.org:8443/x/y?t=1") == "https://***@example.org:8443/***?***"
    )
    assert mask_url("https://example.org") == "https://example.org"
    assert ping_url("https://h/p/uuid?rid=1", Category.FAILURE) == "https://h/p/uuid/fail?rid=1"


def test_the_command_gets_the_event_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    script = tmp_path / "hook.py"
    script.write_text(
        "import os, sys, pathlib\n"
        f"pathlib.Path({str(out)!r}).write_text(os.environ['GLACIER_BACKUP_EVENT'] + "
        "'\\n' + sys.stdin.read())\n"
    )
    notifier = Notifier(_config(command=[sys.executable, str(script)]))
    notifier.send(_notice(NoticeEvent.VERIFY_FAILED, error="flipped byte"))
    notifier.close()
    event, body = out.read_text().split("\n", 1)
    assert event == "verify_failed"
    assert json.loads(body)["error"] == "flipped byte"


def test_a_failing_command_is_retried_then_logged(tmp_path: Path) -> None:
    with capture_logs() as logs:
        cmd = f"{sys.executable} -c 'import sys; sys.exit(4)'"
        notifier = Notifier(_config(command=cmd), sleep=lambda _: None)
        notifier.send(_notice(NoticeEvent.UPLOAD_FAILED))
        notifier.close()
    (gave_up,) = [e for e in logs if e["event"] == "notify.undeliverable"]
    assert gave_up["target"] == f"command {Path(sys.executable).name}"
    assert "exit status 4" in gave_up["error"]


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ({"url": "ftp://x"}, "notify.url", "http(s)"),
        ({"url_style": "healthchecks"}, "notify.url_style", "needs url"),
        ({"url": "http://x", "on": ["failure", "sucess"]}, "notify.on[1]", "must be one of"),
        ({"command": ""}, "notify.command", "is empty"),
        ({"url": "http://x", "retrying_after": "soon"}, "notify.retrying_after", "not a duration"),
        ({"url": "http://h/topic/übersicht"}, "notify.url", "ASCII without spaces"),
        ({"url": "http://h/SEC RET?t=1"}, "notify.url", "ASCII without spaces"),
        ({"url": "http://h:abc/p"}, "notify.url", "port that is not a number"),
        ({"url": "http://h/p#x"}, "notify.url", "#fragment"),
    ],
)
def test_bad_notify_config_names_the_key(table: dict[str, object], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        notify_config(Section(table, "notify", Path("/etc/gb.toml")))
    assert err.value.key == key and message in err.value.message
    assert str(err.value).startswith("/etc/gb.toml: ")


def test_the_url_is_not_in_the_config_repr() -> None:
    cfg = _config(f"https://hc-ping.com/{SECRET}", url_style="healthchecks")
    assert cfg.url_style is UrlStyle.HEALTHCHECKS
    assert SECRET not in repr(cfg)


def _with(project: Project, section: str, text: str) -> None:
    config = project.config.read_text()
    if f"[{section}]\n" in config:
        config = config.replace(f"[{section}]\n", f"[{section}]\n{text}\n", 1)
    else:
        config += f"[{section}]\n{text}\n"
    project.config.write_text(config)


def test_backup_and_upload_notify_through_the_real_commands(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0)
    (p.src / "a.txt").write_text("alpha\n")
    with http_receiver() as rx:
        _with(p, "notify", f'url = "{rx.url}"\non = ["success", "failure"]')
        p.backup()
        r = p.run("upload")
        assert r.returncode == 0, r.stderr
        got = [q.json() for q in rx.wait_for(4)]
    assert [g["event"] for g in got] == [
        "backup_started",
        "backup_done",
        "upload_started",
        "upload_done",
    ]
    done = got[1]
    assert done["sizes"]["written"] > 0 and done["duration_seconds"] >= 0
    upload = got[3]
    assert upload["cycle"] == done["cycle"] and upload["sizes"]["archive"] > 0
    assert upload["details"]["key"].endswith(".tar.age")


def test_a_failed_upload_notifies_and_the_command_still_exits_on_time(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=0, store='type = "local"\npath = "/proc/no-such-vault"')
    (p.src / "a.txt").write_text("alpha\n")
    with http_receiver() as rx:
        _with(p, "notify", f'url = "{rx.url}"')
        p.backup()
        r = p.run("upload")
        assert r.returncode == 1
        (failed,) = [q.json() for q in rx.wait_for(1)]
    assert failed["event"] == "upload_failed" and failed["error"]


def test_a_backup_that_cannot_write_its_spool_notifies(tmp_path: Path) -> None:
    """The failure is said even though it cannot be recorded in the spool."""
    p = Project(tmp_path, increments=0)
    (p.src / "a.txt").write_text("alpha\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    text = p.config.read_text().replace(
        f'spool_dir = "{p.spool}"', f'spool_dir = "{blocker}/spool"'
    )
    p.config.write_text(text)
    with http_receiver() as rx:
        _with(p, "notify", f'url = "{rx.url}"')
        r = p.run("backup")
        assert r.returncode == 1
        (failed,) = [q.json() for q in rx.wait_for(1)]
    assert failed["event"] == "backup_failed" and "Not a directory" in failed["error"]


def test_the_service_notifies_once_when_an_upload_keeps_failing(tmp_path: Path) -> None:
    from watcher.config import load_config
    from watcher.service import Service

    p = Project(tmp_path)
    with http_receiver() as rx:
        _with(p, "notify", f'url = "{rx.url}"\nretrying_after = "1h"')
        now = [T0]
        service = Service(load_config(p.config), clock=lambda: now[0])
        marker = p.markers / "cycle-testhost-20260301T000000Z.json"
        failing = RetryLater("transient store error: 503", cycle="20260301T000000Z")

        async def attempts() -> None:
            await service._still_retrying(marker, failing)  # the first failure
            now[0] = T0 + timedelta(minutes=59)
            await service._still_retrying(marker, failing)  # not long enough yet
            now[0] = T0 + timedelta(hours=2)
            await service._still_retrying(marker, failing)  # notified
            now[0] = T0 + timedelta(hours=5)
            await service._still_retrying(marker, failing)  # once only

        import asyncio

        asyncio.run(attempts())
        service.outcomes.close()
        (got,) = rx.wait_for(1)
    doc = got.json()
    assert doc["event"] == "upload_retrying" and doc["cycle"] == "20260301T000000Z"
    assert doc["duration_seconds"] == 7200 and "503" in doc["error"]
    assert len(rx.requests) == 1

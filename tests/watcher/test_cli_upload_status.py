"""What ``upload``, ``status`` and ``cycles`` say is true (issue 13), through the real
``glacier-backup`` process: failures of a manual upload are recorded and cleared by a later
success, failed markers are retried on request, pruned cycles are not "waiting"."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import boto3

from tests.watcher.service_harness import Project

NO_AWS = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def env_without_credentials(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | NO_AWS | {"HOME": str(tmp_path)}


def s3_project(tmp_path: Path, endpoint: str, bucket: str, **kw: object) -> Project:
    store = (
        f'type = "s3"\nbucket = "{bucket}"\nstorage_class = "STANDARD"\n'
        f'endpoint_url = "{endpoint}"\nregion = "us-east-1"'
    )
    return Project(tmp_path, increments=0, store=store, **kw)  # type: ignore[arg-type]


def new_bucket(endpoint: str) -> str:
    name = f"gb-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def test_a_failed_manual_upload_is_recorded_until_it_succeeds(
    tmp_path: Path, moto_server: str, aws_env: None
) -> None:
    p = s3_project(tmp_path, moto_server, new_bucket(moto_server))
    (p.src / "a.txt").write_text("a\n")
    p.backup()
    assert p.status()["markers"]["pending"] == 1

    r = p.run("upload", env=env_without_credentials(tmp_path))
    assert r.returncode == 1
    assert r.stderr.count("glacier-backup: error: upload of") == 1  # printed once
    assert "no AWS credentials were found" in r.stderr
    assert "AWS_ACCESS_KEY_ID" in r.stderr and "store.profile" in r.stderr
    failure = p.status()["last_failure"]
    assert failure is not None and "CredentialsMissing" in failure["reason"]

    r = p.run("upload")  # credentials back (the test's fake ones)
    assert r.returncode == 0, r.stderr
    assert " sent in " in r.stdout and "/s)" in r.stdout  # the summary: size, time, rate
    st = p.status()
    assert st["last_failure"] is None  # cleared by the success of the same cycle
    assert st["markers"] == {"pending": 0, "failed": 0, "quarantined": 0}  # filed under done/
    assert len(list((p.markers / "done").iterdir())) == 1
    assert st["last_success"] is not None and st["sealed_waiting"] == []


def test_a_missing_bucket_names_the_bucket_and_the_key(
    tmp_path: Path, moto_server: str, aws_env: None
) -> None:
    p = s3_project(tmp_path, moto_server, "no-such-bucket-here")
    (p.src / "a.txt").write_text("a\n")
    p.backup()
    r = p.run("upload")
    assert r.returncode == 1
    assert "the bucket 'no-such-bucket-here' does not exist" in r.stderr
    assert f"store.bucket in {p.config}" in r.stderr


def test_a_marker_the_service_failed_is_retried_on_request(
    tmp_path: Path, moto_server: str, aws_env: None
) -> None:
    bucket = new_bucket(moto_server)
    p = s3_project(tmp_path, moto_server, "not-created-yet")
    (p.src / "a.txt").write_text("a\n")
    p.backup()
    svc = p.start_service()
    try:
        svc.wait_for(lambda e: e["event"] == "watch.marker_failed")
    finally:
        assert svc.stop() == 0
    st = p.status()
    (failed,) = st["upload_failed"]
    assert "ContainerNotFound" in failed["reason"] and st["sealed_waiting"] == []

    r = p.run("upload")  # a plain upload leaves it to the user
    assert r.returncode == 0 and "upload --retry-failed" in r.stdout
    r = p.run("upload", "--retry-failed")  # asked before the cause is fixed
    assert r.returncode == 1 and "the service retries it" in r.stderr
    st = p.status()  # the marker is back where the service takes it
    assert st["markers"] == {"pending": 1, "failed": 0, "quarantined": 0}
    assert "ContainerNotFound" in st["last_failure"]["reason"]

    p.config.write_text(p.config.read_text().replace("not-created-yet", bucket))  # fixed
    r = p.run("upload", "--retry-failed")
    assert r.returncode == 0, r.stderr
    st = p.status()
    assert st["upload_failed"] == [] and st["last_failure"] is None
    assert st["markers"] == {"pending": 0, "failed": 0, "quarantined": 0}


def test_status_and_cycles_after_pruning(tmp_path: Path) -> None:
    """Pruned cycles still in the spool are not "waiting for upload" (upload would not send
    them), and cycles says what became of each one."""
    p = Project(tmp_path, increments=0)
    with p.config.open("a") as f:
        f.write('[retention]\nmax_store_size = "1KiB"\nkeep_last = 1\n')
    for i in range(3):
        (p.src / "f.bin").write_bytes(os.urandom(2000) + bytes([i]))
        p.backup()
    assert p.run("upload").returncode == 0
    r = p.run("prune")
    assert r.returncode == 3, r.stdout + r.stderr  # still over the cap: said, exit 3
    assert "still OVER BUDGET" in r.stdout and "kept by keep rules" in r.stdout
    st = p.status()
    assert st["sealed_waiting"] == [] and st["store_usage"]["archives"] == 1
    assert p.run("upload").stdout.startswith("nothing to upload")
    cycles = json.loads(p.run("cycles", "--json").stdout)["cycles"]
    assert [(c["state"], c["location"]) for c in cycles] == [
        ("pruned", "spool"),
        ("pruned", "spool"),
        ("stored", "both"),
    ]
    stored = cycles[-1]
    assert stored["archive"]["storage_class"] == "LOCAL"
    assert stored["archive"]["size"] == sum(f.stat().st_size for f in p.vault.rglob("*.tar.age"))
    (inc,) = stored["increments"]
    assert inc["kind"] == "full" and inc["size"] > 0 and inc["finished_at"].endswith("+00:00")
    text = p.run("cycles").stdout
    assert "pruned" in text and "1 increment," in text and "archive " in text


def test_cycles_open_sealed_missing(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=1)
    (p.src / "a").write_text("a")
    p.backup()
    p.backup()  # sealed
    (p.src / "a").write_text("b")
    p.backup()  # a new open cycle
    states = [c["state"] for c in json.loads(p.run("cycles", "--json").stdout)["cycles"]]
    assert states == ["sealed", "open"]
    assert p.run("upload").returncode == 0
    (archive,) = p.vault.rglob("*.tar.age")  # (beside it: its metadata object)
    archive.unlink()  # lost from the store
    assert p.run("inventory").returncode in (0, 3)
    cycles = json.loads(p.run("cycles", "--json").stdout)["cycles"]
    assert [c["state"] for c in cycles] == ["MISSING", "open"]
    assert len(cycles[0]["increments"]) == 2 and cycles[1]["location"] == "spool"
    assert cycles[0]["location"] == "spool"  # the store lost it: only the spool has it
    assert p.status()["store_usage"] == {"archives": 0, "bytes": 0}


def test_status_in_words(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=7)
    text = p.config.read_text().replace(
        "increments_per_cycle = 7", 'increments_per_cycle = 7\nfull_every = "7d"'
    )
    p.config.write_text(text)
    (p.src / "a").write_text("a")
    p.backup()
    p.backup()
    r = p.run("status")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "last backup:" in out and ": ok, cycle" in out
    assert (
        "increment 1 of 7 done" in out and "seals after increment 7 or at the first backup" in out
    )
    assert "when the full is 1w old" in out
    assert "waiting for upload: 0 sealed cycles" in out and "store usage: 0 archives, 0 B" in out
    zone = time.strftime("%Z")
    assert zone in out  # local times carry their zone
    every = p.status()["open_cycle"]["full_every"]
    assert every == 7 * 86400 and isinstance(every, int)  # whole seconds, not 604800.0


def test_an_interrupted_upload_says_how_to_resume_and_resumes(
    tmp_path: Path, moto_server: str, aws_env: None
) -> None:
    p = s3_project(
        tmp_path, moto_server, new_bucket(moto_server), upload='part_size = "5MiB"\nconcurrency = 1'
    )
    (p.src / "big.bin").write_bytes(os.urandom(16 << 20))
    p.backup()
    proc = subprocess.Popen(
        p.cmd("upload"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    db = p.root / "state" / "catalogue.sqlite3"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
                try:
                    if c.execute("SELECT COUNT(*) FROM upload_parts").fetchone()[0] >= 1:
                        break
                except sqlite3.OperationalError:
                    pass
        time.sleep(0.02)
    assert proc.poll() is None, "the upload ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err and "run the same command again to resume" in err
    assert "Traceback" not in err
    r = p.run("upload")
    assert r.returncode == 0, r.stderr
    assert "parts resumed from an earlier attempt" in r.stdout


def test_cycles_of_one_second_are_listed_in_the_order_they_were_made() -> None:
    from localbackup.formats import cycle_order

    made = ["20251231T235959Z", "20260101T000000Z", "20260101T000000Z-2", "20260101T000000Z-10"]
    assert sorted(reversed(made), key=cycle_order) == made

"""``[metrics] textfile``: the real commands write a file node_exporter's collector can read."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from localbackup.configkit import ConfigError, Section
from tests.watcher.service_harness import Project
from watcher.metrics import metrics_config


def _samples(path: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            labels = {k: v for k, v in s.labels.items() if k not in ("host", "store")}
            out[(s.name, frozenset(labels.items()))] = s.value
    return out


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[("glacier_backup_" + name, frozenset(labels.items()))]


def _project(tmp_path: Path, **kw: object) -> tuple[Project, Path]:
    p = Project(tmp_path, increments=0, **kw)  # type: ignore[arg-type]
    prom = tmp_path / "textfile" / "glacier-backup.prom"
    text = p.config.read_text()
    text += f'[metrics]\ntextfile = "{prom}"\n[retention]\nmax_store_size = "10MiB"\n'
    p.config.write_text(text)
    return p, prom


def test_backup_upload_and_maintenance_are_reported(tmp_path: Path) -> None:
    p, prom = _project(tmp_path)
    (p.src / "a.txt").write_text("alpha\n" * 1000)
    before = time.time()
    p.backup()
    first = _samples(prom)
    assert _value(first, "last_success_timestamp_seconds", operation="backup") >= before - 1
    assert _value(first, "last_bytes", operation="backup") > 0
    assert _value(first, "cycles_waiting") == 1
    assert _value(first, "store_archives") == 0

    r = p.run("upload")
    assert r.returncode == 0, r.stderr
    r = p.run("prune", "--dry-run")
    assert r.returncode in (0, 3), r.stderr
    s = _samples(prom)
    status = p.status()
    archive = status["last_success"]
    assert _value(s, "last_bytes", operation="upload") == archive["size"]
    assert _value(s, "last_duration_seconds", operation="upload") > 0
    assert _value(s, "last_success_timestamp_seconds", operation="maintenance") >= before
    assert _value(s, "store_archives") == 1
    assert _value(s, "store_bytes") == archive["size"]
    assert _value(s, "cycles_waiting") == 0
    assert _value(s, "uploads_in_progress") == 0
    assert _value(s, "archives_missing") == 0
    assert _value(s, "store_budget_bytes") == 10 * 1024 * 1024
    assert _value(s, "store_budget_used_ratio") == pytest.approx(archive["size"] / (10 << 20))
    # every series names the host and the store (several configurations on one machine)
    family = next(
        f
        for f in text_string_to_metric_families(prom.read_text())
        if f.name == "glacier_backup_store_archives"
    )
    assert family.samples[0].labels == {"host": status["host"], "store": status["store"]}
    # written under a temporary name and renamed: nothing else is left in the directory
    assert [f.name for f in prom.parent.iterdir()] == [prom.name]


def test_a_missing_archive_and_a_failed_backup_show(tmp_path: Path) -> None:
    p, prom = _project(tmp_path)
    (p.src / "a.txt").write_text("alpha\n")
    p.backup()
    assert p.run("upload").returncode == 0
    for f in p.vault.rglob("*.tar.age"):
        f.unlink()  # the archive is lost from the store
    r = p.run("inventory")
    assert r.returncode in (0, 3), r.stderr
    assert _value(_samples(prom), "archives_missing") == 1

    hook = f'before = ["{sys.executable} -c \\"import sys; sys.exit(2)\\""]\n'
    p.config.write_text(p.config.read_text().replace("[backup]\n", "[backup]\n" + hook, 1))
    started = time.time()
    assert p.run("backup").returncode == 1
    s = _samples(prom)
    assert _value(s, "last_failure_timestamp_seconds", operation="backup") >= started - 1
    assert _value(s, "last_success_timestamp_seconds", operation="backup") < started


def test_the_textfile_must_be_one_the_collector_reads() -> None:
    with pytest.raises(ConfigError) as err:
        metrics_config(Section({"textfile": "/var/lib/node/gb.txt"}, "metrics", None))
    assert err.value.key == "metrics.textfile" and ".prom" in err.value.message


def test_a_maintenance_pass_that_cannot_reach_the_store_is_a_failure(tmp_path: Path) -> None:
    """An alert on "maintenance has not succeeded lately" must fire while the store is gone."""
    p, prom = _project(tmp_path)
    (p.src / "a.txt").write_text("alpha\n")
    p.backup()
    assert p.run("upload").returncode == 0
    p.vault.rename(tmp_path / "vault-unmounted")  # the store's disk is gone
    started = time.time()
    r = p.run("inventory")
    assert r.returncode == 1, r.stderr
    s = _samples(prom)
    assert _value(s, "last_failure_timestamp_seconds", operation="maintenance") >= started - 1
    with pytest.raises(KeyError):  # never succeeded
        _value(s, "last_success_timestamp_seconds", operation="maintenance")

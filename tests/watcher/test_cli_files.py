"""``files``: every backed-up version of a path from local indexes, also after the spool copy
of the cycle is gone (the catalogue keeps the indexes of uploaded cycles)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.watcher.service_harness import Project


def files(p: Project, *words: str) -> list[dict]:
    r = p.run("files", "--json", *words)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_versions_and_deletions_survive_local_pruning(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=2)
    (p.src / "report.txt").write_text("v1")
    (p.src / "old.txt").write_text("to be deleted")
    p.backup()
    (p.src / "report.txt").write_text("version two")
    (p.src / "old.txt").unlink()
    p.backup()
    p.backup()  # third increment: the cycle is sealed
    assert p.run("upload").returncode == 0
    (cycle,) = (p.spool / "cycles").iterdir()
    shutil.rmtree(cycle)  # as keep_local_cycles would, after the upload

    (report,) = files(p, "report.txt")
    assert report["path"] == f"{p.src}/report.txt"
    assert [(v["increment"], v["size"]) for v in report["versions"]] == [(0, 2), (1, 11)]
    assert all(v["cycle"] == cycle.name for v in report["versions"])
    (old,) = files(p, "old.*")
    assert old["deleted_in"] == [{"cycle": cycle.name, "increment": 1}]
    listing = p.run("files", "--json", "latest")
    entries = {e["path"] for e in json.loads(listing.stdout)["entries"]}
    assert f"{p.src}/report.txt" in entries and f"{p.src}/old.txt" not in entries


def test_open_cycle_in_the_spool_is_searched_too(tmp_path: Path) -> None:
    p = Project(tmp_path, increments=7)
    (p.src / "a.txt").write_text("a")
    p.backup()
    (hit,) = files(p, "a.txt")
    assert hit["versions"][0]["increment"] == 0
    none = p.run("files", "nothing-like-this")
    assert none.returncode == 1 and "no backed-up path matches 'nothing-like-this'" in none.stderr
    r = p.run("files", "20991231T000000Z")
    assert r.returncode == 2 and "no indexes of cycle" in r.stderr

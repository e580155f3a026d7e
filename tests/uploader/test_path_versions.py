"""The catalogue's path search tables: what ``files PATTERN`` shows from them is what a scan of
every stored index shows, for real cycles (edits, deletions, renames, type changes, several
sources), with a prefilter or without, and after the migration that backfills them."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from localbackup.config import BackupConfig
from localbackup.index import IndexFormatError
from localbackup.indexstream import StreamedIndex
from localbackup.spool import Spool
from localbackup.step import run_backup_step
from tests.localbackup.test_extract import T0, make_history
from uploader.catalogue import (
    Catalogue,
    StoredIndex,
    remember_cycle_indexes,
    searchable_cycles,
    stored_indexes,
)
from uploader.catalogue.schema import MIGRATIONS
from uploader.catalogue.spans import span_events, spans_by_dict
from watcher.commands.files import PathHistory, _scan, catalogued, search

PATTERNS = ["*", "*.txt", "b.txt", "docs", "*/docs/*", "moved", "pair?", "c.bin", "nothing"]


def _by_scan(cat: Catalogue, pattern: str) -> list[PathHistory]:
    """The reference: every stored index decoded and matched, entry by entry."""
    by_cycle: dict[str, list[StoredIndex]] = {}
    for s in stored_indexes(cat):
        by_cycle.setdefault(s.cycle_id, []).append(s)
    histories: dict[str, PathHistory] = {}
    for cycle_id, incs in sorted(by_cycle.items()):
        _scan(cycle_id, incs, pattern, histories)
    return [histories[k] for k in sorted(histories)]


def _as_rows(histories: list[PathHistory]) -> list[tuple[object, ...]]:
    return [(h.path, h.versions, h.deleted_in) for h in histories]


def _two_cycles(tmp_path: Path) -> Catalogue:
    h = make_history(tmp_path)
    for i, per_cycle in ((4, 4), (5, 1), (6, 1)):  # seal the first cycle; a second of 2
        cfg = BackupConfig(
            sources=(h.src,), spool_dir=tmp_path / "spool", increments_per_cycle=per_cycle, host="h"
        )
        (h.src / f"later{i}.txt").write_text(f"{i}\n")
        if i == 6:
            (h.src / "later4.txt").unlink()
        run_backup_step(cfg, tmp_path / "markers", now=T0 + timedelta(days=1, hours=i))
    cat = Catalogue(tmp_path / "state" / "catalogue.sqlite3")
    for c in Spool(cfg.spool_dir).cycles():
        if (c.path / "cycle.json").exists():
            remember_cycle_indexes(cat, c.path)
    return cat


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_tables_answer_what_a_scan_of_every_index_answers(tmp_path: Path, pattern: str) -> None:
    cat = _two_cycles(tmp_path)
    expected = _by_scan(cat, pattern)
    got = list(search({}, cat, catalogued(cat), pattern))
    assert _as_rows(got) == _as_rows(expected)
    if pattern in {"*", "*.txt", "b.txt"}:
        assert expected  # the comparison is not vacuous
    deleted = [d for h in expected for d in h.deleted_in]
    if pattern == "*":
        assert deleted and len({v["cycle"] for h in expected for v in h.versions}) == 2


def test_remembering_a_cycle_again_changes_nothing(tmp_path: Path) -> None:
    cat = _two_cycles(tmp_path)
    before = cat.query("SELECT * FROM path_versions ORDER BY path, cycle, first")
    for c in Spool(tmp_path / "spool").cycles():
        if (c.path / "cycle.json").exists():
            remember_cycle_indexes(cat, c.path)
    assert cat.query("SELECT * FROM path_versions ORDER BY path, cycle, first") == before


def test_indexes_out_of_archive_order_give_the_same_spans(tmp_path: Path) -> None:
    h = make_history(tmp_path)
    files = [h.cycle.path / m.index.name for m in h.cycle.manifests()]

    def opener(f: Path, scramble: bool) -> Callable[[], list[tuple[bytes, tuple[int, ...]]]]:
        def open_() -> list[tuple[bytes, tuple[int, ...]]]:
            records = list(StreamedIndex(f).iter_records())
            return sorted(records, key=lambda r: r[0][::-1]) if scramble else records

        return open_

    ordered = list(span_events([opener(f, False) for f in files]))
    assert ordered
    assert sorted(map(repr, spans_by_dict([opener(f, True) for f in files]))) == sorted(
        map(repr, ordered)
    )


def test_the_migration_backfills_the_tables_from_stored_indexes(tmp_path: Path) -> None:
    h = make_history(tmp_path)
    db_file = tmp_path / "old.sqlite3"
    db = sqlite3.connect(db_file)  # a catalogue as the version before the tables left it
    before = next(i for i, m in enumerate(MIGRATIONS) if "CREATE TABLE path_versions" in str(m))
    for migration in MIGRATIONS[:before]:
        for step in migration:
            assert isinstance(step, str)
            db.execute(step)
    for m in h.cycle.manifests():
        db.execute(
            "INSERT INTO cycle_indexes VALUES (?, ?, ?, ?, ?, ?)",
            ("h", h.cycle.cycle_id, m.number, m.kind, "2026-01-01T00:00:00.000000Z",
             (h.cycle.path / m.index.name).read_bytes()),
        )  # fmt: skip
    db.execute(f"PRAGMA user_version = {before}")
    db.commit()
    db.close()
    cat = Catalogue(db_file)
    assert cat.schema_version == len(MIGRATIONS)
    assert cat.query("SELECT count(*) FROM path_versions")[0][0] > 0
    for pattern in ("*", "docs"):
        assert _as_rows(list(search({}, cat, catalogued(cat), pattern))) == _as_rows(
            _by_scan(cat, pattern)
        )


def test_a_cycle_whose_index_cannot_be_read_is_left_out_of_the_tables_not_failed(
    tmp_path: Path,
) -> None:
    cat = _two_cycles(tmp_path)
    before = _as_rows(list(search({}, cat, catalogued(cat), "*")))
    sealed = next(c for c in Spool(tmp_path / "spool").cycles() if (c.path / "cycle.json").exists())
    damaged = tmp_path / "damaged"
    shutil.copytree(sealed.path, damaged)
    (damaged / sealed.manifests()[-1].index.name).write_bytes(b"not an index")
    remember_cycle_indexes(cat, damaged)  # an upload that succeeded is not failed by it
    assert sealed.cycle_id not in searchable_cycles(cat)
    assert cat.query(
        "SELECT count(*) FROM path_versions v JOIN version_cycles c ON c.id = v.cycle"
        " WHERE c.cycle_id = ?",
        (sealed.cycle_id,),
    ) == [(0,)]
    # the stored copies were taken as they are; `files` reads them itself, and says so
    with pytest.raises(IndexFormatError):
        list(search({}, cat, catalogued(cat), "*"))
    remember_cycle_indexes(cat, sealed.path)  # the good copy again: back in the tables
    assert _as_rows(list(search({}, cat, catalogued(cat), "*"))) == before


def test_a_cycle_missing_from_the_tables_is_searched_in_its_stored_indexes(
    tmp_path: Path,
) -> None:
    cat = _two_cycles(tmp_path)
    expected = _by_scan(cat, "*.txt")
    first = min(searchable_cycles(cat))
    with cat.transaction() as db:
        db.execute("DELETE FROM version_cycles WHERE cycle_id = ?", (first,))
    assert first not in searchable_cycles(cat)
    assert expected and _as_rows(list(search({}, cat, catalogued(cat), "*.txt"))) == _as_rows(
        expected
    )

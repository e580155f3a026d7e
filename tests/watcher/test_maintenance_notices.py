"""What maintenance passes announce: MISSING archives, over budget, retrievals ready (once)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from tests.localbackup.test_extract import make_history
from tests.support.receiver import Receiver, http_receiver
from tests.uploader.test_restore_cold import (
    _uploaded,
    config_dict,
)
from uploader.catalogue import Catalogue
from watcher.config import AppConfig, config_from_dict
from watcher.maintenance_loop import maintenance_pass
from watcher.outcomes import Outcomes


def _pass(config: AppConfig) -> None:
    outcomes = Outcomes(config)
    with Catalogue.in_state_dir(config.state_dir) as catalogue:
        asyncio.run(maintenance_pass(config, catalogue, datetime.now(UTC), outcomes=outcomes))
    outcomes.close()


def _events(rx: Receiver) -> list[str]:
    return [r.json()["event"] for r in rx.requests]


def test_missing_and_over_budget_are_announced_once(tmp_path: Path) -> None:
    h = make_history(tmp_path)
    vault = tmp_path / "vault"
    with http_receiver() as rx:
        raw = config_dict(tmp_path, h.src, {"type": "local", "path": str(vault)})
        raw["notify"] = {"url": rx.url, "on": ["missing", "over_budget"]}
        raw["retention"] = {"max_store_size": 1, "keep_last": 1}
        config = _uploaded(tmp_path, h, {"type": "local", "path": str(vault)})
        config = config_from_dict(raw, tmp_path / "config.toml")

        _pass(config)  # the only archive is kept by keep_last: over budget
        _pass(config)  # still over budget: not announced again
        rx.wait_for(1)
        (archive,) = vault.rglob("*.tar.age")
        archive.unlink()
        _pass(config)
        _pass(config)
        got = rx.wait_for(2)
    assert _events(rx) == ["over_budget", "archive_missing"]
    over, missing = (r.json() for r in got)
    assert over["sizes"]["budget"] == 1 and over["sizes"]["shortfall"] > 0
    assert "OVER BUDGET" in over["message"]
    assert missing["details"]["key"].endswith(".tar.age") and missing["cycle"]
    assert "absent from the listing" in missing["error"]

"""A retrieval that becomes ready is announced by the service's maintenance pass, once."""

from __future__ import annotations

from pathlib import Path

from emulators.glacier import Emulator
from tests.localbackup.test_extract import make_history
from tests.support.receiver import http_receiver
from tests.uploader.test_restore_cold import HOUR, _uploaded, _vault_store, config_dict, run_cli
from tests.watcher.test_maintenance_notices import _pass
from uploader import catalogue as cr
from uploader.catalogue import Catalogue, RetrievalState
from watcher.config import config_from_dict


def test_a_retrieval_that_became_ready_is_announced(
    tmp_path: Path, glacier_emulator: Emulator, aws_env: None
) -> None:
    emu = glacier_emulator
    h = make_history(tmp_path)
    store = _vault_store(emu)
    config = _uploaded(tmp_path, h, store)
    out = tmp_path / "out"
    assert run_cli(config, "restore", "--to", str(out), "--yes") == 0  # requested, not ready
    with http_receiver() as rx:
        raw = config_dict(tmp_path, h.src, store)
        raw["notify"] = {"url": rx.url, "on": ["retrieval_ready"]}
        config = config_from_dict(raw, tmp_path / "config.toml")
        _pass(config)
        assert rx.requests == []  # still in progress
        emu.control.advance(4 * HOUR + 60)
        _pass(config)
        _pass(config)  # announced once
        (ready,) = rx.wait_for(1)
    doc = ready.json()
    assert doc["event"] == "retrieval_ready" and doc["result"] == "info"
    assert "--resume" in doc["message"] and doc["details"]["tier"] == "Standard"
    assert len(rx.requests) == 1
    with Catalogue.in_state_dir(config.state_dir) as catalogue:
        (record,) = catalogue.query("SELECT store, key FROM retrievals")
        found = cr.find_retrieval(catalogue, record[0], record[1])
        assert found is not None and found.state is RetrievalState.READY
    # the restore goes on from there
    assert run_cli(config, "restore", "--to", str(out), "--resume") == 0
    assert out.is_dir()

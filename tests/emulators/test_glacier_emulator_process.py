"""The emulator as a process: command line, banner, SIGTERM, and bounded memory on big archives."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.utils import calculate_tree_hash

from emulators.glacier import Emulator, combine_tree_hashes, run_emulator

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1])  # type: ignore[index]


def test_command_line_prints_banner_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.glacier",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert re.fullmatch(r"listening on http://127\.0\.0\.1:\d+\n", line)
        assert (tmp_path / "data" / "archives").is_dir()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()  # type: ignore[union-attr]


def test_64_mib_archive_streams_through_disk_with_bounded_memory(
    tmp_path: Path, client_for: Callable[..., Any], make_payload: Callable[..., bytes]
) -> None:
    with run_emulator(tmp_path / "data", tier_delays={"Standard": 0}) as emulator:
        glacier = client_for(emulator.endpoint_url)
        glacier.create_vault(vaultName="big")
        baseline = rss_kib(emulator.pid) * 1024
        _upload_and_retrieve_64_mib(glacier, emulator, "big", make_payload)
        # Peak resident memory grows by far less than the archive size.
        assert rss_kib(emulator.pid) * 1024 - baseline < 16 * MIB


def _upload_and_retrieve_64_mib(
    glacier: Any, emulator: Emulator, vault: str, make_payload: Callable[..., bytes]
) -> None:
    part_size = 8 * MIB
    total = 64 * MIB
    upload_id = glacier.initiate_multipart_upload(vaultName=vault, partSize=str(part_size))[
        "uploadId"
    ]
    hashes = []
    whole = io.BytesIO()
    for first in range(0, total, part_size):
        chunk = make_payload(part_size, seed=first)
        whole.write(chunk)
        hashes.append(
            glacier.upload_multipart_part(
                vaultName=vault,
                uploadId=upload_id,
                range=f"bytes {first}-{first + part_size - 1}/*",
                body=chunk,
            )["checksum"]
        )
    done = glacier.complete_multipart_upload(
        vaultName=vault,
        uploadId=upload_id,
        archiveSize=str(total),
        checksum=combine_tree_hashes(hashes),
    )
    archive_path = emulator.data_dir / "archives" / done["archiveId"]
    assert archive_path.stat().st_size == total
    job = glacier.initiate_job(
        vaultName=vault, jobParameters={"Type": "archive-retrieval", "ArchiveId": done["archiveId"]}
    )["jobId"]
    out = glacier.get_job_output(vaultName=vault, jobId=job)
    received = io.BytesIO()
    for chunk in out["body"].iter_chunks(MIB):
        received.write(chunk)
    assert received.getvalue() == whole.getvalue()
    assert out["checksum"] == calculate_tree_hash(io.BytesIO(received.getvalue()))


def test_parallel_clients_do_not_block_each_other(
    make_client: Callable[..., Any], emulator: Emulator, vault: str
) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            client = make_client()
            for _ in range(5):
                client.upload_archive(vaultName=vault, body=os.urandom(1000 + i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert emulator.control.state()["vaults"][vault]["archives"] == 20

"""Run one upload slowly, to be killed with SIGKILL by test_resume.py.

usage: resume_child.py CYCLE_DIR STATE_DIR STORE_SPEC RECIPIENT
STORE_SPEC is ``local:<dir>``, ``s3:<endpoint>|<bucket>`` or ``glacier:<endpoint>|<vault>``.
Parts are 64 KiB, or the store's smallest part size if it takes no 64 KiB parts (Glacier: 1 MiB).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from conftest import s3_store
from glacier_support import glacier_store

from uploader.catalogue import Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.multipart import MultipartOptions
from uploader.stores.base import PartInfo, Store
from uploader.stores.local import LocalStore
from uploader.upload import upload_cycle

PART = 64 * 1024


class Slow:
    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def upload_part(self, *args: Any) -> PartInfo:
        part = await self.inner.upload_part(*args)
        await asyncio.sleep(0.15)
        return part


def open_spec(spec: str) -> Store:
    kind, _, rest = spec.partition(":")
    if kind == "local":
        return LocalStore(Path(rest))
    endpoint, name = rest.split("|")
    if kind == "glacier":
        return glacier_store(endpoint, name)
    return s3_store(endpoint, name)


async def main() -> None:
    cycle_dir, state_dir, spec, recipient = sys.argv[1:5]
    async with open_spec(spec) as store:
        caps = store.capabilities
        part = PART if caps.check_part_size(PART) is None else caps.min_part_size
        await upload_cycle(
            Path(cycle_dir),
            Slow(store),  # type: ignore[arg-type]
            Catalogue.in_state_dir(Path(state_dir)),
            EncryptionConfig(recipients=(recipient,)),
            UploadConfig(part_size=part),
            options=MultipartOptions(concurrency=2, retries=0),
        )


if __name__ == "__main__":
    asyncio.run(main())

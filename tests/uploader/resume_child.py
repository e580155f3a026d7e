"""Run one upload, to be killed with SIGKILL by test_resume.py at a pause point.

usage: resume_child.py CYCLE_DIR STATE_DIR STORE_SPEC RECIPIENT
STORE_SPEC is what ``conftest.store_spec`` gives (``local:<dir>``, ``s3:<endpoint>|<bucket>``,
``seaweedfs:...``, ``glacier:<endpoint>|<vault>``). Parts are 64 KiB, or the store's smallest
part size if it takes no 64 KiB parts. The parent sets GLACIER_BACKUP_TEST_PAUSE.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import open_spec
from store_access import part_size_for

from uploader.catalogue import Catalogue
from uploader.config import EncryptionConfig, UploadConfig
from uploader.multipart import MultipartOptions
from uploader.upload import upload_cycle

PART = 64 * 1024


async def main() -> None:
    cycle_dir, state_dir, spec, recipient = sys.argv[1:5]
    async with open_spec(spec) as store:
        await upload_cycle(
            Path(cycle_dir),
            store,
            Catalogue.in_state_dir(Path(state_dir)),
            EncryptionConfig(recipients=(recipient,)),
            UploadConfig(part_size=part_size_for(store, PART)),
            options=MultipartOptions(concurrency=2, retries=0),
        )


if __name__ == "__main__":
    asyncio.run(main())

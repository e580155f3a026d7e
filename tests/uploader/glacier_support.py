"""The Glacier store in tests: an emulator process (``emulators.glacier``), a fresh vault each."""

from __future__ import annotations

import uuid
from typing import Any

from uploader.stores.glacier.store import GlacierStore

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def glacier_client(endpoint: str) -> Any:
    """A plain boto3 Glacier client, to set up vaults and to go below the store."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 1})
    return boto3.client(
        "glacier", endpoint_url=endpoint, region_name=REGION, config=config, **CREDENTIALS
    )


def make_vault(endpoint: str) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    glacier_client(endpoint).create_vault(vaultName=name)
    return name


def glacier_store(endpoint: str, vault: str | None = None, max_attempts: int = 2) -> GlacierStore:
    """A store on ``vault`` (a new one if None); credentials come from the environment."""
    return GlacierStore(
        vault or make_vault(endpoint),
        region=REGION,
        endpoint_url=endpoint,
        max_attempts=max_attempts,
    )

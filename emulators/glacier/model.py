"""Records the emulator keeps in memory; the bytes themselves live on disk (see storage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .vault_lock import VaultLock


@dataclass(frozen=True, slots=True)
class Archive:
    """An immutable stored archive."""

    archive_id: str
    vault: str
    description: str
    created: float
    size: int
    tree_hash: str
    leaves: tuple[bytes, ...]  # 1 MiB leaf digests, for ranged tree hashes
    path: Path


@dataclass(frozen=True, slots=True)
class Inventory:
    """A vault inventory snapshot, as of its date."""

    date: float
    archives: tuple[Archive, ...]


@dataclass(slots=True)
class Vault:
    """A vault; archive counts reported to clients come from ``inventory``."""

    name: str
    created: float
    archives: dict[str, Archive] = field(default_factory=dict)
    inventory: Inventory | None = None
    written_since_inventory: bool = False
    deleted_archives: dict[str, float] = field(default_factory=dict)  # id -> deletion time
    lock: VaultLock | None = None  # Vault Lock policy (vault_lock.py)


@dataclass(frozen=True, slots=True)
class Part:
    """One received multipart part."""

    first: int
    size: int
    tree_hash: str
    leaves: tuple[bytes, ...]
    path: Path

    @property
    def last(self) -> int:
        """Inclusive last byte offset in the archive."""
        return self.first + self.size - 1


@dataclass(slots=True)
class Upload:
    """An open multipart upload."""

    upload_id: str
    vault: str
    description: str
    part_size: int
    created: float
    parts: dict[int, Part] = field(default_factory=dict)


@dataclass(slots=True)
class Job:
    """An archive- or inventory-retrieval job; status is derived from the clock."""

    job_id: str
    vault: str
    action: str  # "ArchiveRetrieval" | "InventoryRetrieval"
    description: str | None
    tier: str
    created: float
    completes_at: float
    sns_topic: str | None = None
    archive: Archive | None = None
    archive_id: str | None = None
    first: int = 0
    last: int = -1
    output_path: Path | None = None
    output_size: int = 0
    fail_reason: str | None = None  # set when the job cannot succeed
    inventory_format: str = "JSON"
    inventory_params: dict[str, str | None] = field(default_factory=dict)

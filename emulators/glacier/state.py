"""The emulator's whole state: configuration, clock, registries and counters."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .clock import VirtualClock
from .errors import GlacierError, not_found, vault_not_found
from .faults import FaultPlan
from .model import Archive, Inventory, Job, Upload, Vault
from .storage import Storage
from .treehash import leaf_digests, reduce_digests

TIERS = ("Expedited", "Standard", "Bulk")
# Typical AWS completion times (seconds): Expedited 1-5 min, Standard 3-5 h, Bulk 5-12 h.
DEFAULT_TIER_DELAYS: dict[str, float] = {
    "Expedited": 300.0,
    "Standard": 4 * 3600.0,
    "Bulk": 12 * 3600.0,
}
DEFAULT_OUTPUT_TTL = 24 * 3600.0


def new_archive_id() -> str:
    """An opaque 138-character URL-safe id, like AWS's (it may start with ``-``)."""
    return secrets.token_urlsafe(103)


def new_long_id() -> str:
    """An opaque 92-character id, the length of AWS job and upload ids."""
    return secrets.token_urlsafe(69)


@dataclass(slots=True)
class Stats:
    """Counters tests read through the control API."""

    requests: Counter[str] = field(default_factory=Counter)
    faults_injected: Counter[str] = field(default_factory=Counter)
    part_uploads_received: int = 0


class EmulatorState:
    """Everything one emulator process knows; handlers reach it through the app."""

    def __init__(
        self,
        data_dir: Path,
        *,
        account_id: str = "123456789012",
        region: str = "us-east-1",
        tier_delays: dict[str, float] | None = None,
        output_ttl: float = DEFAULT_OUTPUT_TTL,
        clock: VirtualClock | None = None,
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.clock = clock or VirtualClock()
        self.storage = Storage(data_dir)
        self.tier_delays = dict(DEFAULT_TIER_DELAYS)
        self.tier_delays.update(tier_delays or {})
        self.output_ttl = output_ttl
        self.vaults: dict[str, Vault] = {}
        self.archive_vault: dict[str, str] = {}  # archive id -> vault name, incl. deleted ones
        self.uploads: dict[str, Upload] = {}
        self.completed_uploads: dict[str, str] = {}  # upload id -> archive id
        self.aborted_uploads: set[str] = set()
        self.jobs: dict[str, Job] = {}
        self.stats = Stats()
        self.faults = FaultPlan()
        self.stalled = 0  # requests held by a "stall" fault right now
        self._release: asyncio.Event | None = None

    async def hold_until_released(self) -> None:
        """Hold a request (a "stall" fault: a network that hangs) until the control API
        releases the held requests."""
        if self._release is None:
            self._release = asyncio.Event()
        release = self._release
        self.stalled += 1
        try:
            await release.wait()
        finally:
            self.stalled -= 1

    def release_stalled(self) -> None:
        """Let every held request go on."""
        if self._release is not None:
            self._release.set()
            self._release = None

    # -- naming -----------------------------------------------------------------------
    def vault_arn(self, name: str) -> str:
        """The ARN AWS gives a vault."""
        return f"arn:aws:glacier:{self.region}:{self.account_id}:vaults/{name}"

    def check_account(self, account: str) -> None:
        """Accept ``-`` or the emulated account id, as AWS does."""
        if account not in ("-", self.account_id):
            raise GlacierError(
                "AccessDeniedException",
                f"Access denied for account {account}",
                status=403,
            )

    def vault(self, name: str) -> Vault:
        """The named vault or AWS's 404."""
        vault = self.vaults.get(name)
        if vault is None:
            raise vault_not_found(self.vault_arn(name))
        return vault

    def upload(self, vault: Vault, upload_id: str) -> Upload:
        """An open multipart upload of this vault or AWS's 404."""
        upload = self.uploads.get(upload_id)
        if upload is None or upload.vault != vault.name:
            raise not_found(f"The upload ID was not found: {upload_id}")
        return upload

    # -- inventory --------------------------------------------------------------------
    def refresh_inventory(self, name: str) -> Inventory:
        """Take a new inventory snapshot, as AWS's daily pass does.

        Like AWS, a vault with no change since its last inventory keeps the old date.
        """
        vault = self.vault(name)
        if vault.inventory is not None and not vault.written_since_inventory:
            return vault.inventory
        ordered = sorted(vault.archives.values(), key=lambda a: (a.created, a.archive_id))
        vault.inventory = Inventory(date=self.clock.now(), archives=tuple(ordered))
        vault.written_since_inventory = False
        return vault.inventory

    # -- jobs -------------------------------------------------------------------------
    def job_status(self, job: Job) -> str:
        """``InProgress``, ``Succeeded`` or ``Failed`` at the current virtual time."""
        if self.clock.now() < job.completes_at:
            return "InProgress"
        return "Failed" if self.job_failure(job) else "Succeeded"

    def job_failure(self, job: Job) -> str | None:
        """Why a finished job failed, if it did."""
        if job.fail_reason is not None:
            return job.fail_reason
        if job.archive_id is not None:
            deleted = self.vaults[job.vault].deleted_archives.get(job.archive_id)
            if deleted is not None and deleted <= job.completes_at:
                return "The archive was deleted before the job completed."
        return None

    def expire_jobs(self) -> None:
        """Forget jobs whose output lifetime has passed (AWS: at least 24 h)."""
        now = self.clock.now()
        for job_id in [
            j.job_id for j in self.jobs.values() if now >= j.completes_at + self.output_ttl
        ]:
            del self.jobs[job_id]
            self.storage.remove_job(job_id)

    def job(self, vault: Vault, job_id: str) -> Job:
        """A live job of this vault or AWS's 404."""
        self.expire_jobs()
        job = self.jobs.get(job_id)
        if job is None or job.vault != vault.name:
            raise not_found(f"The job ID was not found: {job_id}")
        return job

    def damage_archive(self, vault_name: str, archive_id: str, truncate: int) -> Archive:
        """Storage-side damage, for tests: the archive now holds only its first ``truncate``
        bytes (size and tree hash follow, so the next inventory reports them)."""
        vault = self.vault(vault_name)
        old = vault.archives.get(archive_id)
        if old is None:
            raise not_found(f"Archive not found: {archive_id}")
        with open(old.path, "r+b") as f:
            f.truncate(truncate)
        data = old.path.read_bytes()
        leaves = tuple(leaf_digests(data))
        new = Archive(
            archive_id=archive_id,
            vault=vault_name,
            description=old.description,
            created=old.created,
            size=len(data),
            tree_hash=reduce_digests(leaves).hex(),
            leaves=leaves,
            path=old.path,
        )
        vault.archives[archive_id] = new
        vault.written_since_inventory = True
        return new

    def add_archive(self, archive: Archive) -> None:
        """Register a newly stored archive; it counts as a write to its vault."""
        vault = self.vaults[archive.vault]
        vault.archives[archive.archive_id] = archive
        vault.written_since_inventory = True
        self.archive_vault[archive.archive_id] = archive.vault

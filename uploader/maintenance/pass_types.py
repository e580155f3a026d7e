"""What one maintenance pass is told to do (:class:`MaintenanceConfig`) and what it reports
(:class:`MaintenanceReport`); the pass itself is :func:`uploader.maintenance.run_maintenance`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from localbackup.configkit import DAY
from uploader.maintenance.inventory_plan import InventorySettings
from uploader.maintenance.retention import RetentionConfig

if TYPE_CHECKING:
    from uploader.maintenance.metadata_upkeep import MetadataUpkeep
    from uploader.maintenance.prune import PrunePlan
    from uploader.maintenance.reconcile import Reconciliation
    from uploader.stores import StoreError


@dataclass(frozen=True, slots=True)
class MaintenanceConfig:
    """What one maintenance pass does and with which rules."""

    retention: RetentionConfig
    storage_class: str  # uploader.maintenance.prune.storage_class_for(store config)
    host: str
    inventory: InventorySettings = field(default_factory=InventorySettings)
    grace: float = DAY  # inventory lag: what changed this long before an inventory is not judged
    dry_run: bool = False
    prune: bool = True
    request_inventory: bool = False  # ask for an inventory now if no job is in flight
    next_upload_size: int = 0
    # Multipart uploads unknown to the catalogue are aborted once this old (a concurrent upload
    # process records its upload within seconds; see uploader.maintenance.orphans).
    orphan_grace: float = DAY
    sweep_orphans: bool = True
    # Called with the prune plan before anything is deleted (the CLI prints every decision
    # and its estimated early-deletion fee first: deleting is what costs money).
    on_plan: Callable[[PrunePlan], None] | None = None
    # How missing metadata objects are sent again (None: they are only flagged).
    metadata: MetadataUpkeep | None = None


@dataclass(slots=True)
class MaintenanceReport:
    """What one maintenance pass found and did."""

    store: str
    inventory_status: str = ""
    reconciliation: Reconciliation | None = None
    plan: PrunePlan | None = None
    deleted: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    jobs_in_flight: int = 0
    orphans_aborted: list[str] = field(default_factory=list)  # "<key> <upload id>"
    metadata_sent: list[str] = field(default_factory=list)  # metadata objects sent again
    metadata_deleted: list[str] = field(default_factory=list)  # with their pruned archives
    deleted_again: list[str] = field(default_factory=list)  # keys still listed, deleted again
    # Why the pass could not learn what the store holds (credentials, no such bucket or vault,
    # no answer): the store error itself, for the command to say what to fix.
    failure: StoreError | None = None

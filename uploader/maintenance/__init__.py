"""Maintenance: keep the catalogue in step with the store, and the store under its budget.

Pure planners (no I/O, no clock: ``now`` is passed in) and one executor that carries out their
decisions: :mod:`.inventory_plan` (Glacier inventory jobs), :mod:`.reconcile` (catalogue vs
listing), :mod:`.prune` (retention rules and the size budget), :mod:`.orphans` (stray multipart
uploads), and :mod:`.executor` (:func:`run_maintenance`, one pass), whose Glacier inventory
jobs :mod:`.inventory_pass` advances and whose metadata objects :mod:`.metadata_upkeep` keeps
in step. :mod:`.retention` is the ``[retention]`` config section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from localbackup.lazyfront import lazy_front

if TYPE_CHECKING:
    from uploader.maintenance.executor import run_maintenance
    from uploader.maintenance.inventory_pass import advance_inventory
    from uploader.maintenance.inventory_plan import InventorySettings, pending_jobs, plan_inventory
    from uploader.maintenance.metadata_upkeep import MetadataUpkeep
    from uploader.maintenance.orphans import plan_orphan_aborts
    from uploader.maintenance.pass_types import MaintenanceConfig, MaintenanceReport
    from uploader.maintenance.prune import (
        MIN_STORAGE_DAYS,
        PRICE_PER_GB_MONTH,
        Decision,
        PrunePlan,
        PrunePolicy,
        early_deletion_fee,
        may_upload,
        plan_prune,
        storage_class_for,
    )
    from uploader.maintenance.reconcile import (
        ListedArchive,
        Listing,
        ReconcileKind,
        Reconciliation,
        reconcile,
    )
    from uploader.maintenance.retention import RetentionConfig, retention_config
else:
    __getattr__ = lazy_front(
        __name__,
        {
            ".executor": ("run_maintenance",),
            ".pass_types": ("MaintenanceConfig", "MaintenanceReport"),
            ".inventory_pass": ("advance_inventory",),
            ".inventory_plan": (
                "InventorySettings",
                "pending_jobs",
                "plan_inventory",
            ),
            ".metadata_upkeep": ("MetadataUpkeep",),
            ".orphans": ("plan_orphan_aborts",),
            ".prune": (
                "MIN_STORAGE_DAYS",
                "PRICE_PER_GB_MONTH",
                "Decision",
                "PrunePlan",
                "PrunePolicy",
                "early_deletion_fee",
                "may_upload",
                "plan_prune",
                "storage_class_for",
            ),
            ".reconcile": (
                "ListedArchive",
                "Listing",
                "ReconcileKind",
                "Reconciliation",
                "reconcile",
            ),
            ".retention": (
                "RetentionConfig",
                "retention_config",
            ),
        },
    )

__all__ = [
    "MIN_STORAGE_DAYS",
    "PRICE_PER_GB_MONTH",
    "Decision",
    "InventorySettings",
    "ListedArchive",
    "Listing",
    "MaintenanceConfig",
    "MaintenanceReport",
    "MetadataUpkeep",
    "PrunePlan",
    "PrunePolicy",
    "ReconcileKind",
    "Reconciliation",
    "RetentionConfig",
    "advance_inventory",
    "early_deletion_fee",
    "may_upload",
    "pending_jobs",
    "plan_inventory",
    "plan_orphan_aborts",
    "plan_prune",
    "reconcile",
    "retention_config",
    "run_maintenance",
    "storage_class_for",
]

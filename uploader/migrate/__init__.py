"""Migrate: move this host's archives out of a Glacier vault into another store, ciphertext
unchanged, verified on both sides, resumable at any point.

The front of the package: :func:`migrate` with its :class:`MigrateRequest` and
:class:`MigrateSetup`, :class:`MigrateOutcome`, :class:`MigrateRefused`, and
:func:`migration_lock`.

Inside: :mod:`.plan` (pure: which archives, daily batches, which sources may go),
:mod:`.quote` (pure: costs and waits), :mod:`.source` (the vault's inventory),
:mod:`.stream` (the job output as the multipart driver's payload, range by range),
:mod:`.transfer` (one archive: upload, verify, record), :mod:`.report` (what a run says) and
:mod:`.run` (the use case). The catalogue's tables are :mod:`uploader.catalogue.migrations`.
"""

from __future__ import annotations

from uploader.migrate.lock import MigrationLocked, migration_lock
from uploader.migrate.run import (
    MigrateOutcome,
    MigrateRefused,
    MigrateRequest,
    MigrateSetup,
    migrate,
)

__all__ = [
    "MigrateOutcome",
    "MigrateRefused",
    "MigrateRequest",
    "MigrateSetup",
    "MigrationLocked",
    "migrate",
    "migration_lock",
]

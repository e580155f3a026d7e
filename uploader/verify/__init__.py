"""``verify``: are the archives in the store still what was uploaded?

Without a retrieval (:mod:`.in_store`): every archive is compared with what its store reports
about it — S3's size, ETag/version and SHA-256 checksums (which it keeps for archived objects
too), a local file's SHA-256, a vault's latest inventory — and so is its metadata object.
With ``--read-data`` (:mod:`.read_data`): archives are read whole (retrieved first from cold
storage, like a restore), every age chunk authenticated and every file checked against
``cycle.json``, extracting nothing. :mod:`.checks` holds the pure comparisons, :mod:`.run` the
use case. Nothing is ever deleted or rewritten in the store.
"""

from __future__ import annotations

from uploader.verify.checks import Check, Outcome
from uploader.verify.read_data import check_bundle
from uploader.verify.run import (
    NoSuchCycle,
    ReadDataPlan,
    Verdict,
    select_archives,
    verdicts_to_record,
    verify_archives,
)

__all__ = [
    "Check",
    "NoSuchCycle",
    "Outcome",
    "ReadDataPlan",
    "Verdict",
    "check_bundle",
    "select_archives",
    "verdicts_to_record",
    "verify_archives",
]

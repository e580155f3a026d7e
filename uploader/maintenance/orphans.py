"""Which multipart uploads in progress are orphans to abort: a pure decision.

An upload's parts are billed until it is completed or aborted. The upload path aborts what it
gives up on, but an abort can fail (and the catalogue forgets the upload anyway), and a run can
die between creating an upload and recording it. Nothing would ever look at those again: the
maintenance pass lists this host's uploads in progress and aborts the orphans.

An upload is an orphan when it is

- this host's (its key is ``<host>/...``; another host sharing the store sweeps its own),
- not one the catalogue keeps for a resume (state ``uploading`` or ``completing``: a
  ``completing`` upload must never be aborted). The catalogue only ever drops an upload it gave
  up on, so an upload it does not know, or knows under another state (aborted, failed), is not
  going to be resumed by anyone on this host,
- and older than the grace period (default a day): an upload another process (a concurrent
  ``glacier-backup upload``) has just created and not recorded yet is never touched. An upload
  without an initiation time cannot be judged and is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from localbackup.configkit import DAY
from uploader.stores import MultipartUploadInfo

KEPT_STATES = frozenset({"uploading", "completing"})  # the catalogue resumes (or completes) these


@dataclass(frozen=True, slots=True)
class KnownUpload:
    """An upload in progress as the catalogue knows it."""

    key: str
    upload_id: str
    state: str = "uploading"


@dataclass(frozen=True, slots=True)
class OrphanAbort:
    """A multipart upload to abort, and why."""

    upload: MultipartUploadInfo
    reason: str


def host_prefix(host: str) -> str:
    """The key prefix of every archive of ``host``."""
    return f"{host}/"


def plan_orphan_aborts(
    listed: Iterable[MultipartUploadInfo],
    known: Iterable[KnownUpload],
    host: str,
    now: datetime,
    grace: float = DAY,
) -> list[OrphanAbort]:
    """The uploads in ``listed`` to abort (see the module docstring), sorted by key."""
    kept = {(k.key, k.upload_id) for k in known if k.state in KEPT_STATES}
    forgotten = {(k.key, k.upload_id): k.state for k in known if k.state not in KEPT_STATES}
    cutoff = now - timedelta(seconds=grace)
    out = []
    for u in sorted(listed, key=lambda u: (u.key, u.upload_id)):
        ident = (u.key, u.upload_id)
        if not u.key.startswith(host_prefix(host)) or ident in kept:
            continue
        if u.initiated is None or u.initiated >= cutoff:  # strictly older than the grace
            continue
        state = forgotten.get(ident)
        why = "not in the catalogue" if state is None else f"the catalogue has it as {state}"
        out.append(OrphanAbort(u, f"{why}; initiated {u.initiated.isoformat()}"))
    return out

"""``[metrics] textfile``: Prometheus metrics for node_exporter's textfile collector.

Rewritten after every backup, upload and maintenance pass (and every other event the outcome
sink handles) through ``prometheus_client``'s textfile writer: the file is written under a
temporary name next to it and renamed, so the collector never reads half a file. Everything
comes from local state (catalogue, spool): writing it costs no store request. Every series has
the labels ``host`` and ``store``, so that several configurations on one machine can each
write their own file. ``prometheus_client`` is imported only when a file is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from localbackup.configkit import Section
from localbackup.logevents import get_logger

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from uploader.catalogue import Catalogue
    from watcher.config import AppConfig

log = get_logger(__name__)

PREFIX = "glacier_backup_"


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """The ``[metrics]`` section."""

    textfile: Path | None = None  # where to write; None: no metrics


def metrics_config(section: Section) -> MetricsConfig:
    """Read ``[metrics]``; the file must end in ``.prom`` (the collector reads only those)."""
    path = section.path("textfile", None)
    if path is not None and path.suffix != ".prom":
        raise section.error(
            "textfile",
            "must end in .prom (node_exporter's textfile collector reads only those), "
            f"got {path.name!r}",
        )
    section.finish()
    return MetricsConfig(textfile=path)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the metrics say, read from the catalogue and the spool."""

    host: str
    store: str
    last_success: dict[str, datetime]  # by operation
    last_failure: dict[str, datetime]
    last_bytes: dict[str, int]
    last_seconds: dict[str, float]
    archives: int
    store_bytes: int
    cycles_waiting: int
    uploads_in_progress: int
    missing: int
    budget: int | None


def snapshot(config: AppConfig, catalogue: Catalogue) -> Snapshot:
    """Read everything the metrics file shows (local state only)."""
    from uploader.catalogue import FlagKind, open_flags, operations
    from uploader.pending import pending_cycle_dirs

    store = config.store.name
    ops = operations(catalogue)
    archives = catalogue.archives(store=store)
    return Snapshot(
        host=config.backup.host,
        store=store,
        last_success={k: o.last_success_at for k, o in ops.items() if o.last_success_at},
        last_failure={k: o.last_failure_at for k, o in ops.items() if o.last_failure_at},
        last_bytes={k: o.last_bytes for k, o in ops.items() if o.last_bytes is not None},
        last_seconds={k: o.last_seconds for k, o in ops.items() if o.last_seconds is not None},
        archives=len(archives),
        store_bytes=sum(a.size for a in archives),
        cycles_waiting=len(pending_cycle_dirs(config.backup.spool_dir, catalogue, store)),
        uploads_in_progress=sum(1 for u in catalogue.uploads() if u.store == store),
        missing=sum(1 for f in open_flags(catalogue, store) if f.kind is FlagKind.MISSING),
        budget=config.retention.max_store_size,
    )


def registry_for(s: Snapshot) -> CollectorRegistry:
    """The metrics of ``s`` in their own registry (never the process-wide default one)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    labels = {"host": s.host, "store": s.store}

    def gauge(name: str, doc: str, value: float, **extra: str) -> None:
        g = Gauge(PREFIX + name, doc, [*labels, *extra], registry=registry)
        g.labels(**labels, **extra).set(value)

    def per_operation(name: str, doc: str, values: dict[str, float]) -> None:
        if not values:
            return
        g = Gauge(PREFIX + name, doc, [*labels, "operation"], registry=registry)
        for op, value in sorted(values.items()):
            g.labels(**labels, operation=op).set(value)

    per_operation(
        "last_success_timestamp_seconds",
        "When each operation last succeeded (Unix time).",
        {k: t.timestamp() for k, t in s.last_success.items()},
    )
    per_operation(
        "last_failure_timestamp_seconds",
        "When each operation last failed (Unix time).",
        {k: t.timestamp() for k, t in s.last_failure.items()},
    )
    per_operation(
        "last_bytes",
        "Bytes of the last successful backup (written) and upload (archive).",
        {k: float(v) for k, v in s.last_bytes.items()},
    )
    per_operation(
        "last_duration_seconds", "Duration of each operation's last success.", s.last_seconds
    )
    gauge("store_archives", "Archives of this host in the store (catalogue).", s.archives)
    gauge("store_bytes", "Bytes of this host's archives in the store (catalogue).", s.store_bytes)
    gauge("cycles_waiting", "Sealed cycles waiting for upload.", s.cycles_waiting)
    gauge("uploads_in_progress", "Uploads started and not finished.", s.uploads_in_progress)
    gauge("archives_missing", "Archives flagged MISSING by the last reconciliation.", s.missing)
    if s.budget is not None:
        gauge("store_budget_bytes", "[retention] max_store_size.", s.budget)
        gauge(
            "store_budget_used_ratio",
            "Store bytes divided by max_store_size.",
            s.store_bytes / s.budget if s.budget else 0.0,
        )
    return registry


def write_metrics(config: AppConfig, catalogue: Catalogue) -> None:
    """Rewrite the metrics file if one is configured; a failure is logged, never raised."""
    path = config.metrics.textfile
    if path is None:
        return
    from prometheus_client import write_to_textfile

    try:
        registry = registry_for(snapshot(config, catalogue))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), registry)
    except Exception as exc:  # metrics must never fail what they describe
        log.error("metrics.write_failed", path=str(path), error=str(exc))
        return
    log.debug("metrics.written", path=str(path))

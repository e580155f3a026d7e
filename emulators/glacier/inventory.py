"""Inventory documents (JSON and AWS's CSV dialect) built from an inventory snapshot."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .clock import iso8601, parse_iso8601
from .errors import invalid_parameter
from .model import Archive, Inventory
from .wire import encode_marker


@dataclass(frozen=True, slots=True)
class InventoryRequest:
    """The InventoryRetrievalParameters of an inventory job, validated."""

    fmt: str = "JSON"
    start_date: str | None = None
    end_date: str | None = None
    limit: str | None = None
    marker: str | None = None


def parse_request(fmt: object, params: object) -> InventoryRequest:
    """Validate ``Format`` and ``InventoryRetrievalParameters``."""
    fmt = "JSON" if fmt is None else fmt
    if fmt not in ("JSON", "CSV"):
        raise invalid_parameter(f"Invalid inventory format: {fmt}")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise invalid_parameter("InventoryRetrievalParameters must be an object")
    values: dict[str, str | None] = {}
    for key in ("StartDate", "EndDate", "Limit", "Marker"):
        value = params.get(key)
        values[key] = None if value is None else str(value)
    for key in ("StartDate", "EndDate"):
        if values[key] is not None:
            try:
                parse_iso8601(str(values[key]))
            except ValueError:
                raise invalid_parameter(f"Invalid {key}: {values[key]}") from None
    limit = values["Limit"]
    if limit is not None and (not limit.isdigit() or int(limit) < 1):
        raise invalid_parameter(f"Invalid Limit: {limit}")
    return InventoryRequest(
        str(fmt), values["StartDate"], values["EndDate"], limit, values["Marker"]
    )


def select(inventory: Inventory, req: InventoryRequest) -> tuple[list[Archive], str | None]:
    """Archives in [StartDate, EndDate), after Marker, at most Limit; and the next marker."""
    start = parse_iso8601(req.start_date) if req.start_date else None
    end = parse_iso8601(req.end_date) if req.end_date else None
    items = [
        a
        for a in inventory.archives
        if (start is None or a.created >= start) and (end is None or a.created < end)
    ]
    if req.marker:
        ids = [encode_marker(a.archive_id) for a in items]
        if req.marker not in ids:
            raise invalid_parameter(f"Invalid Marker: {req.marker}")
        items = items[ids.index(req.marker) :]
    if req.limit is not None and len(items) > int(req.limit):
        return items[: int(req.limit)], encode_marker(items[int(req.limit)].archive_id)
    return items, None


def render_json(vault_arn: str, inventory: Inventory, archives: list[Archive]) -> bytes:
    """The JSON inventory document AWS documents."""
    doc = {
        "VaultARN": vault_arn,
        "InventoryDate": iso8601(inventory.date, millis=False),
        "ArchiveList": [
            {
                "ArchiveId": a.archive_id,
                "ArchiveDescription": a.description,
                "CreationDate": iso8601(a.created, millis=False),
                "Size": a.size,
                "SHA256TreeHash": a.tree_hash,
            }
            for a in archives
        ],
    }
    return json.dumps(doc).encode()


def _csv_field(value: str) -> str:
    # AWS's dialect: quote fields holding , or "; an inner " becomes \" and \ stays as is.
    if "," in value or '"' in value:
        return '"' + value.replace('"', '\\"') + '"'
    return value


def render_csv(archives: list[Archive]) -> bytes:
    """The CSV inventory document, header row first."""
    lines = ["ArchiveId,ArchiveDescription,CreationDate,Size,SHA256TreeHash"]
    for a in archives:
        fields = [a.archive_id, a.description, iso8601(a.created, millis=False)]
        fields += [str(a.size), a.tree_hash]
        lines.append(",".join(_csv_field(f) for f in fields))
    return ("\n".join(lines) + "\n").encode()

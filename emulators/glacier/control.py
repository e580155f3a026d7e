"""The control API tests use: ``/_emulator/...`` JSON endpoints botocore never calls."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .clock import iso8601
from .errors import GlacierError
from .faults import rule_from_json
from .state import TIERS, EmulatorState
from .wire import json_response, state_of

PREFIX = "/_emulator"


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


def snapshot(state: EmulatorState) -> dict[str, Any]:
    """Everything a test may want to inspect."""
    vaults = {
        name: {
            "archives": len(v.archives),
            "archive_ids": sorted(v.archives),
            "descriptions": {a.archive_id: a.description for a in v.archives.values()},
            "inventory_date": None if v.inventory is None else iso8601(v.inventory.date),
            "inventory_archives": None if v.inventory is None else len(v.inventory.archives),
            "written_since_inventory": v.written_since_inventory,
            "multipart_uploads_in_progress": sum(
                1 for u in state.uploads.values() if u.vault == name
            ),
        }
        for name, v in state.vaults.items()
    }
    return {
        "now": state.clock.now(),
        "frozen": state.clock.frozen,
        "tier_delays": dict(state.tier_delays),
        "output_ttl": state.output_ttl,
        "vaults": vaults,
        "multipart_uploads_in_progress": len(state.uploads),
        "parts_stored": sum(len(u.parts) for u in state.uploads.values()),
        "part_uploads_received": state.stats.part_uploads_received,
        "jobs": len(state.jobs),
        "requests": dict(state.stats.requests),
        "faults_injected": dict(state.stats.faults_injected),
        "faults_pending": state.faults.pending(),
        "stalled": state.stalled,
    }


async def get_state(request: web.Request) -> web.Response:
    """GET /_emulator/state."""
    return json_response(snapshot(state_of(request)))


async def set_config(request: web.Request) -> web.Response:
    """POST /_emulator/config ``{"tier_delays": {...}, "output_ttl": s}``."""
    state = state_of(request)
    body = await _body(request)
    delays = body.get("tier_delays") or {}
    unknown = set(delays) - set(TIERS)
    if unknown:
        raise web.HTTPBadRequest(text=f"unknown tiers {sorted(unknown)}")
    state.tier_delays.update({k: float(v) for k, v in delays.items()})
    if body.get("output_ttl") is not None:
        state.output_ttl = float(body["output_ttl"])
    return json_response(snapshot(state))


async def clock(request: web.Request) -> web.Response:
    """POST /_emulator/clock ``{"advance": s}`` | ``{"freeze": true}`` | ``{"freeze": false}``."""
    state = state_of(request)
    body = await _body(request)
    if body.get("freeze") is True:
        state.clock.freeze()
    elif body.get("freeze") is False:
        state.clock.unfreeze()
    if body.get("advance"):
        try:
            state.clock.advance(float(body["advance"]))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
    return json_response({"now": state.clock.now(), "frozen": state.clock.frozen})


async def refresh_inventory(request: web.Request) -> web.Response:
    """POST /_emulator/inventory ``{"vault": name}`` (or no vault: every vault)."""
    state = state_of(request)
    body = await _body(request)
    names = [body["vault"]] if body.get("vault") else list(state.vaults)
    dates = {}
    for name in names:
        try:
            dates[name] = iso8601(state.refresh_inventory(name).date)
        except GlacierError as exc:
            raise web.HTTPNotFound(text=exc.message) from None
    return json_response({"inventory_dates": dates})


async def add_fault(request: web.Request) -> web.Response:
    """POST /_emulator/faults: queue a fault rule (see ``faults.rule_from_json``)."""
    state = state_of(request)
    try:
        rule = rule_from_json(await _body(request))
    except (TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    state.faults.add(rule)
    return json_response({"faults_pending": state.faults.pending()})


async def clear_faults(request: web.Request) -> web.Response:
    """DELETE /_emulator/faults (held requests are released too)."""
    state = state_of(request)
    state.faults.clear()
    state.release_stalled()
    return json_response({"faults_pending": []})


async def release_stalled(request: web.Request) -> web.Response:
    """POST /_emulator/faults/release: let the requests held by "stall" faults go on."""
    state = state_of(request)
    state.release_stalled()
    return json_response({"stalled": state.stalled})


async def damage_archive(request: web.Request) -> web.Response:
    """POST /_emulator/archives/damage ``{"vault", "archive_id", "truncate": n}``."""
    state = state_of(request)
    body = await _body(request)
    try:
        archive = state.damage_archive(
            str(body["vault"]), str(body["archive_id"]), int(body["truncate"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=f"vault, archive_id and truncate are needed: {exc}") from None
    except GlacierError as exc:
        raise web.HTTPNotFound(text=exc.message) from None
    return json_response({"size": archive.size, "tree_hash": archive.tree_hash})


async def reset_stats(request: web.Request) -> web.Response:
    """POST /_emulator/stats/reset: zero the request and part counters."""
    state = state_of(request)
    state.stats.requests.clear()
    state.stats.faults_injected.clear()
    state.stats.part_uploads_received = 0
    return json_response(snapshot(state))


def add_routes(app: web.Application) -> None:
    """Register the control endpoints (before the Glacier routes)."""
    app.router.add_get(f"{PREFIX}/state", get_state)
    app.router.add_post(f"{PREFIX}/config", set_config)
    app.router.add_post(f"{PREFIX}/clock", clock)
    app.router.add_post(f"{PREFIX}/inventory", refresh_inventory)
    app.router.add_post(f"{PREFIX}/faults", add_fault)
    app.router.add_delete(f"{PREFIX}/faults", clear_faults)
    app.router.add_post(f"{PREFIX}/faults/release", release_stalled)
    app.router.add_post(f"{PREFIX}/archives/damage", damage_archive)
    app.router.add_post(f"{PREFIX}/stats/reset", reset_stats)

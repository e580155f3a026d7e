"""Helpers shared by the operation handlers: app keys, JSON bodies, paging, headers."""

from __future__ import annotations

import base64
import json
from typing import Any, TypeVar

from aiohttp import web

from .errors import invalid_parameter, missing_parameter
from .state import EmulatorState

STATE: web.AppKey[EmulatorState] = web.AppKey("glacier_state", EmulatorState)
CUT_REQUEST_AFTER = "glacier_cut_request_after"
CUT_RESPONSE_AFTER = "glacier_cut_response_after"
MAX_DESCRIPTION = 1024
T = TypeVar("T")


def state_of(request: web.Request) -> EmulatorState:
    """The emulator state behind this request."""
    return request.app[STATE]


def json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    """A JSON response the way Glacier sends them."""
    return web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/json"
    )


def no_content(status: int = 204, headers: dict[str, str] | None = None) -> web.Response:
    """An empty response carrying only headers."""
    return web.Response(status=status, headers=headers or {})


def parse_limit(request: web.Request, default: int, maximum: int) -> int:
    """The ``limit`` query parameter: a positive integer, capped at the documented maximum."""
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_parameter(f"Invalid limit: {raw}") from None
    if value < 1:
        raise invalid_parameter(f"Invalid limit: {raw}")
    return min(value, maximum)


def encode_marker(key: str) -> str:
    """An opaque marker for resuming a listing after ``key``."""
    return base64.urlsafe_b64encode(key.encode()).decode()


def decode_marker(request: web.Request) -> str | None:
    """The position encoded in the ``marker`` query parameter, if any."""
    raw = request.query.get("marker")
    if not raw:
        return None
    try:
        return base64.urlsafe_b64decode(raw.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise invalid_parameter(f"Invalid marker: {raw}") from None


def page(items: list[tuple[str, T]], after: str | None, limit: int) -> tuple[list[T], str | None]:
    """Slice (sort key, item) pairs sorted by key: items after ``after``, and the next marker."""
    remaining = [(k, v) for k, v in items if after is None or k > after]
    chosen = remaining[:limit]
    marker = encode_marker(chosen[-1][0]) if len(remaining) > limit else None
    return [v for _, v in chosen], marker


def description_header(request: web.Request, *, strip_leading: bool = False) -> str:
    """Validate ``x-amz-archive-description``: <= 1,024 printable ASCII characters."""
    value = request.headers.get("x-amz-archive-description", "")
    return checked_description(value, "archive description", strip_leading=strip_leading)


def checked_description(value: str, what: str, *, strip_leading: bool = False) -> str:
    """Apply Glacier's description rule (0x20-0x7E only, at most 1,024 characters)."""
    if strip_leading:
        value = value.lstrip(" ")
    if len(value) > MAX_DESCRIPTION or any(not 0x20 <= ord(c) <= 0x7E for c in value):
        raise invalid_parameter(f"Invalid {what}: must be at most 1024 printable ASCII characters")
    return value


def required_header(request: web.Request, name: str) -> str:
    """A header the operation cannot do without (AWS: MissingParameterValueException)."""
    value = request.headers.get(name)
    if value is None or value == "":
        raise missing_parameter(name)
    return value

"""A small synchronous client for the emulator's ``/_emulator`` control API."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


class ControlClient:
    """Drive the emulator from tests: clock, delays, inventory, faults, counters."""

    def __init__(self, endpoint_url: str, timeout: float = 10.0) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is our own http endpoint
            f"{self.endpoint_url}/_emulator/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            return json.loads(response.read())

    # -- inspection -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The full state snapshot (see docs/glacier-emulator.md)."""
        result: dict[str, Any] = self._call("GET", "state")
        return result

    def request_count(self, operation: str) -> int:
        """How many requests for an AWS operation arrived (injected failures included)."""
        return int(self.state()["requests"].get(operation, 0))

    def part_uploads_received(self) -> int:
        """How many UploadMultipartPart requests stored a part (re-sent parts count again)."""
        return int(self.state()["part_uploads_received"])

    def multipart_uploads_in_progress(self, vault: str | None = None) -> int:
        """Open multipart uploads of one vault, or across all vaults."""
        state = self.state()
        if vault is not None:
            return int(state["vaults"][vault]["multipart_uploads_in_progress"])
        return int(state["multipart_uploads_in_progress"])

    def reset_stats(self) -> None:
        """Zero the request and part counters."""
        self._call("POST", "stats/reset", {})

    # -- time and jobs ----------------------------------------------------------------
    def now(self) -> float:
        """Current virtual time (epoch seconds)."""
        return float(self.state()["now"])

    def advance(self, seconds: float) -> float:
        """Move the virtual clock forward; returns the new time."""
        return float(self._call("POST", "clock", {"advance": seconds})["now"])

    def freeze(self) -> float:
        """Stop the virtual clock."""
        return float(self._call("POST", "clock", {"freeze": True})["now"])

    def unfreeze(self) -> float:
        """Let the virtual clock run with wall time again."""
        return float(self._call("POST", "clock", {"freeze": False})["now"])

    def set_tier_delays(self, **delays: float) -> None:
        """Seconds from InitiateJob to completion per tier, e.g. ``Standard=60``."""
        self._call("POST", "config", {"tier_delays": delays})

    def set_output_ttl(self, seconds: float) -> None:
        """How long a finished job and its output stay available."""
        self._call("POST", "config", {"output_ttl": seconds})

    def refresh_inventory(self, vault: str | None = None) -> dict[str, str]:
        """Run the inventory pass for one vault (or all); returns the inventory dates."""
        result: dict[str, str] = self._call("POST", "inventory", {"vault": vault})[
            "inventory_dates"
        ]
        return result

    # -- faults -----------------------------------------------------------------------
    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 503,
        code: str | None = None,
        operation: str | None = None,
        message: str = "Injected fault",
    ) -> None:
        """Answer the next ``count`` matching requests with an AWS error (500/503/400...)."""
        self._add_fault(
            kind="error",
            count=count,
            status=status,
            code=code,
            operation=operation,
            message=message,
        )

    def throttle_next(self, count: int = 1, *, operation: str | None = None) -> None:
        """Answer the next ``count`` matching requests with 400 ThrottlingException."""
        self.fail_next(
            count,
            status=400,
            code="ThrottlingException",
            operation=operation,
            message="Rate exceeded",
        )

    def cut_response(
        self, after_bytes: int, *, operation: str | None = None, count: int = 1
    ) -> None:
        """Close the connection after ``after_bytes`` bytes of the response body."""
        self._add_fault(
            kind="cut_response", count=count, operation=operation, after_bytes=after_bytes
        )

    def cut_request(
        self, after_bytes: int, *, operation: str | None = None, count: int = 1
    ) -> None:
        """Close the connection after reading ``after_bytes`` bytes of the request body."""
        self._add_fault(
            kind="cut_request", count=count, operation=operation, after_bytes=after_bytes
        )

    def drop_next(self, count: int = 1, *, operation: str | None = None) -> None:
        """Close the connection of the next ``count`` matching requests without answering."""
        self._add_fault(kind="drop", count=count, operation=operation)

    def stall_next(self, count: int = 1, *, operation: str | None = None, skip: int = 0) -> None:
        """Hold the next ``count`` matching requests (after letting ``skip`` of them through)
        without answering, until :meth:`release_stalled`: a network that hangs."""
        self._add_fault(kind="stall", count=count, operation=operation, skip=skip)

    def stalled(self) -> int:
        """How many requests a "stall" fault holds right now."""
        return int(self.state()["stalled"])

    def release_stalled(self) -> None:
        """Let the held requests go on."""
        self._call("POST", "faults/release", {})

    def damage_archive(self, vault: str, archive_id: str, truncate: int) -> dict[str, Any]:
        """Cut an archive's stored bytes to ``truncate`` (storage-side damage: the next
        inventory reports the new size and tree hash)."""
        result: dict[str, Any] = self._call(
            "POST",
            "archives/damage",
            {"vault": vault, "archive_id": archive_id, "truncate": truncate},
        )
        return result

    def clear_faults(self) -> None:
        """Drop all pending faults (and release held requests)."""
        self._call("DELETE", "faults")

    def _add_fault(self, **spec: Any) -> None:
        self._call("POST", "faults", {k: v for k, v in spec.items() if v is not None})

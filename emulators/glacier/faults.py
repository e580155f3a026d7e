"""Fault injection: planned failures the emulator applies to the next matching requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FAULT_KINDS = ("error", "cut_response", "cut_request", "drop", "stall")

# Default AWS codes for an injected HTTP status.
DEFAULT_CODES = {
    400: "ThrottlingException",
    408: "RequestTimeoutException",
    500: "ServiceUnavailableException",
    503: "ServiceUnavailableException",
}


@dataclass(slots=True)
class FaultRule:
    """Apply ``kind`` to the next ``remaining`` requests whose operation matches."""

    kind: str
    remaining: int
    operation: str | None = None
    status: int = 503
    code: str = "ServiceUnavailableException"
    message: str = "Injected fault"
    after_bytes: int = 0
    skip: int = 0  # let this many matching requests through untouched first

    def matches(self, operation: str) -> bool:
        """Whether this rule applies to a request for ``operation``."""
        return self.remaining > 0 and self.operation in (None, operation)

    def describe(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "operation": self.operation,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "after_bytes": self.after_bytes,
            "skip": self.skip,
        }


def rule_from_json(spec: dict[str, Any]) -> FaultRule:
    """Validate a control-API fault specification."""
    kind = str(spec.get("kind", "error"))
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}")
    count = int(spec.get("count", 1))
    if count < 1:
        raise ValueError("count must be >= 1")
    status = int(spec.get("status", 503))
    code = spec.get("code") or DEFAULT_CODES.get(status, "ServiceUnavailableException")
    operation = spec.get("operation")
    after = int(spec.get("after_bytes", 0))
    if after < 0:
        raise ValueError("after_bytes must be >= 0")
    skip = int(spec.get("skip", 0))
    if skip < 0:
        raise ValueError("skip must be >= 0")
    return FaultRule(
        kind=kind,
        remaining=count,
        operation=None if operation is None else str(operation),
        status=status,
        code=str(code),
        message=str(spec.get("message", "Injected fault")),
        after_bytes=after,
        skip=skip,
    )


class FaultPlan:
    """Ordered fault rules; the first matching rule fires and is consumed once."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        """Queue a rule behind the existing ones."""
        self._rules.append(rule)

    def clear(self) -> None:
        """Drop every pending rule."""
        self._rules.clear()

    def take(self, operation: str) -> FaultRule | None:
        """The rule to apply to this request, if any, consuming one use of it (a rule that
        still has requests to ``skip`` lets this one through)."""
        for rule in self._rules:
            if rule.matches(operation):
                if rule.skip:
                    rule.skip -= 1
                    return None
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
                return rule
        return None

    def pending(self) -> list[dict[str, Any]]:
        """Rules not yet used up."""
        return [r.describe() for r in self._rules]

"""AWS-shaped Glacier errors: a code, an HTTP status, a message and a fault type."""

from __future__ import annotations


class GlacierError(Exception):
    """An error the emulator answers with ``{"code", "message", "type"}`` JSON."""

    def __init__(self, code: str, message: str, status: int = 400, kind: str = "Client") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.kind = kind


def invalid_parameter(message: str) -> GlacierError:
    """400 InvalidParameterValueException, the code AWS uses for every validation failure."""
    return GlacierError("InvalidParameterValueException", message)


def missing_parameter(name: str) -> GlacierError:
    """400 MissingParameterValueException with AWS's observed message."""
    return GlacierError("MissingParameterValueException", f"Required parameter missing: {name}")


def not_found(message: str) -> GlacierError:
    """404 ResourceNotFoundException."""
    return GlacierError("ResourceNotFoundException", message, status=404)


def vault_not_found(arn: str) -> GlacierError:
    """404 for a vault that does not exist, with AWS's message text."""
    return not_found(f"Vault not found for ARN: {arn}")


class ConnectionCut(Exception):
    """Raised after the emulator closed the client's connection on purpose."""

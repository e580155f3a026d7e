"""systemd's notify protocol (READY, STATUS, WATCHDOG, STOPPING), without a dependency.

A datagram to the socket named in ``$NOTIFY_SOCKET``; outside systemd every call does nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket


class Notifier:
    """Sends ``sd_notify`` messages to systemd; does nothing outside a ``Type=notify`` unit."""

    def __init__(self, address: str | None = None) -> None:
        addr = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        if addr.startswith("@"):  # abstract namespace socket
            addr = "\0" + addr[1:]
        self._address = addr or None

    @property
    def enabled(self) -> bool:
        """Whether systemd listens (``NOTIFY_SOCKET`` is set)."""
        return self._address is not None

    def send(self, **fields: str | int) -> None:
        """Send ``KEY=value`` lines; a systemd that went away is ignored."""
        if self._address is None:
            return
        message = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        # systemd may be gone (e.g. during shutdown): nothing useful to do then
        with (
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s,
            contextlib.suppress(OSError),
        ):
            s.sendto(message, self._address)

    def ready(self, status: str) -> None:
        """The service is up."""
        self.send(ready=1, status=status)

    def status(self, status: str) -> None:
        """A status line for ``systemctl status``."""
        self.send(status=status)

    def watchdog(self) -> None:
        """Still alive (the watchdog ping)."""
        self.send(watchdog=1)

    def stopping(self) -> None:
        """The service is stopping."""
        self.send(stopping=1, status="stopping")


def watchdog_interval() -> float | None:
    """Half of the watchdog timeout systemd asked for, or None when none was asked for."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None

"""``with obj:`` for the objects that hold something open (files, a database connection)."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """``with obj:`` gives ``obj`` and calls ``obj.close()`` on the way out, however it ends."""

    __slots__ = ()

    def close(self) -> None:
        """Release what the object holds open."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

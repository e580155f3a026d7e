"""Package fronts that import their modules on first use (PEP 562).

A front (a package's ``__init__.py``) is what other packages import from. Importing every module
behind it eagerly makes the cheapest name cost as much as the heaviest module: ``status`` asking
for the retention settings would load the maintenance executor, the Glacier store and with them
aiobotocore and aiohttp. A lazy front keeps the rule (import from the front) and the cost of a
name to the module that defines it::

    if TYPE_CHECKING:  # what mypy and readers see
        from uploader.maintenance.retention import RetentionConfig
    else:
        __getattr__ = lazy_front(__name__, {".retention": ("RetentionConfig",)})

A name is resolved once and then stored on the package, so later look-ups are plain attribute
reads.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence


def lazy_front(package: str, exports: Mapping[str, Sequence[str]]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports each exported name's module on first
    use; ``exports`` maps a (relative) module name to the names it provides."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__

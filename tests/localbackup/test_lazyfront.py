"""Lazy package fronts: every name a front exports resolves, and only on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

LAZY_FRONTS = (
    "uploader.maintenance",
    "uploader.stores.glacier",
    "uploader.crypto",
    "uploader.restore",
)


@pytest.mark.parametrize("front", LAZY_FRONTS)
def test_every_exported_name_resolves_and_unknown_names_fail(front: str) -> None:
    module = importlib.import_module(front)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(module, "no_such_name")
    with pytest.raises(ImportError):
        exec(f"from {front} import no_such_name", {})


def test_a_cheap_name_does_not_load_the_heavy_modules_beside_it() -> None:
    code = (
        "import sys\n"
        "from uploader.maintenance import RetentionConfig\n"
        "from uploader.stores.glacier import tree_hash\n"
        "print(sorted(m for m in ('aiobotocore', 'aiohttp', 'botocore') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

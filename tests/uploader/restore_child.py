"""Run ``restore`` slowly, to be killed with SIGKILL by test_restore_cold.py.

usage: restore_child.py CONFIG_JSON RESTORE_ARGS...
CONFIG_JSON holds the dict for ``config_from_dict``. Each verified range is recorded, then the
child sleeps, so the parent can kill it with some ranges done and others not.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from uploader import catalogue as catalogue_retrievals
from watcher.commands import restore
from watcher.config import config_from_dict

_record = catalogue_retrievals.record_range


def slow_record(*args: Any) -> None:
    _record(*args)
    time.sleep(0.3)


def main() -> int:
    spec = Path(sys.argv[1])
    config = config_from_dict(json.loads(spec.read_text()), spec.with_suffix(".toml"))
    catalogue_retrievals.record_range = slow_record  # type: ignore[assignment]
    parser = argparse.ArgumentParser()
    restore.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(sys.argv[2:])
    return int(args.run(args, config))


if __name__ == "__main__":
    sys.exit(main())

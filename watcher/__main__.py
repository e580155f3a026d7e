"""``python -m watcher``: the ``glacier-backup`` command line."""

from watcher.cli import run

run()

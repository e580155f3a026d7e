"""A faithful Amazon Glacier (2012-06-01 vault API) emulator for tests.

Start it with :func:`run_emulator` (a real subprocess) or ``python -m emulators.glacier``.
"""

from .control_client import ControlClient
from .process import Emulator, run_emulator
from .treehash import combine_tree_hashes, tree_hash

__all__ = ["ControlClient", "Emulator", "combine_tree_hashes", "run_emulator", "tree_hash"]

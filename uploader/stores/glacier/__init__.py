"""The Amazon Glacier vault store (the original 2012 API: vaults, archives, jobs, inventories).

:mod:`.store` is the :class:`GlacierStore` itself (archives and multipart uploads);
:mod:`.vault_jobs` makes its job calls (inventories, retrievals, job output); :mod:`.wire` maps
the service's errors into the project's and checks tree hashes on the wire; :mod:`.jobs` parses
job and inventory answers; :mod:`.description` is our archive description format;
:mod:`.treehash` the SHA-256 tree hash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from localbackup.lazyfront import lazy_front

if TYPE_CHECKING:
    from uploader.stores.glacier.description import ArchiveDescription, parse_description
    from uploader.stores.glacier.jobs import (
        Inventory,
        InventoryArchive,
        JobInfo,
        JobOutputExpired,
        tree_hash_ranges,
    )
    from uploader.stores.glacier.store import GlacierStore
    from uploader.stores.glacier.treehash import TreeHasher, combine_tree_hashes, tree_hash
    from uploader.stores.glacier.wire import MissingTreeHash, NoInventoryYet, VaultNotFound
else:
    __getattr__ = lazy_front(
        __name__,
        {
            ".description": (
                "ArchiveDescription",
                "parse_description",
            ),
            ".jobs": (
                "Inventory",
                "InventoryArchive",
                "JobInfo",
                "JobOutputExpired",
                "tree_hash_ranges",
            ),
            ".store": ("GlacierStore",),
            ".treehash": (
                "TreeHasher",
                "combine_tree_hashes",
                "tree_hash",
            ),
            ".wire": (
                "MissingTreeHash",
                "NoInventoryYet",
                "VaultNotFound",
            ),
        },
    )

__all__ = [
    "ArchiveDescription",
    "GlacierStore",
    "Inventory",
    "InventoryArchive",
    "JobInfo",
    "JobOutputExpired",
    "MissingTreeHash",
    "NoInventoryYet",
    "TreeHasher",
    "VaultNotFound",
    "combine_tree_hashes",
    "parse_description",
    "tree_hash",
    "tree_hash_ranges",
]

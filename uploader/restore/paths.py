"""``restore --path``: the patterns checked against a local index before anything is paid for.

A pattern that selects nothing is an error (:class:`~localbackup.pathmatch.NoPathMatch`, with
near matches) raised before a retrieval is requested or a byte is downloaded, whenever the
index of the point in time is known locally: in the spool, or in the catalogue's hot copy of an
uploaded cycle's indexes. The index also gives the source roots the patterns are relative to.
Without a local index (a catalogue rebuilt on another machine) the patterns are checked when
the archive's index has been read, and a restore that selects nothing fails then, leaving the
target as it was.
"""

from __future__ import annotations

import dataclasses

from localbackup.index import Index
from localbackup.pathmatch import PathSelection, roots_of
from localbackup.pointintime import choose_increment
from uploader.catalogue import Catalogue, stored_indexes
from uploader.restore.request import RestoreRequest
from uploader.restore.ui import RestoreUI

__all__ = ["check_paths", "check_paths_in_catalogue"]


def check_paths(request: RestoreRequest, index: Index) -> RestoreRequest:
    """``request`` with the roots of ``index`` (the point in time to restore); raises
    :class:`~localbackup.pathmatch.NoPathMatch` if a ``--path`` pattern selects nothing."""
    if not request.patterns:
        return request
    records = index.records
    roots = roots_of(records)
    PathSelection(request.patterns, roots).require(records)
    return dataclasses.replace(request, roots=roots)


def check_paths_in_catalogue(
    request: RestoreRequest, catalogue: Catalogue, cycle_id: str, ui: RestoreUI
) -> RestoreRequest:
    """:func:`check_paths` with the catalogue's copy of ``cycle_id``'s index at ``request.at``
    (a :class:`~localbackup.pointintime.PointInTimeError` if there is no such increment); the
    request unchanged, with a warning, when the catalogue holds no index of the cycle."""
    if not request.patterns:
        return request
    known = list(stored_indexes(catalogue, cycle_id))
    if not known:
        ui.warn(
            f"no local index of cycle {cycle_id}: the --path patterns are checked once the "
            "archive's index has been read"
        )
        return request
    return check_paths(request, choose_increment(known, request.at).load())

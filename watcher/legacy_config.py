"""Convert the original tool's JSON options (``~/.glacierclient``) into our TOML configuration.

The original (glacierclient) read three files, each optional, each overriding built-in
defaults key by key (keys it did not know were ignored):

- ``includeexclude.json``: ``{"includes": [dirs], "excludes": [patterns]}``;
- ``localbackupoptions.json``: the local stage (``LocalBackup.py``);
- ``glacierbackupoptions.json``: the upload stage (``GlacierBackup.py``).

:func:`convert` writes nothing: it turns what was read into the TOML text and one :class:`Note` per
setting saying what became of it. Writing files is the command's job.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from localbackup.configkit import ConfigError, format_size
from uploader.config import VAULT_NAME

__all__ = [
    "GLACIER_DEFAULTS",
    "LOCAL_DEFAULTS",
    "Conversion",
    "LegacySettings",
    "Note",
    "convert",
    "read_legacy",
]

INCLUDE_EXCLUDE = "includeexclude.json"
LOCAL_OPTIONS = "localbackupoptions.json"
GLACIER_OPTIONS = "glacierbackupoptions.json"
LEGACY_PASSPHRASE_FILE = "legacy-passphrase"  # noqa: S105 - file names, next to the config
LEGACY_INNER_PASSPHRASE_FILE = "legacy-inner-passphrase"  # noqa: S105

# The defaults built into the original scripts (LocalBackup.py and GlacierBackup.py).
LOCAL_DEFAULTS: Mapping[str, object] = {
    "includeexcludefilespec": "~/.glacierclient/includeexclude.json",
    "previousFileStateStore": "~/.glacierclient/previousfilestore.json",
    "backupArchiveLocalPath": "/tmp/glacierclient",  # noqa: S108 - the old tool's default
    "opensslbinary": "/usr/bin/openssl",
    "maxIncrementsBetweenFullBackups": 7,
    "localEncryptionKey": "",
    "DEBUGME": True,
    "INFOMSG": True,
}
DEFAULT_GLACIER_KEY = "AReallySecurePasswordForLocalEncryption"
DEFAULT_VAULT = "AVaultThatExists"
GLACIER_DEFAULTS: Mapping[str, object] = {
    "backupArchiveLocalPath": "/tmp/glacierclient",  # noqa: S108
    "backupCloudReadyFlagFile": "backup_set_complete.flag",
    "DEBUGME": True,
    "INFOMSG": True,
    "localEncryptionKey": DEFAULT_GLACIER_KEY,
    "opensslbinary": "/usr/bin/openssl",
    "GlacierVault": DEFAULT_VAULT,
    "VaultSizeLimit": 1048576,
    "VaultInventoryFile": "~/.glacierclient/last_vault_inventory.json",
    "VaultInventoryCacheFile": "~/.glacierclient/vault_inventory_cache.json",
    "GlacierOutstandingJobs": "~/.glacierclient/glacier_outstanding_jobs.json",
    "VaultInventoryRequestWindow": 86400 * 7,
    "InventoryRequestMinInterval": 86400 * 2,
    "VaultArchiveMinRetentionDays": 90,
}
_GLOB = re.compile(r"([*?\[])")

# What became of one setting of the old tool (the first word of each line of the report).
NoteStatus = Literal["mapped", "changed", "not carried over", "missing"]
MAPPED: NoteStatus = "mapped"
CHANGED: NoteStatus = "changed"
DROPPED: NoteStatus = "not carried over"
MISSING: NoteStatus = "missing"

# Why each setting became what it became (printed after the conversion).
_WHY = {
    "no-includes": "no include file: the old tool refused to run without one; set [backup] "
    "sources yourself",
    "tilde": "the old tool did not expand '~' (os.walk on the literal path) and backed up "
    "nothing here; now it is your home directory",
    "relative": "relative to the directory the old tool ran from (cron: your home); now absolute",
    "file": "a single file: the old tool walked directories only and skipped it; now backed up",
    "absent": "does not exist (now): kept; the backup will warn about it",
    "empty-exclude": "an empty pattern (it crashed the old tool)",
    "path-exclude": "the old tool compared directory names only, so a path never matched; it "
    "is written commented out in [backup] exclude: uncomment it if you meant it",
    "dir-exclude": "directories with this name, at any depth (as before)",
    "increments": "the old tool made one more increment than this after each full (it checked "
    '"more than"); the same cadence is kept, each against the previous: mode = "incremental"',
    "no-vault": f"never set (the old default {DEFAULT_VAULT!r} is a placeholder): the local "
    "store is used; see docs/stores.md for s3 and glacier",
    "bad-vault": "not a valid vault name: the local store is used; set [store] yourself",
    "vault": "region and credentials come from your AWS configuration as before (set region / "
    "profile in [store] if needed); the old archives stay in the vault: read them with "
    "'glacier-backup restore-legacy'",
    "size": "oldest archives are pruned to stay under it, as before",
    "no-size": "the old placeholder (1 MiB, which would prune every archive): no size budget is "
    "set; set [retention] max_store_size if you want one",
    "min-age": "archives younger than this are never pruned (Glacier charges early deletion "
    "before 90 days)",
    "spool": "not reused: the spool is now [backup] spool_dir (private, 0700, not in /tmp); "
    "files the old tool left there are not uploaded by the new one",
    "openssl": "not needed: encryption is built in (age)",
    "debug": "use --log-level debug|info|warning",
    "state": "the new tool keeps its own state: its first backup is a full",
    "flag": "cycles are sealed by the new tool; touch any file in [watch] marker_dir to force "
    "an upload",
    "inventory": "replaced by the catalogue in state_dir; 'glacier-backup inventory' rebuilds it",
    "schedule": "the service schedules inventories itself ([watch] maintenance_every)",
    "upload": "the old tool sent each archive in one request (at most 4 GiB); uploads are now "
    "multipart, resumable and concurrent",
    "key": "new archives are encrypted with age to a public key (the backup host keeps no secret "
    "able to read them); the old key sat in plain JSON and went on openssl's command line, so it "
    "is not reused. It is saved to the 0600 file 'legacy-passphrase' next to this config only to "
    "read old archives (restore-legacy --passphrase-file): keep a copy offline, then remove it "
    f"from the old {GLACIER_OPTIONS}",
    "default-key": "WARNING: it is the old tool's built-in default, which is public: treat the "
    "old archives as unencrypted",
    "no-key": "empty: the old archives were not encrypted; new ones are (age)",
    "inner-key": "the backups inside the old archives were encrypted too; the key is saved next "
    "to this config (restore-legacy --inner-passphrase-file when it differs)",
    "missing": "not found: the old tool's defaults are assumed",
}


@dataclass(frozen=True, slots=True)
class Note:
    """What became of one setting of the original tool, and why."""

    status: NoteStatus
    old: str  # "file: key"
    new: str  # the new key (and value), or "" when nothing replaces it
    why: str

    def line(self, indent: int = 0) -> str:
        """``status  old -> new`` then the reason, wrapped below it."""
        arrow = f" -> {self.new}" if self.new else ""
        pad = " " * (indent + 4)
        why = textwrap.fill(self.why, 100, initial_indent=pad, subsequent_indent=pad)
        return f"{' ' * indent}{self.status}: {self.old}{arrow}\n{why}"


@dataclass(frozen=True, slots=True)
class LegacySettings:
    """The three files as the original tool saw them: user values over its defaults."""

    directory: Path
    local: Mapping[str, object]
    glacier: Mapping[str, object]
    includes: tuple[str, ...] | None  # None: no include/exclude file
    excludes: tuple[str, ...]
    include_file: Path
    set_local: frozenset[str] = frozenset()  # keys the user actually set
    set_glacier: frozenset[str] = frozenset()
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Conversion:
    """The converted configuration, the notes on each setting, and the old keys to save."""

    toml: str
    notes: tuple[Note, ...]
    secrets: Mapping[str, bytes] = field(default_factory=dict)  # file name -> passphrase


def _load_json(path: Path) -> dict[str, object] | None:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(path, "(file)", f"cannot be read: {exc.strerror}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(path, "(syntax)", f"is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "(file)", "is not a JSON object")
    return data


def read_legacy(directory: Path, home: Path) -> LegacySettings:
    """Read the three files from ``directory``; a missing one means the old defaults."""
    missing: list[str] = []
    loaded: list[tuple[dict[str, object], frozenset[str]]] = []
    for name, defaults in ((LOCAL_OPTIONS, LOCAL_DEFAULTS), (GLACIER_OPTIONS, GLACIER_DEFAULTS)):
        user = _load_json(directory / name)
        if user is None:
            missing.append(name)
            user = {}
        keys = frozenset(k for k in user if k in defaults)  # the old tool ignored the others
        loaded.append(({k: user.get(k, v) for k, v in defaults.items()}, keys))
    (local, set_local), (glacier, set_glacier) = loaded
    spec = str(local["includeexcludefilespec"])
    include_file = (
        directory / INCLUDE_EXCLUDE
        if "includeexcludefilespec" not in set_local
        else Path(spec.replace("~", str(home), 1) if spec.startswith("~") else spec)
    )
    data = _load_json(include_file)
    if data is None:
        missing.append(INCLUDE_EXCLUDE)
    includes = None if data is None else _strings(data, "includes", include_file)
    excludes = () if data is None else _strings(data, "excludes", include_file)
    return LegacySettings(
        directory,
        local,
        glacier,
        includes,
        excludes,
        include_file,
        set_local,
        set_glacier,
        tuple(missing),
    )


def _strings(data: Mapping[str, object], key: str, file: Path) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(file, key, "expected a list of strings")
    return tuple(value)


def _q(value: str | Path) -> str:
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _literal(text: str) -> str:
    """Our exclude syntax for a name matched literally (the old tool had no wildcards)."""
    return _GLOB.sub(r"[\1]", text)


class _Notes(list[Note]):
    def __call__(self, status: NoteStatus, old: str, new: str, why: str) -> None:
        self.append(Note(status, old, new, _WHY.get(why, why)))


def _sources(s: LegacySettings, home: Path, note: _Notes) -> list[str]:
    where = f"{s.include_file.name}: includes"
    if s.includes is None:
        note(MISSING, where, "backup.sources = []", "no-includes")
        return []
    out: list[str] = []
    for inc in s.includes:
        path = Path(inc)
        if inc.startswith("~"):
            note(CHANGED, f"{where} {inc!r}", _q(inc), "tilde")
            path = Path(inc.replace("~", str(home), 1))
        elif not path.is_absolute():
            path = home / path
            note(CHANGED, f"{where} {inc!r}", _q(path), "relative")
        if path.is_file():
            note(CHANGED, f"{where} {inc!r}", "", "file")
        elif not path.exists():
            note(CHANGED, f"{where} {inc!r}", "", "absent")
        out.append(inc if inc.startswith("~") else str(path))
    note(MAPPED, where, "backup.sources", f"{len(out)} path(s)")
    return out


def _excludes(s: LegacySettings, note: _Notes) -> tuple[list[str], list[str]]:
    """(patterns, commented-out patterns) in our gitignore-like syntax."""
    where = f"{s.include_file.name}: excludes"
    out: list[str] = []
    off: list[str] = []
    for ex in s.excludes:
        if not ex:
            note(DROPPED, f"{where} ''", "", "empty-exclude")
        elif ex.startswith("*"):
            out.append("*" + _literal(ex[1:]))
            why = f"file names ending in {ex[1:]!r} (now also directories named so)"
            note(MAPPED, f"{where} {ex!r}", _q(out[-1]), why)
        elif "/" in ex:
            off.append(ex)
            note(DROPPED, f"{where} {ex!r}", "", "path-exclude")
        else:
            out.append(_literal(ex) + "/")
            note(MAPPED, f"{where} {ex!r}", _q(out[-1]), "dir-exclude")
    return out, off


def _increments(s: LegacySettings, note: _Notes) -> int:
    old = s.local["maxIncrementsBetweenFullBackups"]
    n = old if isinstance(old, int) and not isinstance(old, bool) and old >= 0 else 7
    where = f"{LOCAL_OPTIONS}: maxIncrementsBetweenFullBackups = {old}"
    note(CHANGED, where, f"backup.increments_per_cycle = {n + 1}", "increments")
    return n + 1


def _store(s: LegacySettings, note: _Notes) -> list[str]:
    vault = s.glacier["GlacierVault"]
    where = f"{GLACIER_OPTIONS}: GlacierVault"
    if "GlacierVault" not in s.set_glacier or not isinstance(vault, str):
        note(CHANGED, where, 'store.type = "local"', "no-vault")
        return ['type = "local"']
    if not VAULT_NAME.match(vault):
        note(CHANGED, f"{where} = {vault!r}", 'store.type = "local"', "bad-vault")
        return ['type = "local"']
    note(MAPPED, where, f'store.type = "glacier", store.vault = {_q(vault)}', "vault")
    return ['type = "glacier"', f"vault = {_q(vault)}"]


def _retention(s: LegacySettings, note: _Notes) -> list[str]:
    lines: list[str] = []
    limit = s.glacier["VaultSizeLimit"]
    where = f"{GLACIER_OPTIONS}: VaultSizeLimit = {limit}"
    if "VaultSizeLimit" in s.set_glacier and isinstance(limit, int) and limit > 1048576:
        lines.append(f"max_store_size = {limit}  # {format_size(limit)}")
        note(MAPPED, where, f"retention.max_store_size = {limit}", "size")
    else:
        note(CHANGED, where, "", "no-size")
    days = s.glacier["VaultArchiveMinRetentionDays"]
    if isinstance(days, int) and not isinstance(days, bool) and days > 0:
        lines.append(f'min_age = "{days}d"')
        where = f"{GLACIER_OPTIONS}: VaultArchiveMinRetentionDays = {days}"
        note(MAPPED, where, f'retention.min_age = "{days}d"', "min-age")
    return lines


def _dropped(s: LegacySettings, note: _Notes) -> None:
    for file, values in ((LOCAL_OPTIONS, s.local), (GLACIER_OPTIONS, s.glacier)):
        spool = values["backupArchiveLocalPath"]
        note(DROPPED, f"{file}: backupArchiveLocalPath = {spool!r}", "", "spool")
        note(DROPPED, f"{file}: opensslbinary", "", "openssl")
        note(DROPPED, f"{file}: DEBUGME, INFOMSG", "", "debug")
    note(DROPPED, f"{LOCAL_OPTIONS}: previousFileStateStore", "", "state")
    note(DROPPED, f"{GLACIER_OPTIONS}: backupCloudReadyFlagFile", "", "flag")
    files = "VaultInventoryFile, VaultInventoryCacheFile, GlacierOutstandingJobs"
    note(DROPPED, f"{GLACIER_OPTIONS}: {files}", "", "inventory")
    windows = "VaultInventoryRequestWindow, InventoryRequestMinInterval"
    note(DROPPED, f"{GLACIER_OPTIONS}: {windows}", "", "schedule")
    note(CHANGED, "(upload: one request per archive)", 'upload.part_size = "auto"', "upload")


def _encryption(
    s: LegacySettings, recipient: str | None, identity_file: Path, note: _Notes
) -> tuple[list[str], dict[str, bytes]]:
    secrets: dict[str, bytes] = {}
    outer, inner = s.glacier["localEncryptionKey"], s.local["localEncryptionKey"]
    where = f"{GLACIER_OPTIONS}: localEncryptionKey"
    if isinstance(outer, str) and outer:
        secrets[LEGACY_PASSPHRASE_FILE] = outer.encode()
        why = _WHY["key"]
        if outer == DEFAULT_GLACIER_KEY:
            why += ". " + _WHY["default-key"]
        note(DROPPED, where, "encryption.recipients (age)", why)
    else:
        note(DROPPED, where, "encryption.recipients (age)", "no-key")
    if isinstance(inner, str) and inner:
        name = LEGACY_PASSPHRASE_FILE if inner == outer else LEGACY_INNER_PASSPHRASE_FILE
        secrets[name] = inner.encode()
        note(DROPPED, f"{LOCAL_OPTIONS}: localEncryptionKey", f"file {name!r}", "inner-key")
    if recipient is None:
        lines = ["recipients = []  # set when 'config import-legacy' writes this file"]
    else:
        lines = [f"recipients = [{_q(recipient)}]"]
    lines.append(f"identity_file = {_q(identity_file)}   # needed only to restore")
    return lines, secrets


def convert(
    s: LegacySettings, *, home: Path, recipient: str | None, identity_file: Path, stamp: str
) -> Conversion:
    """The TOML for ``s`` and what became of each old setting."""
    note = _Notes()
    for name in s.missing:
        if name != INCLUDE_EXCLUDE:
            note(MISSING, name, "", "missing")
    sources = _sources(s, home, note)
    exclude, off = _excludes(s, note)
    increments = _increments(s, note)
    enc, secrets = _encryption(s, recipient, identity_file, note)
    store = _store(s, note)
    retention = _retention(s, note)
    _dropped(s, note)
    excl = "".join(f"\n    {_q(p)}," for p in exclude)
    excl += "".join(f"\n    # {_q(p)},  # the old tool never matched this path" for p in off)
    nl = "\n"
    text = f"""# Converted from {s.directory} by 'glacier-backup config import-legacy' on {stamp}.
# Every key, with its default, is documented in config.example.toml.

[backup]
sources = [{", ".join(map(_q, sources))}]
exclude = [{excl}{nl if excl else ""}]
increments_per_cycle = {increments}   # a full + {increments} increments per archive, as before
mode = "incremental"

[encryption]
{nl.join(enc)}

[store]
{nl.join(store)}

[upload]
part_size = "auto"
concurrency = 4

[retention]
{nl.join(retention)}
"""
    return Conversion(text, tuple(note), secrets)

"""The ``[encryption]``, ``[store]``, ``[upload]`` and ``[restore]`` sections as typed, frozen
objects."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, cast, get_args

from localbackup import paths
from localbackup.configkit import ConfigError, Section
from uploader.crypto.errors import InvalidRecipientError
from uploader.crypto.recipients import recipient_key
from uploader.object_lock import LockMode, LockPolicy, auto_lock_days
from uploader.stores import GiB, MiB, ObjectOptions
from uploader.window import UploadWindow, WindowError

PASSPHRASE_ENV = "GLACIER_BACKUP_PASSPHRASE"  # noqa: S105 - the name, not a secret
EncryptionMode = Literal["age", "none"]
ENCRYPTION_MODES: tuple[EncryptionMode, ...] = get_args(EncryptionMode)
StoreType = Literal["local", "s3", "glacier"]
STORE_TYPES: tuple[StoreType, ...] = get_args(StoreType)
StorageClass = Literal["DEEP_ARCHIVE", "GLACIER", "GLACIER_IR", "STANDARD_IA", "STANDARD"]
STORAGE_CLASSES: tuple[StorageClass, ...] = get_args(StorageClass)
# Metadata objects must be readable without a retrieval: no GLACIER / DEEP_ARCHIVE.
METADATA_STORAGE_CLASSES: tuple[StorageClass, ...] = ("STANDARD", "STANDARD_IA", "GLACIER_IR")

# How long an AWS store waits for a connection, and for the next bytes of an answer, before
# the request counts as failed (and is retried): a frozen server is noticed, said and retried
# instead of hanging a command or the service.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
VAULT_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")  # what Glacier accepts as a vault name
_ACCOUNT = re.compile(r"^(-|\d{12})$")


@dataclass(frozen=True, slots=True)
class EncryptionConfig:
    """How archives are encrypted: to age recipients, with a passphrase, or (loudly) not at all."""

    mode: EncryptionMode = "age"
    recipients: tuple[str, ...] = ()
    passphrase_file: Path | None = None
    passphrase_env: str | None = None  # name of the variable holding the passphrase
    identity_file: Path | None = None  # only needed to restore
    source: Path | None = field(default=None, compare=False)  # named by errors raised later

    @property
    def enabled(self) -> bool:
        """Whether archives are encrypted (any mode but ``none``)."""
        return self.mode != "none"

    def require_key(self) -> None:
        """Raise :class:`ConfigError` unless archives can be encrypted (or encryption is off).

        Loading a configuration without a key is allowed (a local backup needs none); anything
        that uploads calls this first.
        """
        if self.enabled and not (self.recipients or self.passphrase_file or self.passphrase_env):
            raise ConfigError(
                self.source,
                "encryption.recipients",
                f"no encryption key: set recipients, passphrase_file or {PASSPHRASE_ENV}, "
                'or mode = "none" to upload unencrypted',
            )


@dataclass(frozen=True, slots=True)
class LocalStoreConfig:
    """``[store] type = "local"``: a directory (a NAS mount, a USB disk, a test folder)."""

    path: Path
    type: Literal["local"] = "local"

    @property
    def name(self) -> str:
        """The store's stable identity in the catalogue: ``local:<path>``."""
        return f"local:{self.path}"


@dataclass(frozen=True, slots=True)
class S3StoreConfig:
    """``[store] type = "s3"``: a bucket and key prefix, objects in ``storage_class``."""

    bucket: str
    prefix: str = ""
    storage_class: StorageClass = "DEEP_ARCHIVE"
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    type: Literal["s3"] = "s3"
    object_lock: LockPolicy | None = None  # S3 Object Lock retention of every object we create
    metadata_storage_class: StorageClass = "STANDARD"  # each archive's metadata object (hot)

    @property
    def name(self) -> str:
        """The store's stable identity in the catalogue: ``s3://<bucket>/<prefix>``."""
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class GlacierStoreConfig:
    """``[store] type = "glacier"``: a vault of the original Glacier API."""

    vault: str
    account_id: str = "-"
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    type: Literal["glacier"] = "glacier"

    @property
    def name(self) -> str:
        """The store's stable identity in the catalogue:
        ``glacier://<region>/<account_id>/<vault>``. Without ``region``, the region of the AWS
        configuration (``AWS_DEFAULT_REGION``, the profile's), as the store itself uses."""
        from uploader.stores.aws_client import default_region

        region = self.region or default_region(self.profile)
        return f"glacier://{region or '-'}/{self.account_id}/{self.vault}"


StoreConfig = LocalStoreConfig | S3StoreConfig | GlacierStoreConfig


@dataclass(frozen=True, slots=True)
class UploadConfig:
    """The ``[upload]`` section: part size, concurrency, part retries, rate limit, window."""

    part_size: int | None = None  # None: chosen from the bundle size and the store's limits
    concurrency: int = 4
    retries: int = 5  # per part, on top of the request retries of the AWS SDK
    max_rate: int | None = None  # bytes per second, shared by all parts; None: no limit
    window: UploadWindow | None = None  # local hours in which uploads run; None: any time


@dataclass(frozen=True, slots=True)
class RestoreConfig:
    """The ``[restore]`` section: the download rate limit of restores."""

    max_rate: int | None = None  # bytes per second, shared by all ranges; None: no limit


def encryption_config(
    section: Section, environ: Mapping[str, str] | None = None
) -> EncryptionConfig:
    """Read ``[encryption]``. Exactly one source of keys, unless ``mode = "none"``."""
    env = os.environ if environ is None else environ
    mode = cast(EncryptionMode, section.choice("mode", "age", ENCRYPTION_MODES))
    recipients = section.string_list("recipients")
    passphrase_file = section.path("passphrase_file", None)
    identity_file = section.path("identity_file", None)
    section.finish()
    if mode == "none":
        for key, value in (("recipients", recipients), ("passphrase_file", passphrase_file)):
            if value:
                raise section.error(key, 'cannot be combined with mode = "none"')
        return EncryptionConfig(mode="none", identity_file=identity_file, source=section.file)
    for i, r in enumerate(recipients):
        try:
            recipient_key(r)  # checked without loading the cipher library
        except InvalidRecipientError as exc:
            raise section.error(f"recipients[{i}]", f"not an age recipient: {exc}") from None
    if recipients and passphrase_file:
        raise section.error(
            "passphrase_file", "age cannot mix a passphrase with recipients; choose one"
        )
    passphrase_env = None
    if not recipients and passphrase_file is None and env.get(PASSPHRASE_ENV):
        passphrase_env = PASSPHRASE_ENV
    return EncryptionConfig(
        mode="age",
        recipients=recipients,
        passphrase_file=passphrase_file,
        passphrase_env=passphrase_env,
        identity_file=identity_file,
        source=section.file,
    )


# The keys of each store type: the fields of its configuration (all but ``type``).
_STORE_KEYS: dict[str, tuple[str, ...]] = {
    kind: tuple(f.name for f in fields(cls) if f.name != "type")
    for kind, cls in (
        ("local", LocalStoreConfig),
        ("s3", S3StoreConfig),
        ("glacier", GlacierStoreConfig),
    )
}
_STORE_KEYS["s3"] += ("lock_for",)  # read with object_lock into its LockPolicy


def store_config(section: Section) -> StoreConfig:
    """Read ``[store]``; keys of another store type are named as such."""
    kind = cast(StoreType, section.choice("type", "local", STORE_TYPES))
    if kind == "glacier" and section.has("object_lock"):
        raise section.error(
            "object_lock",
            "applies to S3 buckets; a Glacier vault is made immutable with Vault Lock, which "
            "needs no setting here (see docs/immutability.md)",
        )
    for other, keys in _STORE_KEYS.items():
        for key in keys:
            if section.has(key) and key not in _STORE_KEYS[kind]:
                raise section.error(key, f"applies to store type {other!r}, not {kind!r}")
    cfg: StoreConfig
    if kind == "local":
        path = section.path("path", paths.data_home() / "vault")
        assert path is not None
        cfg = LocalStoreConfig(path=path)
    elif kind == "s3":
        bucket = _required(section, "bucket")
        if not _BUCKET.match(bucket):
            raise section.error("bucket", f"not a valid S3 bucket name: {bucket!r}")
        prefix = section.string("prefix", "")
        if prefix.startswith("/"):
            raise section.error("prefix", "must not start with '/'")
        storage_class = cast(
            StorageClass, section.choice("storage_class", "DEEP_ARCHIVE", STORAGE_CLASSES)
        )
        cfg = S3StoreConfig(
            bucket=bucket,
            prefix=prefix,
            storage_class=storage_class,
            region=section.optional_string("region"),
            profile=section.optional_string("profile"),
            endpoint_url=_endpoint(section),
            connect_timeout=_timeout(section, "connect_timeout", CONNECT_TIMEOUT),
            read_timeout=_timeout(section, "read_timeout", READ_TIMEOUT),
            object_lock=_object_lock(section, storage_class),
            metadata_storage_class=_metadata_class(section),
        )
    else:
        vault = _required(section, "vault")
        if not VAULT_NAME.match(vault):
            raise section.error("vault", f"not a valid vault name: {vault!r}")
        account_id = section.string("account_id", "-")
        if not _ACCOUNT.match(account_id):
            raise section.error("account_id", 'must be "-" or a 12-digit AWS account id')
        cfg = GlacierStoreConfig(
            vault=vault,
            account_id=account_id,
            region=section.optional_string("region"),
            profile=section.optional_string("profile"),
            endpoint_url=_endpoint(section),
            connect_timeout=_timeout(section, "connect_timeout", CONNECT_TIMEOUT),
            read_timeout=_timeout(section, "read_timeout", READ_TIMEOUT),
        )
    section.finish()
    return cfg


def _metadata_class(section: Section) -> StorageClass:
    """``[store] metadata_storage_class``: a class whose objects are read at once."""
    value = section.string("metadata_storage_class", "STANDARD")
    for allowed in METADATA_STORAGE_CLASSES:
        if value == allowed:
            return allowed
    raise section.error(
        "metadata_storage_class",
        f"must be one of {', '.join(METADATA_STORAGE_CLASSES)} (metadata objects are read "
        f"without a retrieval; {value!r} is not)",
    )


def metadata_object_options(store: StoreConfig) -> ObjectOptions:
    """How the store writes each archive's metadata object (S3: its storage class)."""
    if isinstance(store, S3StoreConfig):
        return ObjectOptions(storage_class=store.metadata_storage_class)
    return ObjectOptions()


def upload_config(section: Section) -> UploadConfig:
    """Read ``[upload]``."""
    part_size: int | None = None
    try:
        auto = section.string("part_size", "auto") == "auto"
    except ConfigError:  # a plain number of bytes
        auto = False
    if not auto:
        part_size = section.size("part_size", None)
        assert part_size is not None
        if not MiB <= part_size <= 5 * GiB:
            raise section.error("part_size", 'must be "auto" or between 1MiB and 5GiB')
    window = None
    if (text := section.optional_string("window")) is not None:
        try:
            window = UploadWindow.parse(text)
        except WindowError as exc:
            raise section.error("window", str(exc)) from None
    cfg = UploadConfig(
        part_size=part_size,
        concurrency=section.integer("concurrency", 4, minimum=1, maximum=64),
        retries=section.integer("retries", 5, minimum=0, maximum=100),
        max_rate=section.rate("max_rate"),
        window=window,
    )
    section.finish()
    return cfg


def restore_config(section: Section) -> RestoreConfig:
    """Read ``[restore]``."""
    cfg = RestoreConfig(max_rate=section.rate("max_rate"))
    section.finish()
    return cfg


def _object_lock(section: Section, storage_class: str) -> LockPolicy | None:
    """``object_lock`` and ``lock_for``: the retention every archive gets when it is created."""
    if not section.has("object_lock"):
        if section.has("lock_for"):
            raise section.error("lock_for", 'needs object_lock = "governance" or "compliance"')
        return None
    mode = section.enum_choice("object_lock", LockMode.GOVERNANCE)
    lock_for: float | None = None
    if section.peek("lock_for") in (None, "auto"):
        section.string("lock_for", "auto")
        if auto_lock_days(storage_class) == 0:
            raise section.error(
                "lock_for",
                f'"auto" locks for the storage class\'s minimum storage duration, and '
                f'{storage_class} has none: give a duration such as "30d"',
            )
    else:
        lock_for = section.duration("lock_for", None)
    return LockPolicy(mode, lock_for)


def _required(section: Section, key: str) -> str:
    value = section.optional_string(key)
    if not value:
        raise section.error(key, "is required for this store type")
    return value


def _timeout(section: Section, key: str, default: float) -> float:
    """``connect_timeout`` or ``read_timeout`` of an AWS store (a duration, e.g. "10s")."""
    value = section.duration(key, default)
    assert value is not None
    return value


def _endpoint(section: Section) -> str | None:
    url = section.optional_string("endpoint_url")
    if url is not None and not re.match(r"^https?://[^/\s]+", url):
        raise section.error("endpoint_url", f"must be an http(s) URL, got {url!r}")
    return url

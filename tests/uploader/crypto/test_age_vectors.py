"""Conformance against the C2SP/CCTV age test vectors, kept in ``testkit/`` (see its README)."""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from uploader.crypto import (
    AgeError,
    Decryptor,
    HeaderError,
    HeaderMacError,
    Identity,
    NoIdentityMatchError,
    PayloadError,
    ScryptIdentity,
    X25519Identity,
)

TESTKIT = Path(__file__).resolve().parent / "testkit"
VECTOR_COUNT = 143  # the snapshot in testkit/: a lost file fails the suite
KNOWN_KEYS = {
    "expect",
    "payload",
    "identity",
    "passphrase",
    "armored",
    "file key",
    "comment",
    "compressed",
}
OUTCOMES: dict[str, type[AgeError] | None] = {
    "success": None,
    "no match": NoIdentityMatchError,
    "HMAC failure": HeaderMacError,
    "header failure": HeaderError,
    "payload failure": PayloadError,
}


@dataclass
class Vector:
    name: str
    fields: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def one(self, key: str) -> str | None:
        values = self.fields.get(key)
        return values[0] if values else None

    def skip_reason(self) -> str | None:
        unknown = set(self.fields) - KNOWN_KEYS
        if unknown:
            return f"unknown keys {sorted(unknown)}"
        if self.one("armored") == "yes" or self.one("expect") == "armor failure":
            return "armor (ASCII armoring) is not implemented"
        if any(not i.startswith("AGE-SECRET-KEY-1") for i in self.fields.get("identity", [])):
            return "hybrid (post-quantum) identities are not implemented"
        if self.one("expect") not in OUTCOMES:
            return f"unknown expectation {self.one('expect')!r}"
        return None


def load_vector(path: Path) -> Vector:
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n\n")
    vector = Vector(path.name)
    for line in head.decode("utf-8").splitlines():
        key, _, value = line.partition(": ")
        vector.fields.setdefault(key, []).append(value)
    vector.body = zlib.decompress(body) if vector.one("compressed") == "zlib" else body
    return vector


def all_vectors() -> list[Vector]:
    return [load_vector(p) for p in sorted(TESTKIT.iterdir()) if p.is_file() and p.suffix != ".md"]


VECTORS = all_vectors()
IMPLEMENTED = [v for v in VECTORS if v.skip_reason() is None]
SKIPPED = [v for v in VECTORS if v.skip_reason() is not None]


def identities_of(vector: Vector) -> list[Identity]:
    identities: list[Identity] = [
        X25519Identity.from_string(i) for i in vector.fields.get("identity", [])
    ]
    identities += [ScryptIdentity(p.encode()) for p in vector.fields.get("passphrase", [])]
    # a vector without keys only exercises parsing: any identity will do
    return identities or [X25519Identity.generate()]


def run(vector: Vector, read_size: int) -> tuple[AgeError | None, bytes, bytes | None]:
    """Decrypt, returning the error (if any), every released plaintext byte and the file key."""
    released = bytearray()
    file_key = None
    try:
        with Decryptor(identities_of(vector)).open(io.BytesIO(vector.body)) as reader:
            file_key = reader.state.file_key
            while chunk := reader.read(read_size):
                released += chunk
    except AgeError as exc:
        return exc, bytes(released), file_key
    return None, bytes(released), file_key


@pytest.mark.parametrize("vector", IMPLEMENTED, ids=[v.name for v in IMPLEMENTED])
@pytest.mark.parametrize("read_size", [1 << 20, 1000])
def test_vector_outcome_and_released_plaintext(vector: Vector, read_size: int) -> None:
    error, released, file_key = run(vector, read_size)
    expected = OUTCOMES[vector.one("expect") or ""]
    if expected is None:
        assert error is None, f"{vector.name}: unexpected {type(error).__name__}: {error}"
    else:
        assert isinstance(error, expected), f"{vector.name}: got {error!r}, want {expected}"
        if expected is HeaderError:
            assert not isinstance(error, HeaderMacError)
    payload = vector.one("payload")
    if payload is not None:
        assert hashlib.sha256(released).hexdigest() == payload
    else:
        assert released == b""
    if file_key is not None:
        assert file_key.hex() == vector.one("file key")


def test_vector_summary(capsys: pytest.CaptureFixture[str]) -> None:
    reasons: dict[str, int] = {}
    for vector in SKIPPED:
        reason = vector.skip_reason() or ""
        reasons[reason] = reasons.get(reason, 0) + 1
    with capsys.disabled():
        print(
            f"\nage vectors: {len(VECTORS)} total, {len(IMPLEMENTED)} run, {len(SKIPPED)} skipped"
        )
        for reason, count in sorted(reasons.items()):
            print(f"  skipped {count}: {reason}")
    assert len(VECTORS) == VECTOR_COUNT
    assert IMPLEMENTED
    assert not any("unknown" in r for r in reasons), reasons

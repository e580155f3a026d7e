"""Side-by-side throughput of uploader.crypto and the age CLI (encrypt and decrypt).

    /work/venv/bin/python bench/bench_crypto.py [--size 1GiB] [--repeat 3] [--dir /tmp]

Generates the plaintext in a temporary directory, then times file-to-file encryption and
decryption with ours and with `age` in the same run (best of --repeat, warm page cache),
checks every result decrypts to the original and prints MB/s and the ratio ours/age.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from uploader.crypto import decrypt_file, encrypt_file, load_identities, write_identity_file

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """'1GiB', '256M', '1048576' -> bytes (binary units)."""
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = value[-1] if value and value[-1] in _UNITS else ""
    return int(float(value[: len(value) - len(unit)]) * _UNITS[unit])


def make_plaintext(path: Path, size: int) -> str:
    """Random-looking data (a 16 MiB random block repeated; content does not matter to
    ChaCha20-Poly1305). Returns its SHA-256."""
    block = os.urandom(16 << 20)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def best_time(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", default="1GiB", help="plaintext size (default 1GiB)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement, best kept")
    parser.add_argument("--dir", default=None, help="where to create the temporary directory")
    args = parser.parse_args(argv)
    age = shutil.which("age")
    if age is None:
        print("age CLI not found on PATH", file=sys.stderr)
        return 2
    size = parse_size(args.size)
    version = subprocess.run([age, "--version"], capture_output=True, text=True, check=True)
    with tempfile.TemporaryDirectory(prefix="bench-crypto-", dir=args.dir) as tmp:
        work = Path(tmp)
        plain = work / "plain.bin"
        key = work / "key.txt"
        expected = make_plaintext(plain, size)
        recipient = write_identity_file(key).recipient()
        identities = load_identities(key)
        ours_ct, age_ct = work / "ours.age", work / "cli.age"
        ours_pt, age_pt = work / "ours.out", work / "cli.out"

        def ours_encrypt() -> None:
            with plain.open("rb", buffering=0) as src, ours_ct.open("wb", buffering=0) as dst:
                encrypt_file(src, dst, [recipient])

        def ours_decrypt() -> None:
            with ours_ct.open("rb", buffering=0) as src, ours_pt.open("wb", buffering=0) as dst:
                decrypt_file(src, dst, identities)

        def age_encrypt() -> None:
            cmd = [age, "-e", "-r", recipient.to_string(), "-o", str(age_ct), str(plain)]
            subprocess.run(cmd, check=True)

        def age_decrypt() -> None:
            cmd = [age, "-d", "-i", str(key), "-o", str(age_pt), str(age_ct)]
            subprocess.run(cmd, check=True)

        results = {}
        for op, ours, cli in (
            ("encrypt", ours_encrypt, age_encrypt),
            ("decrypt", ours_decrypt, age_decrypt),
        ):
            results[op] = (best_time(ours, args.repeat), best_time(cli, args.repeat))
        assert sha256_file(ours_pt) == expected, "ours: round trip mismatch"
        assert sha256_file(age_pt) == expected, "age: round trip mismatch"
        # cross-check: the CLI opens our archive
        subprocess.run([age, "-d", "-i", str(key), "-o", str(age_pt), str(ours_ct)], check=True)
        assert sha256_file(age_pt) == expected, "age could not decrypt our archive"

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"python {platform.python_version()}, age {version.stdout.strip()}, size {size} bytes")
    print(f"best of {args.repeat}, files in {args.dir or tempfile.gettempdir()}, warm cache")
    print("| operation | ours MB/s | age MB/s | ours/age |\n|---|---:|---:|---:|")
    for op, (ours_s, cli_s) in results.items():
        ours_mbs, cli_mbs = size / ours_s / 1e6, size / cli_s / 1e6
        print(f"| {op} | {ours_mbs:.0f} | {cli_mbs:.0f} | {cli_s / ours_s:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

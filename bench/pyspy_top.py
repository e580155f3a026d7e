"""Summarise ``py-spy record --format raw`` output: self and inclusive share per function.

    .venv/bin/python bench/pyspy_top.py PROFILE.txt [--top 20] [--lines]

Each line of the raw format is ``frame;frame;...;frame COUNT`` with frames written as
``function (file:line)``. Self time goes to the innermost frame, inclusive time to every
distinct function on the stack. ``--lines`` keeps line numbers in the self-time table.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def short(frame: str, lines: bool) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = m.group("file")
    for cut in ("/site-packages/", "/wt/perf/", "/lib/python3.11/"):
        if cut in file:
            file = file.split(cut, 1)[1]
            break
    line = f":{m.group('line')}" if lines and m.group("line") else ""
    return f"{file}:{m.group('func')}{line}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--lines", action="store_true")
    args = ap.parse_args()
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for raw in args.profile.read_text().splitlines():
        stack, _, count = raw.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if frames and frames[0].startswith("thread "):
            frames = frames[1:]
        if not frames:
            continue
        own[short(frames[-1], args.lines)] += n
        for name in {short(f, False) for f in frames}:
            incl[name] += n
    print(f"{total} samples")
    print("self:")
    for name, n in own.most_common(args.top):
        print(f"  {n / total:6.1%}  {name}")
    print("inclusive:")
    for name, n in incl.most_common(args.top):
        print(f"  {n / total:6.1%}  {name}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Code footprint of one request: the distinct instructions, and the 64-byte
code lines holding them, that run at least once per request.

Takes two callgrind profiles of the same loop with N1 and N2 requests,
recorded with `--dump-instr=yes`, and keeps the instruction addresses whose
count grew by at least N2 - N1 (so start-up, dials and one-off paths drop
out). A client that sleeps in `read` between requests starts each one with
caches others have used meanwhile, so its time per request follows these
lines more than its instruction count.

    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file=a BIN ... 1000
    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file=b BIN ... 3000
    python3 bench/footprint.py a b 2000 [TOP]   # TOP: the functions with most lines
"""
import collections
import re
import sys


def load(path):
    """Instructions executed per (object, address), and each address's function."""
    cost, owner, names = collections.Counter(), {}, {}
    obj, addr, fn, skip = None, 0, None, False
    for line in open(path):
        if line.startswith("ob="):
            obj = re.match(r"ob=\((\d+)\)", line).group(1)
        elif line.startswith(("fn=", "cfn=")):
            m = re.match(r"c?fn=\((\d+)\)\s*(.*)", line.rstrip("\n"))
            if m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith("fn="):
                fn = names.get(m.group(1), m.group(1))
        elif line.startswith("calls="):
            skip = True  # the next cost line is the call's inclusive cost
        elif line[:1] in "0123456789+-*":
            fields = line.split()
            a = fields[0]
            if a.startswith("0x"):
                addr = int(a, 16)
            elif a[0] in "+-":
                addr += int(a)
            if skip:
                skip = False
                continue
            if len(fields) >= 3:
                cost[(obj, addr)] += int(fields[2])
                owner[(obj, addr)] = fn
    return cost, owner


def main():
    a, _ = load(sys.argv[1])
    b, owner = load(sys.argv[2])
    n = int(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    hot = {k for k in b if b[k] - a.get(k, 0) >= n}
    lines = {(o, x // 64) for o, x in hot}
    total = sum(b[k] - a.get(k, 0) for k in b) / n
    print(f"instructions per request {total:.0f}; distinct hot instructions {len(hot)}; "
          f"hot 64-byte code lines {len(lines)} ({len(lines) * 64 / 1024:.1f} KiB)")
    per = collections.defaultdict(set)
    for k in hot:
        per[owner[k]].add((k[0], k[1] // 64))
    for f, s in sorted(per.items(), key=lambda x: -len(x[1]))[:top]:
        print(f"{len(s):5d} lines  {f[:110]}")


if __name__ == "__main__":
    main()

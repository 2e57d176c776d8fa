#!/usr/bin/env python3
"""Regenerates fuzz/corpus/{decode,differential,chunked} from the response
conformance inputs: the repository's copy (tests/conformance, the shared
corpus and the project's own cases), else ../../shared/conformance/responses,
or the folder named by ROUNDTRIP_CONFORMANCE_DIR.

- decode:       control header + input (method and EOF from the case)
- differential: the input as is
- chunked:      mode byte 0 + control header + the bytes after the head, for
                cases whose first head says Transfer-Encoding: chunked

The control header is described in src/lib.rs. Strings in the corpus are
Latin-1: each character is one byte.
"""
import glob
import hashlib
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
METHODS = {"GET": 0, "HEAD": 1, "CONNECT": 2, "POST": 3}


def conformance_dir():
    env = os.environ.get("ROUNDTRIP_CONFORMANCE_DIR")
    if env:
        return env
    # The repository's copy first: a fresh clone has no ../shared.
    for rel in (
        "../tests/conformance",
        "../../shared/conformance/responses",
        "../shared/conformance/responses",
    ):
        d = os.path.normpath(os.path.join(HERE, rel))
        if os.path.isdir(d):
            return d
    sys.exit("seed.py: conformance responses folder not found; set ROUNDTRIP_CONFORMANCE_DIR")


def header(method, eof):
    # flags, 4 limit bytes (unused: default limits), 0 explicit pieces
    return bytes([METHODS.get(method, 0) | (4 if eof else 0), 0, 0, 0, 0, 0])


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    src = conformance_dir()
    counts = {"decode": 0, "differential": 0, "chunked": 0}
    for path in sorted(glob.glob(os.path.join(src, "**", "*.json"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            cases = json.load(f)
        for case in cases:
            data = case["input"].encode("latin-1")
            method = case.get("method", "GET")
            name = re.sub(r"[^A-Za-z0-9._-]+", "_", case["id"])[:80]
            name += "-" + hashlib.sha1(case["id"].encode()).hexdigest()[:8]
            write("decode", name, header(method, case.get("closed", False)) + data)
            write("differential", name, data)
            counts["decode"] += 1
            counts["differential"] += 1
            end = data.find(b"\r\n\r\n")
            if end >= 0 and re.search(rb"(?im)^transfer-encoding:[ \t]*chunked[ \t]*\r?$", data[:end]):
                write("chunked", name, b"\x00" + header("GET", case.get("closed", False)) + data[end + 4:])
                counts["chunked"] += 1
    print("seed.py: " + ", ".join(f"{n} {t}" for t, n in counts.items()) + f" inputs from {src}")


if __name__ == "__main__":
    main()

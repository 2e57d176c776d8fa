#!/usr/bin/env bash
# User-space instructions per keep-alive GET of the blocking client, counted
# by callgrind: deterministic, where wall time on this shared 2-CPU VM is
# not. The client (examples/keepalive_loop.rs) runs N = 1000 and N = 3000
# GETs of a 13 B body against a canned loopback origin in a separate
# python process (not counted); (I(3000) - I(1000)) / 2000 is one request,
# the dial and the start-up excluded. Two response heads: 4 fields, and
# the 8 nginx sends.
#
#   bash bench/callgrind.sh        # prints one line per head
#
# Allocations per GET are not counted here: the tests
# tests/tests/allocations.rs and io-blocking/tests/chunked_reads.rs assert
# them. Needs valgrind and python3.
# Loopback only; every step under `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "bench/callgrind.sh: valgrind is not installed" >&2; exit 1; }

cargo build --release --example keepalive_loop >&2
BIN=${CARGO_TARGET_DIR:-target}/release/examples/keepalive_loop
TMP=$(mktemp -d)
ORIGINS=()
cleanup() {
    for pid in "${ORIGINS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# $1: the head's fields (CRLF-separated), $2: a file for the port
start_origin() {
    timeout 600 python3 - "$1" "$2" <<'PY' &
import socket, sys, threading
fields = sys.argv[1].encode()
reply = b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n\r\nHello, world!"
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[2], "w").write(str(s.getsockname()[1]))
def serve(c):
    pending = b""
    while True:
        data = c.recv(65536)
        if not data:
            return
        pending += data
        heads = pending.count(b"\r\n\r\n")
        pending = pending[pending.rfind(b"\r\n\r\n") + 4:] if heads else pending
        c.sendall(reply * heads)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
    ORIGINS+=("$!")
    for _ in $(seq 50); do [ -s "$2" ] && return; sleep 0.1; done
    echo "bench/callgrind.sh: the origin did not start" >&2
    exit 1
}

per_request() { # $1: url
    local i1 i3
    i1=$(timeout 300 valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.1000" "$BIN" "$1" 1000 2>&1 |
        awk '/Collected/ { print $4 }')
    i3=$(timeout 300 valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.3000" "$BIN" "$1" 3000 2>&1 |
        awk '/Collected/ { print $4 }')
    [ -n "$i1" ] && [ -n "$i3" ] || { echo "bench/callgrind.sh: callgrind counted nothing" >&2; exit 1; }
    echo $(((i3 - i1) / 2000))
}

FOUR='Server: x\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: Sun, 06 Dec 2026 20:00:00 GMT'
NGINX='Server: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 20:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nLast-Modified: Sun, 06 Dec 2026 19:00:00 GMT\r\nConnection: keep-alive\r\nETag: "6753a1b0-d"\r\nAccept-Ranges: bytes'
start_origin "$(printf "$FOUR")" "$TMP/port4"
start_origin "$(printf "$NGINX")" "$TMP/port8"
echo "commit $(git rev-parse --short HEAD); valgrind $(valgrind --version)"
echo "4 fields: $(per_request "http://127.0.0.1:$(cat "$TMP/port4")/") instructions per request"
echo "8 fields (nginx's): $(per_request "http://127.0.0.1:$(cat "$TMP/port8")/") instructions per request"

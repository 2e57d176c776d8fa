#!/usr/bin/env bash
# Loopback TLS benchmark against nginx (TLS 1.3, session tickets, keep-alive):
# roundtrip's four backends beside a hand-written std + rustls + httparse
# loop, hyper-util + hyper-rustls (the reference of every ratio), ureq 3,
# reqwest 0.12, curl and wrk (tests/benches/tls.rs).
#
#   bash bench/tls.sh            # prints a markdown report on stdout
#
# Steps: build the bench binary (release, `cargo bench --no-run`); write the
# test PKI (made now, with rcgen), the docroot and two nginx configurations
# into a temp dir (`tls --setup DIR`); start nginx twice, `taskset -c 0`
# (sequential workloads, beside the client) and `taskset -c 1` (64 in
# flight); wait (at most MAX_LOAD_WAIT s) for the 1-minute load to drop below
# 1.0; run ROUNDS interleaved rounds; measure the heap an idle pooled TLS
# connection holds (counting allocator); count syscalls per keep-alive
# request with `strace -f -c` on the client process only (nginx is another
# process): (calls with N requests - calls with 0) / N, the dial and
# handshake being in both.
#
# Every measurement command runs under `flock $LOCK`, so benchmarks of other
# sessions on this machine never overlap with ours (the wait for the lock is
# bounded by LOCK_WAIT s and is not part of the run time).
#
# Settings (environment): ROUNDS (5), REQUESTS (10000 sequential GETs of /small
# per client and round), BIG_REQUESTS (2000 of /64k), CONNS (500 new
# connections per client and round, resumed and full), INFLIGHT (64), SECS
# (1, per 64-in-flight run), WRK_SECS (1), CLIENTS and WORKLOADS (all; comma
# lists, see the binary's docs), STRACE_REQUESTS (5000), STRACE_CLIENTS
# (blocking hyper ureq raw tokio mio), MAX_LOAD_WAIT (60), ROUNDS_BUDGET
# (150: no round starts that would end later than this many seconds after
# the first one began), LOCK (/tmp/roundtrip-bench.lock), LOCK_WAIT (900),
# SCHED (none; rt: nginx `chrt -f 2`, client `chrt -r 1`, as bench/mio.sh),
# TLS_BIN (a bench binary built before, e.g. a copy kept from another
# commit for a before/after comparison: no build then).
# Needs: nginx, curl, wrk, strace, taskset, flock, 2 CPUs. Loopback only.
# Bounded: every step runs under `timeout`; about 4 minutes with the build
# cached and the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-10000}
BIG_REQUESTS=${BIG_REQUESTS:-2000}
CONNS=${CONNS:-500}
INFLIGHT=${INFLIGHT:-64}
SECS=${SECS:-1}
WRK_SECS=${WRK_SECS:-1}
CLIENTS=${CLIENTS:-raw,blocking,tokio,mio,smol,hyper,ureq,reqwest,curl,wrk}
WORKLOADS=${WORKLOADS:-small,64k,parallel,resumed,full}
STRACE_REQUESTS=${STRACE_REQUESTS:-5000}
STRACE_CLIENTS=${STRACE_CLIENTS:-blocking hyper ureq raw tokio mio}
MAX_LOAD_WAIT=${MAX_LOAD_WAIT:-60}
ROUNDS_BUDGET=${ROUNDS_BUDGET:-150}
LOCK=${LOCK:-/tmp/roundtrip-bench.lock}
LOCK_WAIT=${LOCK_WAIT:-900}
SCHED=${SCHED:-none}
case "$SCHED" in
rt) AS_SERVER=(chrt -f 2) AS_CLIENT=(chrt -r 1) ;;
none) AS_SERVER=() AS_CLIENT=() ;;
*) echo "bench/tls.sh: SCHED=$SCHED: want rt or none" >&2; exit 1 ;;
esac
locked() { flock -w "$LOCK_WAIT" "$LOCK" "$@"; }

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "bench/tls.sh: nginx is not installed" >&2; exit 1; }
for tool in curl wrk strace taskset flock; do
    command -v "$tool" >/dev/null || { echo "bench/tls.sh: $tool is not installed" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "bench/tls.sh: needs 2 CPUs (nginx apart on CPU 1)" >&2; exit 1; }

log() { echo "[bench $(date +%T)] $*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

. bench/bin.sh
BIN=$(bench_binary tls "${TLS_BIN:-}")
[ -x "$BIN" ] || { echo "bench/tls.sh: no bench binary found" >&2; exit 1; }

TMP=$(mktemp -d)
SERVER_PIDS=()
cleanup() {
    for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

timeout 60 "$BIN" --setup "$TMP" >"$TMP/addrs"
PINNED=$(awk '$1 == "pinned" { print $2 }' "$TMP/addrs")
APART=$(awk '$1 == "apart" { print $2 }' "$TMP/addrs")
CA="$TMP/ca.crt"
start_nginx() { # $1: cpu, $2: name, $3: address
    "${AS_SERVER[@]}" taskset -c "$1" "$NGINX" -p "$TMP" -c "$TMP/nginx-$2.conf" \
        -e "$TMP/nginx-$2-error.log" >"$TMP/nginx-$2.out" 2>&1 &
    SERVER_PIDS+=("$!")
    for _ in $(seq 50); do
        [ "$(curl -s --max-time 1 --cacert "$CA" "https://$3/small" || true)" = "Hello, world!" ] && return
        sleep 0.1
    done
    echo "bench/tls.sh: nginx ($2, $3) did not answer; its log:" >&2
    cat "$TMP/nginx-$2-error.log" "$TMP/nginx-$2.out" >&2 || true
    exit 1
}
start_nginx 0 pinned "$PINNED"
start_nginx 1 apart "$APART"
log "nginx on $PINNED (cpus $(taskset -pc "${SERVER_PIDS[0]}" | sed 's/.*: //')) and $APART (cpus $(taskset -pc "${SERVER_PIDS[1]}" | sed 's/.*: //'))"

log "uptime: $(uptime)"
waited=0
while awk -v l="$(load1)" 'BEGIN { exit !(l >= 1.0) }' && [ "$waited" -lt "$MAX_LOAD_WAIT" ]; do
    sleep 5
    waited=$((waited + 5))
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load before the run: $LOAD_BEFORE (waited ${waited}s)"

BENCH_ARGS=(--rounds "$ROUNDS" --requests "$REQUESTS" --big-requests "$BIG_REQUESTS"
    --conns "$CONNS" --inflight "$INFLIGHT" --secs "$SECS" --wrk-secs "$WRK_SECS"
    --max-secs "$ROUNDS_BUDGET" --clients "$CLIENTS" --workloads "$WORKLOADS")
log "rounds: $BIN ${BENCH_ARGS[*]} --pinned $PINNED --apart $APART --ca $CA"
locked sh -c 'cut -d" " -f1-3 /proc/loadavg >"$1"; shift; exec timeout 420 "$@"' sh \
    "$TMP/load-start" "${AS_CLIENT[@]}" "$BIN" "${BENCH_ARGS[@]}" \
    --pinned "$PINNED" --apart "$APART" --ca "$CA" >"$TMP/rounds.md"
LOAD_START=$(cat "$TMP/load-start")
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

log "memory: $BIN --memory --origin $PINNED --ca $CA"
locked timeout 120 "$BIN" --memory --origin "$PINNED" --ca "$CA" --clients "$CLIENTS" >"$TMP/memory.md"

# Syscalls of the client process per keep-alive request.
strace_calls() { # $1: client-workload, $2: requests; prints "name calls" lines
    locked timeout 120 strace -f -c -o "$TMP/strace" "${AS_CLIENT[@]}" taskset -c 0 "$BIN" \
        --only "$1" --origin "$PINNED" --ca "$CA" --requests "$2" >/dev/null
    # Columns: % time, seconds, usecs/call, calls, [errors], syscall.
    awk 'NR > 2 && $1 !~ /^-/ && $NF != "total" { print $NF, $4 }' "$TMP/strace"
}
{
    echo "| client, workload | syscalls per request | breakdown (per request) |"
    echo "|---|---:|---|"
    for client in $STRACE_CLIENTS; do
        for body in small 64k; do
            spec="$client-$body"
            log "strace: $spec"
            strace_calls "$spec" 0 >"$TMP/base"
            strace_calls "$spec" "$STRACE_REQUESTS" >"$TMP/run"
            awk -v n="$STRACE_REQUESTS" -v spec="$spec" '
                NR == FNR { base[$1] = $2; next }
                { d = $2 - base[$1]; if (d > 0) { per[$1] = d / n; total += d / n } }
                END {
                    out = ""
                    for (s in per) if (per[s] >= 0.005) out = out sprintf("%s%s %.2f", out == "" ? "" : ", ", s, per[s])
                    printf "| %s | %.2f | %s |\n", spec, total, out
                }' "$TMP/base" "$TMP/run"
        done
    done
} >"$TMP/syscalls.md"

cat <<EOF
### Run

- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) CPUs; $(uname -sr); $(rustc --version)
- server: $("$NGINX" -v 2>&1 | sed 's/.*: //') with $(openssl version 2>/dev/null | cut -d' ' -f1-2), TLS 1.3 only, \`ssl_session_cache shared\`, tickets on, \`keepalive_requests 1000000\`, access log off, one worker; certificates from \`roundtrip_tests::certs::pki()\` (ECDSA P-256), made for this run
- nginx: \`${AS_SERVER[*]:+${AS_SERVER[*]} }taskset -c 0 nginx -p DIR -c DIR/nginx-pinned.conf\` and \`... taskset -c 1 ... nginx-apart.conf\` (configurations written by \`$(basename "$BIN") --setup DIR\`)
- load (1/5/15 min) before: $LOAD_BEFORE; when the rounds began (lock held): $LOAD_START; after the rounds: $LOAD_AFTER
- rounds: \`${AS_CLIENT[*]:+${AS_CLIENT[*]} }$(basename "$BIN") ${BENCH_ARGS[*]} --pinned ADDR0 --apart ADDR1 --ca DIR/ca.crt\` (pins itself to CPU 0; curl and wrk are its children)
- memory: \`$(basename "$BIN") --memory --origin ADDR0 --ca DIR/ca.crt\`
- syscalls: \`strace -f -c taskset -c 0 $(basename "$BIN") --only CLIENT-WORKLOAD --origin ADDR0 --ca DIR/ca.crt --requests N\`, N = $STRACE_REQUESTS minus N = 0
- crypto: every Rust client rustls 0.23 + aws-lc-rs (the same rustls build: X25519MLKEM768 offered first with an X25519 share beside it; nginx's OpenSSL 3.0 picks X25519); curl $(curl --version | head -n 1 | grep -o 'OpenSSL/[0-9.]*'), wrk the system OpenSSL

EOF
cat "$TMP/rounds.md"
echo
echo "#### Heap held by one idle pooled TLS connection after one GET on a new client ($(basename "$BIN") --memory: counting allocator, live bytes after minus before, client kept; malloc in use from mallinfo2, which also sees aws-lc's C allocations; 7 measurements per cell)"
echo
cat "$TMP/memory.md"
echo
echo "#### Syscalls per keep-alive request (client process only, strace -f -c)"
echo
cat "$TMP/syscalls.md"

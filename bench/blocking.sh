#!/usr/bin/env bash
# Loopback speed benchmark of roundtrip's blocking backend, side by side with
# ureq 3, the raw loop (std + httparse) and wrk (tests/benches/blocking.rs).
#
#   bash bench/blocking.sh            # prints a markdown report on stdout
#
# Steps: build the bench binary (release, `cargo bench --no-run`); wait (at
# most MAX_LOAD_WAIT s) for the 1-minute load to drop below 1.0; start the
# origin twice as separate processes (`taskset -c 0` for the sequential
# workloads, all CPUs for the parallel one); run ROUNDS interleaved rounds
# (the binary also starts nginx twice, pinned the same way); measure idle
# memory and allocations; count syscalls per request with `strace -f -c` on
# the client process only (the origin is another process).
#
# Every measurement command runs under `flock $LOCK`, so benchmarks of other
# sessions on this machine never overlap with ours (the wait for the lock is
# bounded by LOCK_WAIT s and is not part of the run time).
#
# Settings (environment): ROUNDS (7), REQUESTS (20000 sequential GETs of
# /small per client and round), BIG_REQUESTS (10000 of /64k), THREADS (64),
# PER_THREAD (500), WRK_SECS (1), STRACE_REQUESTS (10000), MAX_LOAD_WAIT (60),
# ROUNDS_BUDGET (150: no round starts that would end later than this many
# seconds after the first one began; the report says how many ran), LOCK
# (/tmp/roundtrip-bench.lock), LOCK_WAIT (900), BLOCKING_BIN (a bench
# binary built before, e.g. a copy kept from another commit for a
# before/after comparison: no build then).
# Needs: taskset, wrk, strace, nginx, flock. Loopback only. Bounded: 3.5 minutes
# here with the build cached (wait included); a rebuild after a change to the
# code under test adds 1 to 3 minutes on a loaded machine.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-7}
REQUESTS=${REQUESTS:-20000}
BIG_REQUESTS=${BIG_REQUESTS:-10000}
THREADS=${THREADS:-64}
PER_THREAD=${PER_THREAD:-500}
WRK_SECS=${WRK_SECS:-1}
STRACE_REQUESTS=${STRACE_REQUESTS:-10000}
MAX_LOAD_WAIT=${MAX_LOAD_WAIT:-60}
ROUNDS_BUDGET=${ROUNDS_BUDGET:-150}
LOCK=${LOCK:-/tmp/roundtrip-bench.lock}
LOCK_WAIT=${LOCK_WAIT:-900}
locked() { flock -w "$LOCK_WAIT" "$LOCK" "$@"; }

for tool in taskset wrk strace nginx flock; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
        echo "bench/blocking.sh: $tool is not installed" >&2
        exit 1
    }
done

log() { echo "[bench] $*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

. bench/bin.sh
BIN=$(bench_binary blocking "${BLOCKING_BIN:-}")
[ -x "$BIN" ] || { echo "bench/blocking.sh: no bench binary found" >&2; exit 1; }

TMP=$(mktemp -d)
ORIGIN_PIDS=()
cleanup() {
    for pid in "${ORIGIN_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

log "uptime: $(uptime)"
waited=0
while awk -v l="$(load1)" 'BEGIN { exit !(l >= 1.0) }' && [ "$waited" -lt "$MAX_LOAD_WAIT" ]; do
    sleep 5
    waited=$((waited + 5))
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load before the run: $LOAD_BEFORE (waited ${waited}s)"

ALL_CPUS="0-$(($(nproc) - 1))"
start_origin() { # $1: cpu list, $2: address file
    taskset -c "$1" "$BIN" --serve-origin >"$2" &
    ORIGIN_PIDS+=("$!")
    for _ in $(seq 50); do [ -s "$2" ] && break; sleep 0.1; done
    [ -s "$2" ] || { echo "bench/blocking.sh: the origin did not start" >&2; exit 1; }
}
start_origin 0 "$TMP/origin-pinned"
start_origin "$ALL_CPUS" "$TMP/origin-free"
ORIGIN=$(head -n 1 "$TMP/origin-pinned")
ORIGIN_FREE=$(head -n 1 "$TMP/origin-free")

BENCH_ARGS=(--rounds "$ROUNDS" --requests "$REQUESTS" --big-requests "$BIG_REQUESTS"
    --threads "$THREADS" --per-thread "$PER_THREAD" --wrk-secs "$WRK_SECS"
    --max-secs "$ROUNDS_BUDGET" --origin "$ORIGIN" --origin-free "$ORIGIN_FREE")
log "rounds: $BIN ${BENCH_ARGS[*]}"
locked sh -c 'cut -d" " -f1-3 /proc/loadavg >"$1"; shift; exec timeout 300 "$@"' sh \
    "$TMP/load-start" "$BIN" "${BENCH_ARGS[@]}" >"$TMP/rounds.md"
LOAD_START=$(cat "$TMP/load-start")
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

log "memory: $BIN --memory --origin $ORIGIN"
locked timeout 60 "$BIN" --memory --origin "$ORIGIN" >"$TMP/memory.md"

# Syscalls of the client process per request: (calls with N requests - calls
# with 0 requests) / N, so start-up and exit are not counted.
strace_calls() { # $1: client-workload, $2: requests; prints "name calls" lines
    locked strace -f -c -o "$TMP/strace" taskset -c 0 "$BIN" --only "$1" --origin "$ORIGIN" \
        --requests "$2" >/dev/null
    # Columns: % time, seconds, usecs/call, calls, [errors], syscall.
    awk 'NR > 2 && $1 !~ /^-/ && $NF != "total" { print $NF, $4 }' "$TMP/strace"
}
{
    echo "| client, workload | syscalls per request | breakdown (per request) |"
    echo "|---|---:|---|"
    for spec in roundtrip-small ureq-small raw-small roundtrip-64k ureq-64k raw-64k; do
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
} >"$TMP/syscalls.md"

cat <<EOF
### Run

- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) CPUs; $(uname -sr)
- load (1/5/15 min) before: $LOAD_BEFORE; when the rounds began (lock held): $LOAD_START; after the rounds: $LOAD_AFTER
- rounds: \`$(basename "$BIN") ${BENCH_ARGS[*]}\` (origins: \`taskset -c 0 $(basename "$BIN") --serve-origin\` and \`taskset -c $ALL_CPUS ... --serve-origin\`)
- syscalls: \`strace -f -c taskset -c 0 $(basename "$BIN") --only CLIENT-WORKLOAD --origin ADDR --requests N\`, N = $STRACE_REQUESTS minus N = 0

EOF
cat "$TMP/rounds.md"
echo
echo "#### Idle memory and allocations (counting global allocator in the bench binary)"
echo
cat "$TMP/memory.md"
echo
echo "#### Syscalls per request (client process only, strace -f -c)"
echo
cat "$TMP/syscalls.md"

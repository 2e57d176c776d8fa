#!/usr/bin/env bash
# Loopback speed benchmark of roundtrip's tokio backend, side by side with
# hyper 1 + hyper-util's legacy Client, reqwest 0.12 and wrk
# (tests/benches/tokio.rs).
#
#   bash bench/tokio.sh            # prints a markdown report on stdout
#
# Steps: build the bench binary (release, `cargo bench --no-run`); wait (at
# most MAX_LOAD_WAIT s) for the 1-minute load to drop below 1.0; start the
# origin pinned to CPU 0 (`taskset -c 0`, a thread per connection) for the
# sequential workloads and the evented one on CPU 1 for the parallel ones;
# run ROUNDS interleaved rounds of every client on every workload; count syscalls per
# request with `strace -f -c` on the client process only (the origin is
# another process).
#
# Every measurement command runs under `flock $LOCK`, so benchmarks of other
# sessions on this machine never overlap with ours (the wait for the lock is
# bounded by LOCK_WAIT s and is not part of the run time).
#
# Settings (environment): ROUNDS (7), REQUESTS (30000 sequential GETs of
# /small per client and round), BIG_REQUESTS (10000 of /64k), TASKS (64),
# PARALLEL_REQUESTS (38400 GETs over the TASKS tasks), WRK_SECS (1),
# STRACE_REQUESTS (6400), MAX_LOAD_WAIT (30), LOCK (/tmp/roundtrip-bench.lock),
# LOCK_WAIT (900), TOKIO_BIN (a bench binary built before, e.g. a copy kept
# from another commit for a before/after comparison: no build then). Needs: taskset, wrk, strace, flock. Loopback only.
# Bounded: the rounds run under `timeout`; the measurements take about
# 2.5 minutes here.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-7}
REQUESTS=${REQUESTS:-30000}
BIG_REQUESTS=${BIG_REQUESTS:-10000}
TASKS=${TASKS:-64}
PARALLEL_REQUESTS=${PARALLEL_REQUESTS:-38400}
WRK_SECS=${WRK_SECS:-1}
STRACE_REQUESTS=${STRACE_REQUESTS:-6400}
MAX_LOAD_WAIT=${MAX_LOAD_WAIT:-30}
LOCK=${LOCK:-/tmp/roundtrip-bench.lock}
LOCK_WAIT=${LOCK_WAIT:-900}

for tool in taskset wrk strace flock; do
    command -v "$tool" >/dev/null || {
        echo "bench/tokio.sh: $tool is not installed" >&2
        exit 1
    }
done

log() { echo "[bench] $*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }
locked() { flock -w "$LOCK_WAIT" "$LOCK" "$@"; }

. bench/bin.sh
BIN=$(bench_binary tokio "${TOKIO_BIN:-}")
[ -x "$BIN" ] || { echo "bench/tokio.sh: no bench binary found" >&2; exit 1; }

TMP=$(mktemp -d)
ORIGIN_PID=
PARALLEL_PID=
cleanup() {
    [ -n "$ORIGIN_PID" ] && kill "$ORIGIN_PID" 2>/dev/null || true
    [ -n "$PARALLEL_PID" ] && kill "$PARALLEL_PID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

log "uptime: $(uptime)"
waited=0
while awk -v l="$(load1)" 'BEGIN { exit !(l >= 1.0) }' && [ "$waited" -lt "$MAX_LOAD_WAIT" ]; do
    sleep 5
    waited=$((waited + 5))
done
UPTIME_BEFORE=$(uptime)
log "before the run: $UPTIME_BEFORE (waited ${waited}s)"

taskset -c 0 "$BIN" --serve-origin >"$TMP/origin" &
ORIGIN_PID=$!
# The parallel workloads' origin: one event loop on the other CPU (64
# threads of the first one on the client's CPUs were likely its bottleneck).
taskset -c 1 "$BIN" --serve-origin-evented >"$TMP/origin-parallel" &
PARALLEL_PID=$!
for _ in $(seq 50); do [ -s "$TMP/origin" ] && [ -s "$TMP/origin-parallel" ] && break; sleep 0.1; done
[ -s "$TMP/origin" ] && [ -s "$TMP/origin-parallel" ] ||
    { echo "bench/tokio.sh: the origins did not start" >&2; exit 1; }
ORIGIN=$(head -n 1 "$TMP/origin")
ORIGIN_PARALLEL=$(head -n 1 "$TMP/origin-parallel")
log "origin pid $ORIGIN_PID on $ORIGIN, $(grep Cpus_allowed_list "/proc/$ORIGIN_PID/status" | tr -s '\t' ' ')"
log "parallel origin pid $PARALLEL_PID on $ORIGIN_PARALLEL, $(grep Cpus_allowed_list "/proc/$PARALLEL_PID/status" | tr -s '\t' ' ')"

BENCH_ARGS=(--rounds "$ROUNDS" --requests "$REQUESTS" --big-requests "$BIG_REQUESTS"
    --tasks "$TASKS" --parallel-requests "$PARALLEL_REQUESTS" --wrk-secs "$WRK_SECS"
    --origin "$ORIGIN" --origin-parallel "$ORIGIN_PARALLEL")
log "rounds: $BIN ${BENCH_ARGS[*]}"
locked timeout 240 "$BIN" "${BENCH_ARGS[@]}" >"$TMP/rounds.md"
UPTIME_AFTER=$(uptime)

# Syscalls of the client process per request: (calls with N requests - calls
# with 0 requests) / N, so start-up, dials and exit are not counted. The
# binary pins itself to CPU 0 for the sequential workloads.
strace_calls() { # $1: client-workload, $2: requests; prints "name calls" lines
    locked strace -f -c -o "$TMP/strace" "$BIN" --only "$1" --origin "$ORIGIN" \
        --origin-parallel "$ORIGIN_PARALLEL" --tasks "$TASKS" --requests "$2" >/dev/null
    # Columns: % time, seconds, usecs/call, calls, [errors], syscall.
    awk 'NR > 2 && $1 !~ /^-/ && $NF != "total" { print $NF, $4 }' "$TMP/strace"
}
{
    echo "| client, workload | syscalls per request | breakdown (per request) |"
    echo "|---|---:|---|"
    for spec in roundtrip-small hyper-small reqwest-small \
        roundtrip-64k hyper-64k reqwest-64k \
        roundtrip-parallel hyper-parallel reqwest-parallel \
        roundtrip-parallel-64k hyper-parallel-64k; do
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

- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) CPUs; $(uname -sr); $(rustc --version)
- uptime before: $UPTIME_BEFORE
- uptime after the rounds: $UPTIME_AFTER
- origins: \`taskset -c 0 $(basename "$BIN") --serve-origin\` (sequential workloads), \`taskset -c 1 $(basename "$BIN") --serve-origin-evented\` (parallel workloads)
- rounds: \`$(basename "$BIN") ${BENCH_ARGS[*]}\`
- syscalls: \`strace -f -c $(basename "$BIN") --only CLIENT-WORKLOAD --origin ADDR --tasks $TASKS --requests N\`, N = $STRACE_REQUESTS minus N = 0

EOF
cat "$TMP/rounds.md"
echo
echo "#### Syscalls per request (client process only, strace -f -c)"
echo
cat "$TMP/syscalls.md"

#!/usr/bin/env bash
# Loopback speed benchmark of roundtrip's mio backend: one Driver on one
# thread with 1, 64 and 256 requests in flight, beside wrk (-t1 -cN) and the
# tokio backend (current-thread runtime, N tasks) (tests/benches/mio.rs).
#
#   bash bench/mio.sh            # prints a markdown report on stdout
#
# Steps: build the bench binary (release, `cargo bench --no-run`); start the
# origin twice as separate processes, `taskset -c 0` (shared with the client,
# for 1 in flight) and `taskset -c 1` (64 and 256 in flight: client and
# origin get one core each); wait (at most MAX_LOAD_WAIT s) for the 1-minute
# load to drop below MAX_LOAD; run ROUNDS interleaved rounds; count syscalls
# per request of the client process, with `strace -f -c` (what the goal is
# stated in) and with `perf stat` on the syscall tracepoints (no slowdown, so
# the batching of readiness events is the real one).
#
# Every measurement holds /tmp/roundtrip-bench.lock (flock), so benchmarks of
# other sessions never overlap with it; the build does not. Builds, tests and
# fuzzers of other sessions may still run, and under CFS (EEVDF) a woken
# origin thread can wait a whole slice behind one of them, which cut the
# throughput at 64 in flight by 10-20x in trials here (even at nice -10). So
# with SCHED=rt (the default when root) the origins run `chrt -f 2` and the
# client (and wrk, its child) `chrt -r 1`: a woken origin thread runs at once,
# as on an idle machine (on the shared CPU 0 it preempts the client, as CFS
# wakeup preemption does there), and the kernel's RT throttling still leaves
# other tasks 5% of each CPU. (Round-robin, not FIFO, for the client: wrk's
# main thread, pinned to the same CPU as its busy worker, must get to run to
# end the test.) SCHED=none runs everything as started. The load is printed
# with the results.
#
# Settings (environment): ROUNDS (7), SECS (1, per run), INFLIGHT (1,64,256),
# SYSCALL_REQUESTS (20000), MAX_LOAD (1.5), MAX_LOAD_WAIT (30), SCHED (rt as
# root, else none), MIO_BIN (a bench binary built before, e.g. a copy kept
# from another commit for a before/after comparison: no build then).
# Needs: taskset, wrk, strace, flock; perf is optional. Loopback only.
# Bounded: every step runs under `timeout`; about 5 minutes here, plus the
# wait for the lock.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-7}
SECS=${SECS:-1}
INFLIGHT=${INFLIGHT:-1,64,256}
SYSCALL_REQUESTS=${SYSCALL_REQUESTS:-20000}
MAX_LOAD=${MAX_LOAD:-1.5}
MAX_LOAD_WAIT=${MAX_LOAD_WAIT:-30}
if [ "$(id -u)" = 0 ]; then SCHED=${SCHED:-rt}; else SCHED=${SCHED:-none}; fi
case "$SCHED" in
rt) AS_ORIGIN=(chrt -f 2) AS_CLIENT=(chrt -r 1) ;;
none) AS_ORIGIN=() AS_CLIENT=() ;;
*) echo "bench/mio.sh: SCHED=$SCHED: want rt or none" >&2; exit 1 ;;
esac
LOCK=/tmp/roundtrip-bench.lock

for tool in taskset wrk strace flock; do
    command -v "$tool" >/dev/null || {
        echo "bench/mio.sh: $tool is not installed" >&2
        exit 1
    }
done
[ "$(nproc)" -ge 2 ] || { echo "bench/mio.sh: needs 2 CPUs (client on 0, origin on 1)" >&2; exit 1; }

log() { echo "[bench $(date +%T)] $*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

. bench/bin.sh
BIN=$(bench_binary mio "${MIO_BIN:-}")
[ -x "$BIN" ] || { echo "bench/mio.sh: no bench binary found" >&2; exit 1; }

TMP=$(mktemp -d)
ORIGIN_PIDS=()
cleanup() {
    for pid in "${ORIGIN_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

start_origin() { # $1: cpu, $2: address file, $3: --serve-origin[-evented]
    "${AS_ORIGIN[@]}" taskset -c "$1" "$BIN" "$3" >"$2" &
    ORIGIN_PIDS+=("$!")
    for _ in $(seq 50); do [ -s "$2" ] && break; sleep 0.1; done
    [ -s "$2" ] || { echo "bench/mio.sh: the origin did not start" >&2; exit 1; }
}
# One thread per connection for 1 in flight (a blocking read is the cheapest
# wait at one connection); one event loop for 64 and 256, where a thread per
# connection made the origin the bottleneck (97-99% of CPU 1).
start_origin 0 "$TMP/origin-shared" --serve-origin
start_origin 1 "$TMP/origin-apart" --serve-origin-evented
SHARED=$(head -n 1 "$TMP/origin-shared")
APART=$(head -n 1 "$TMP/origin-apart")
origin_for() { if [ "$1" = 1 ]; then echo "$SHARED"; else echo "$APART"; fi; }

log "uptime: $(uptime)"
waited=0
while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l >= m) }' && [ "$waited" -lt "$MAX_LOAD_WAIT" ]; do
    sleep 5
    waited=$((waited + 5))
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load before the run: $LOAD_BEFORE (waited ${waited}s)"

BENCH_ARGS=(--rounds "$ROUNDS" --secs "$SECS" --inflight "$INFLIGHT"
    --origin-shared "$SHARED" --origin-apart "$APART")
log "rounds: $BIN ${BENCH_ARGS[*]}"
flock "$LOCK" timeout 300 "${AS_CLIENT[@]}" "$BIN" "${BENCH_ARGS[@]}" >"$TMP/rounds.md"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------
# Syscalls of the client process per request. Our clients: (calls with N + R
# requests - calls with N requests) / R, N = in flight, so start-up, the N
# connects and exit are not counted. wrk: (calls in 3 s - calls in 1 s) /
# (requests in 3 s - requests in 1 s).

HAVE_PERF=0
if command -v perf >/dev/null &&
    perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
    HAVE_PERF=1
fi
PERF_EVENTS=raw_syscalls:sys_enter
for s in epoll_wait epoll_ctl read recvfrom writev write sendto; do
    PERF_EVENTS="$PERF_EVENTS,syscalls:sys_enter_$s"
done

# $1: output file, $2...: command. Prints "name calls" lines.
strace_counts() {
    local out=$1
    shift
    flock "$LOCK" timeout 60 "${AS_CLIENT[@]}" strace -f -c -o "$out.raw" "$@" >"$out.stdout"
    # Columns: % time, seconds, usecs/call, calls, [errors], syscall.
    awk 'NR > 2 && $1 !~ /^-/ && $NF != "total" { print $NF, $4 }' "$out.raw" >"$out"
}
perf_counts() {
    local out=$1
    shift
    flock "$LOCK" timeout 60 "${AS_CLIENT[@]}" perf stat -x, -o "$out.raw" -e "$PERF_EVENTS" "$@" >"$out.stdout"
    awk -F, '$3 ~ /sys_enter/ { n = $3; sub(/.*sys_enter_?/, "", n); if (n == "") n = "all"; print n, $1 }' \
        "$out.raw" >"$out"
}
# $1 base counts, $2 run counts, $3 requests between them, $4 the key of the
# total ("" = sum of all). Prints "total | breakdown".
per_request() {
    awk -v n="$3" -v all="$4" '
        NR == FNR { base[$1] = $2; next }
        {
            d = ($2 - base[$1]) / n
            if ($1 == all) { total = d; next }
            if (all == "" && d > 0) total += d
            if (d >= 0.005) { out = out sprintf("%s%s %.2f", out == "" ? "" : ", ", $1, d) }
        }
        END { printf "%.2f | %s", total, out }' "$1" "$2"
}
wrk_requests() { grep -o '^ *[0-9]* requests in' "$1" | grep -o '[0-9]*' | head -n 1; }

{
    echo "| client, body, in flight | strace -f -c: syscalls/request | breakdown | perf stat: syscalls/request | breakdown |"
    echo "|---|---:|---|---:|---|"
    for spec in mio-small-1 tokio-small-1 mio-small-64 mio-collect-small-64 tokio-small-64 \
        mio-small-256 tokio-small-256 mio-64k-64 tokio-64k-64; do
        n=${spec##*-}
        origin=$(origin_for "$n")
        log "syscalls: $spec"
        row="| $spec |"
        for tool in strace perf; do
            [ "$tool" = perf ] && [ "$HAVE_PERF" = 0 ] && { row="$row n/a | |"; continue; }
            for r in 0 "$SYSCALL_REQUESTS"; do
                "${tool}_counts" "$TMP/$tool-$r" taskset -c 0 "$BIN" --only "$spec" \
                    --origin "$origin" --requests $((n + r))
            done
            key=""
            [ "$tool" = perf ] && key=all
            row="$row $(per_request "$TMP/$tool-0" "$TMP/$tool-$SYSCALL_REQUESTS" "$SYSCALL_REQUESTS" "$key") |"
        done
        echo "$row"
    done
    for n in 1 64; do
        origin=$(origin_for "$n")
        log "syscalls: wrk -c$n"
        row="| wrk-small-$n |"
        for tool in strace perf; do
            [ "$tool" = perf ] && [ "$HAVE_PERF" = 0 ] && { row="$row n/a | |"; continue; }
            for d in 1 3; do
                "${tool}_counts" "$TMP/$tool-wrk$d" taskset -c 0 wrk -t1 "-c$n" "-d${d}s" "http://$origin/small"
            done
            reqs=$(($(wrk_requests "$TMP/$tool-wrk3.stdout") - $(wrk_requests "$TMP/$tool-wrk1.stdout")))
            key=""
            [ "$tool" = perf ] && key=all
            row="$row $(per_request "$TMP/$tool-wrk1" "$TMP/$tool-wrk3" "$reqs" "$key") |"
        done
        echo "$row"
    done
} >"$TMP/syscalls.md"

cat <<EOF
### Run

- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) CPUs; $(uname -sr)
- load (1/5/15 min) before: $LOAD_BEFORE; after the rounds: $LOAD_AFTER
- scheduling: SCHED=$SCHED (origins \`${AS_ORIGIN[*]:-as started}\`, client and wrk \`${AS_CLIENT[*]:-as started}\`)
- rounds: \`flock $LOCK ${AS_CLIENT[*]} $(basename "$BIN") ${BENCH_ARGS[*]}\`
  (origins: \`${AS_ORIGIN[*]} taskset -c 0 $(basename "$BIN") --serve-origin\` and \`... taskset -c 1 ... --serve-origin-evented\`;
  the bench thread pins itself to CPU 0, wrk runs as \`taskset -c 0 wrk -t1 -cN -d${SECS}s\`)
- syscalls: \`strace -f -c\` and \`perf stat -e raw_syscalls:sys_enter,...\` on
  \`taskset -c 0 $(basename "$BIN") --only CLIENT-BODY-N --origin ADDR --requests N+R\`, R = $SYSCALL_REQUESTS, minus the same with R = 0;
  wrk: 3 s run minus 1 s run
EOF
cat "$TMP/rounds.md"
echo
echo "#### Syscalls per request (client process only)"
echo
cat "$TMP/syscalls.md"

#!/usr/bin/env bash
# 10,000 connections on one CPU (tests/benches/many.rs): each of
# roundtrip's clients keeps CONNS requests in flight over CONNS connections
# (13 B /small bodies, or 64 KiB /64k ones, streamed and counted), beside
# `wrk -t1 -cCONNS`, against the evented origin; requests/s and memory per
# connection (in flight and idle), in interleaved rounds; then the byte
# breakdown of one connection of each client (counting allocator). The
# clients (BACKENDS):
# - mio: one roundtrip_mio::Driver on one thread;
# - tokio: one roundtrip_tokio::Client shared by CONNS tasks on a
#   current-thread runtime (one thread);
# - blocking: one roundtrip_blocking::Client shared by CONNS threads of
#   64 KiB stack, each reading bodies into an 8 KiB buffer; their resident
#   stacks are reported apart (issue #16 counts "the thread's stack" on top).
#
#   bash bench/many.sh            # prints a markdown report on stdout
#
# Steps: build the bench binary (release, `cargo bench --no-run`); raise the
# file limit of this shell (`ulimit -n`, inherited by the origin, the bench
# and wrk; the bench raises its own too, with setrlimit); start the evented
# origin `taskset -c 1`; wait (at most MAX_LOAD_WAIT s) for the 1-minute
# load to drop below MAX_LOAD; run ROUNDS rounds, each a fresh client
# process per backend and a wrk run, all `taskset -c 0`, their order
# rotated each round; then `--memory` per backend. Scheduling as in
# bench/mio.sh: with SCHED=rt (the default as root) the origin runs
# `chrt -f 2` and the clients `chrt -r 1`, so that other sessions' builds on
# the same CPUs do not decide the result. The blocking client's threads
# count in the load average while they run: the load after the rounds is
# theirs as much as other sessions'.
#
# Every measurement holds /tmp/roundtrip-bench.lock (flock); the build does
# not. Loopback only.
#
# Settings (environment): ROUNDS (5), SECS (5, per run), CONNS (10000),
# BODY_PATH (/small; /64k for 64 KiB bodies, what issue #16 asks at 256),
# BACKENDS (mio,tokio,blocking: the clients beside wrk, comma-separated;
# the default 10,000 connections make the blocking client 10,000 threads),
# MAX_LOAD (1.2), MAX_LOAD_WAIT (300), SCHED (rt as root, else none),
# MANY_BIN (a bench binary built before, e.g. a copy kept from another
# commit for a before/after comparison: no build then).
# Between runs the binary waits (at most 75 s each) until fewer than 1,000
# sockets are left in TIME_WAIT: a run right after another one of 10,000
# connections was 30-60% slower here, whichever client it was.
# Needs: taskset, wrk, flock. Bounded: every step runs under `timeout`;
# about 4 minutes here plus a minute a run at 10,000 connections for the
# TIME_WAIT sockets, plus the waits for the load and the lock.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
SECS=${SECS:-5}
CONNS=${CONNS:-10000}
BODY_PATH=${BODY_PATH:-/small}
BACKENDS=${BACKENDS:-mio,tokio,blocking}
MAX_LOAD=${MAX_LOAD:-1.2}
MAX_LOAD_WAIT=${MAX_LOAD_WAIT:-300}
if [ "$(id -u)" = 0 ]; then SCHED=${SCHED:-rt}; else SCHED=${SCHED:-none}; fi
case "$SCHED" in
rt) AS_ORIGIN=(chrt -f 2) AS_CLIENT=(chrt -r 1) ;;
none) AS_ORIGIN=() AS_CLIENT=() ;;
*) echo "bench/many.sh: SCHED=$SCHED: want rt or none" >&2; exit 1 ;;
esac
LOCK=/tmp/roundtrip-bench.lock

for tool in taskset wrk flock; do
    command -v "$tool" >/dev/null || {
        echo "bench/many.sh: $tool is not installed" >&2
        exit 1
    }
done
[ "$(nproc)" -ge 2 ] || { echo "bench/many.sh: needs 2 CPUs (client on 0, origin on 1)" >&2; exit 1; }

log() { echo "[many $(date +%T)] $*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# The file limit: two runs' connections for the origin (one run's close
# while the next connects), plus room. Up to the hard limit; raising that
# needs CAP_SYS_RESOURCE.
want=$((2 * CONNS + 1024))
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((CONNS + 64)) ] || {
    echo "bench/many.sh: ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)); $CONNS connections need more" >&2
    exit 1
}

. bench/bin.sh
BIN=$(bench_binary many "${MANY_BIN:-}")
[ -x "$BIN" ] || { echo "bench/many.sh: no bench binary found" >&2; exit 1; }

TMP=$(mktemp -d)
ORIGIN_PID=
cleanup() {
    [ -n "$ORIGIN_PID" ] && kill "$ORIGIN_PID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

"${AS_ORIGIN[@]}" taskset -c 1 "$BIN" --serve-origin-evented --conns "$CONNS" >"$TMP/origin" &
ORIGIN_PID=$!
for _ in $(seq 50); do [ -s "$TMP/origin" ] && break; sleep 0.1; done
[ -s "$TMP/origin" ] || { echo "bench/many.sh: the origin did not start" >&2; exit 1; }
ORIGIN=$(head -n 1 "$TMP/origin")
PORT=${ORIGIN##*:}
BACKLOG=$(ss -ltnH "sport = :$PORT" | awk '{ print $3 }')
ORIGIN_NOFILE=$(awk '/Max open files/ { print $4 }' "/proc/$ORIGIN_PID/limits")

log "uptime: $(uptime)"
waited=0
while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l >= m) }' && [ "$waited" -lt "$MAX_LOAD_WAIT" ]; do
    sleep 5
    waited=$((waited + 5))
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load before the run: $LOAD_BEFORE (waited ${waited}s)"
# The first run too starts without an earlier run's TIME_WAIT sockets (the
# binary drains them between its runs).
time_wait() { awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "tw") print $(i + 1) }' /proc/net/sockstat; }
for _ in $(seq 75); do [ "$(time_wait)" -lt 1000 ] && break; sleep 1; done
log "sockets in TIME_WAIT before the run: $(time_wait)"

BENCH_ARGS=(--rounds "$ROUNDS" --secs "$SECS" --conns "$CONNS" --origin "$ORIGIN" --path "$BODY_PATH"
    --backends "$BACKENDS")
log "rounds: $BIN ${BENCH_ARGS[*]}"
START=$(date -u '+%F %T UTC')
flock "$LOCK" timeout 1800 "${AS_CLIENT[@]}" "$BIN" "${BENCH_ARGS[@]}" >"$TMP/rounds.md"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
IFS=, read -r -a BACKEND_LIST <<<"$BACKENDS"
for backend in "${BACKEND_LIST[@]}"; do
    log "memory: $BIN --memory --backend $backend --conns $CONNS --path $BODY_PATH"
    flock "$LOCK" timeout 300 "${AS_CLIENT[@]}" taskset -c 0 "$BIN" --memory --backend "$backend" \
        --conns "$CONNS" --path "$BODY_PATH" --origin "$ORIGIN" >"$TMP/memory-$backend.md"
done

cat <<EOF
### Run of $START

- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) CPUs; $(uname -sr); $(if [ -n "${MANY_BIN:-}" ]; then echo "binary $MANY_BIN"; else echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo " (+ uncommitted changes)")"; fi)
- load (1/5/15 min) before: $LOAD_BEFORE (waited ${waited}s for < $MAX_LOAD); after the rounds: $LOAD_AFTER
- scheduling: SCHED=$SCHED (origin \`${AS_ORIGIN[*]:-as started}\`, clients \`${AS_CLIENT[*]:-as started}\`)
- origin: \`taskset -c 1 $(basename "$BIN") --serve-origin-evented\`, listen backlog $BACKLOG, file limit $ORIGIN_NOFILE;
  net.core.somaxconn $(cat /proc/sys/net/core/somaxconn), local ports $(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range), tcp_tw_reuse $(cat /proc/sys/net/ipv4/tcp_tw_reuse)
- rounds: \`flock $LOCK ${AS_CLIENT[*]} $(basename "$BIN") ${BENCH_ARGS[*]}\` (file limit $(ulimit -n));
  each round one fresh \`$(basename "$BIN") --client --backend B ...\` process per backend ($BACKENDS) and one \`taskset -c 0 wrk -t1 -c$CONNS -d${SECS}s\`, all on CPU 0
EOF
cat "$TMP/rounds.md"
for backend in "${BACKEND_LIST[@]}"; do
    echo
    echo "#### Byte breakdown, $backend (\`$(basename "$BIN") --memory --backend $backend --conns $CONNS --path $BODY_PATH\`, counting allocator)"
    echo
    cat "$TMP/memory-$backend.md"
done

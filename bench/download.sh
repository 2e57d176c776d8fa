#!/usr/bin/env bash
# Download benchmark (issue 16): one big body, sized and chunked, from
# loopback origins, fetched by `roundtrip get -o /dev/null URL` (blocking
# backend) beside `curl -s -o /dev/null URL`, and beside an older roundtrip
# binary when BEFORE names one.
#
#   bash bench/download.sh                         # markdown report on stdout
#   BEFORE=/path/to/roundtrip-at-main bash bench/download.sh
#
# Origins (both pinned to CPU 0, like every client unless CLIENT_CPU says
# otherwise):
#   nginx    /sized/big    a SIZE-byte file from /dev/shm, Content-Length
#            /chunked/big  the same file through SSI: chunked, 32 KiB chunks
#   python   bench/download_origin.py: /sized/N, /chunked/C/N (chunks of C)
#
# Steps: build the CLI (release); start the origins; check every URL gives
# SIZE bytes to curl; count reads with `strace -f -c -e trace=read,recvfrom`
# (the reads of one 13 B GET, less its one socket read, are subtracted: they
# are the reads of files at start-up); then ROUNDS interleaved rounds, each
# timing every client on every URL (REPEAT downloads, the median kept; the
# order of the clients turns each round). Ratios are curl's time over the
# client's (> 1: faster than curl), median of the per-round ratios.
#
# Settings (environment): ROUNDS (5), REPEAT (3), SIZE (209715200),
# PY_PORT (18931), NGINX_PORT (18932), BEFORE (unset), CLIENT_CPU (0; 1
# runs the clients apart from the origins), LOCK
# (/tmp/roundtrip-bench.lock: other sessions' benchmarks never overlap with
# the measurements), LOCK_WAIT (900). Needs: taskset, strace, curl, nginx,
# python3, flock. Loopback only. About a minute here with the build cached.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
REPEAT=${REPEAT:-3}
SIZE=${SIZE:-209715200}
PY_PORT=${PY_PORT:-18931}
NGINX_PORT=${NGINX_PORT:-18932}
BEFORE=${BEFORE:-}
CLIENT_CPU=${CLIENT_CPU:-0}
LOCK=${LOCK:-/tmp/roundtrip-bench.lock}
LOCK_WAIT=${LOCK_WAIT:-900}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

for tool in taskset strace curl python3 flock "$NGINX"; do
    command -v "$tool" >/dev/null || {
        echo "bench/download.sh: $tool is not installed" >&2
        exit 1
    }
done
log() { echo "[download] $*" >&2; }

log "building (release, roundtrip CLI)"
cargo build --release --features cli --bin roundtrip >&2
BIN=${CARGO_TARGET_DIR:-target}/release/roundtrip
BIN=$(realpath "$BIN")

# The nginx file lives in memory, not on the (tight) disk.
TMP=$(mktemp -d /dev/shm/roundtrip-download.XXXXXX)
PY_PID=
cleanup() {
    [ -n "$PY_PID" ] && kill "$PY_PID" 2>/dev/null || true
    [ -f "$TMP/nginx.pid" ] && "$NGINX" -c "$TMP/nginx.conf" -p "$TMP/" -s quit 2>/dev/null || true
    sleep 0.2
    rm -rf "$TMP"
}
trap cleanup EXIT

chmod 755 "$TMP" # the nginx worker reads the file as another user
mkdir -p "$TMP/www" "$TMP/tmp"
head -c "$SIZE" /dev/zero | tr '\0' x >"$TMP/www/big"
cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
daemon on;
pid $TMP/nginx.pid;
error_log $TMP/error.log;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $TMP/tmp;
    proxy_temp_path $TMP/tmp;
    fastcgi_temp_path $TMP/tmp;
    uwsgi_temp_path $TMP/tmp;
    scgi_temp_path $TMP/tmp;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        chunked_transfer_encoding on;
        gzip off;
        location /sized/ { alias $TMP/www/; }
        location /chunked/ { alias $TMP/www/; ssi on; ssi_types *; }
    }
}
EOF
taskset -c 0 "$NGINX" -c "$TMP/nginx.conf" -p "$TMP/"
taskset -c 0 python3 bench/download_origin.py "$PY_PORT" &
PY_PID=$!
sleep 0.5

N=http://127.0.0.1:$NGINX_PORT
P=http://127.0.0.1:$PY_PORT
NAMES=(nginx-sized nginx-chunked-32k py-sized py-chunked-16k py-chunked-1m)
URLS=("$N/sized/big" "$N/chunked/big" "$P/sized/$SIZE" "$P/chunked/16384/$SIZE" "$P/chunked/1048576/$SIZE")
SMALL=$P/sized/13

CLIENTS=(roundtrip curl)
declare -A CMD=([roundtrip]="$BIN get -o /dev/null" [curl]="curl -s -o /dev/null")
if [ -n "$BEFORE" ]; then
    CLIENTS=(roundtrip before curl)
    CMD[before]="$(realpath "$BEFORE") get -o /dev/null"
fi

for i in "${!URLS[@]}"; do
    got=$(curl -s -o /dev/null -w '%{size_download}' "${URLS[$i]}")
    [ "$got" = "$SIZE" ] || { echo "bench/download.sh: ${NAMES[$i]} gave $got bytes" >&2; exit 1; }
done

# Socket reads of one download: read + recvfrom calls, less those of a 13 B
# GET other than its one socket read.
calls() { # FILE -> read+recvfrom calls
    awk '$NF == "read" || $NF == "recvfrom" { n += $4 } END { print n + 0 }' "$1"
}
reads() { # CLIENT URL
    # shellcheck disable=SC2086
    strace -f -c -e trace=read,recvfrom -o "$TMP/strace" taskset -c "$CLIENT_CPU" ${CMD[$1]} "$2" >/dev/null
    calls "$TMP/strace"
}
ms() { # CLIENT URL -> median wall ms of REPEAT downloads
    local t=() s e
    for _ in $(seq "$REPEAT"); do
        s=$(date +%s%N)
        # shellcheck disable=SC2086
        taskset -c "$CLIENT_CPU" ${CMD[$1]} "$2"
        e=$(date +%s%N)
        t+=($(((e - s) / 1000)))
    done
    printf '%s\n' "${t[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] / 1000 }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

exec 9>"$LOCK"
log "waiting for $LOCK"
flock -w "$LOCK_WAIT" 9
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
MIB=$((SIZE / 1048576))

echo "Run of $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) CPUs, load before: $LOAD_BEFORE; $MIB MiB bodies; commit $(git rev-parse --short HEAD)"
echo
echo "#### Reads per MiB (strace -f -c -e trace=read,recvfrom, socket reads)"
echo
printf '| client |'; printf ' %s |' "${NAMES[@]}"; echo
printf '|---|'; printf -- '---|%.0s' "${NAMES[@]}"; echo
for c in "${CLIENTS[@]}"; do
    base=$(($(reads "$c" "$SMALL") - 1))
    printf '| %s |' "$c"
    for u in "${URLS[@]}"; do
        n=$(($(reads "$c" "$u") - base))
        printf ' %s (%.2f) |' "$n" "$(echo "$n / $MIB" | bc -l)"
    done
    echo
done
echo
echo "(total socket reads for the body, reads per MiB in parentheses)"

declare -A T
for r in $(seq "$ROUNDS"); do
    log "round $r of $ROUNDS"
    order=("${CLIENTS[@]}")
    for _ in $(seq $(((r - 1) % ${#CLIENTS[@]}))); do order=("${order[@]:1}" "${order[0]}"); done
    for i in "${!URLS[@]}"; do
        for c in "${order[@]}"; do
            T[$c,$i,$r]=$(ms "$c" "${URLS[$i]}")
        done
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
flock -u 9

echo
echo "#### Time per download (ms, median of $REPEAT; origins on CPU 0, clients on CPU $CLIENT_CPU), and curl's time / client's"
echo
for i in "${!URLS[@]}"; do
    echo "${NAMES[$i]}:"
    echo
    printf '| client |'; for r in $(seq "$ROUNDS"); do printf ' round %s |' "$r"; done
    echo ' median | curl / client (median of rounds) |'
    printf '|---|'; for _ in $(seq "$ROUNDS"); do printf -- '---|'; done; echo '---|---|'
    for c in "${CLIENTS[@]}"; do
        printf '| %s |' "$c"
        for r in $(seq "$ROUNDS"); do printf ' %s |' "${T[$c,$i,$r]}"; done
        med=$(for r in $(seq "$ROUNDS"); do echo "${T[$c,$i,$r]}"; done | median)
        ratio=$(for r in $(seq "$ROUNDS"); do echo "${T[curl,$i,$r]} / ${T[$c,$i,$r]}" | bc -l; done | median)
        printf ' %s | **%.2f** |\n' "$med" "$ratio"
    done
    echo
done
echo "Load after: $LOAD_AFTER"

#!/usr/bin/env bash
# Builds every fuzz target, seeds the corpora, replays the regression inputs,
# then fuzzes each target for SECONDS (default 30). Exits non-zero if any
# target crashed (a panic, a failed check, a timeout or a sanitizer report).
#
#   fuzz/run.sh [SECONDS]
#
# Works on a fresh checkout with only rustup's stable toolchain: cargo-fuzz
# needs nightly flags, which RUSTC_BOOTSTRAP=1 unlocks on stable. Logs go to
# fuzz/logs/<target>.log, crash inputs to fuzz/artifacts/<target>/.
set -euo pipefail

SECS="${1:-30}"
TARGETS=(decode chunked encode pool differential exchange)
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
export PATH="$HOME/.cargo/bin:$PATH"

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
    else
        echo "run.sh: please install $*" >&2
        return 1
    fi
}

# libfuzzer-sys compiles libFuzzer (C++).
command -v c++ >/dev/null || apt_install g++
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

# The conformance cases seed every target; CI (ROUNDTRIP_REQUIRE_SERVERS=1)
# does not fuzz without them.
unseeded() {
    echo "run.sh: $1: fuzzing without the conformance seeds" >&2
    [ "${ROUNDTRIP_REQUIRE_SERVERS:-}" != 1 ] || exit 1
}
if command -v python3 >/dev/null || apt_install python3-minimal; then
    python3 seed.py || unseeded "seeding failed"
else
    unseeded "no python3"
fi

# -O: optimised; -a: with debug assertions and overflow checks; ASan is
# cargo-fuzz's default sanitizer.
FLAGS=(-O -a)
cargo fuzz build "${FLAGS[@]}"

if [ -n "${ROUNDTRIP_FUZZ_ALLOW:-}" ]; then
    echo "run.sh: ROUNDTRIP_FUZZ_ALLOW=$ROUNDTRIP_FUZZ_ALLOW: these open findings are tolerated" >&2
fi

mkdir -p logs
failed=()
summary=()
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "regressions/$t"
    dict=()
    case "$t" in decode | chunked | differential) dict=(-dict=dict/http.dict) ;; esac

    # Every regression input once: a fixed bug must stay fixed.
    shopt -s nullglob
    regs=("regressions/$t"/*)
    shopt -u nullglob
    if [ ${#regs[@]} -gt 0 ] &&
        ! cargo fuzz run "${FLAGS[@]}" "$t" "${regs[@]}" >"logs/$t.regressions.log" 2>&1; then
        failed+=("$t (regression input, see logs/$t.regressions.log)")
    fi

    if cargo fuzz run "${FLAGS[@]}" "$t" "corpus/$t" -- \
        -max_total_time="$SECS" -timeout=10 -print_final_stats=1 "${dict[@]}" \
        >"logs/$t.log" 2>&1; then
        result=ok
    else
        result=CRASH
        failed+=("$t (see logs/$t.log and artifacts/$t/)")
    fi
    stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "logs/$t.log" | tail -1 || true)
    [ -n "$stats" ] || stats=$(grep -E '^#[0-9]+' "logs/$t.log" | tail -1 || true)
    summary+=("$(printf '%-13s %-6s %s' "$t" "$result" "$stats")")
done

echo
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo
    echo "FAILED:"
    printf '  %s\n' "${failed[@]}"
    exit 1
fi
echo "all ${#TARGETS[@]} targets: no crash in ${SECS}s each"

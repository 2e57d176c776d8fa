# Sourced by the bench scripts: bench_binary NAME [PREBUILT] prints the path
# of the bench binary of tests/benches/NAME.rs: PREBUILT when given (a copy
# kept from another commit, for before/after runs: no build then), else the
# one `cargo bench --no-run` builds now (release). The caller checks it.
bench_binary() {
    if [ -n "${2:-}" ]; then
        echo "$2"
        return
    fi
    echo "[bench] building $1 (release, cargo bench --no-run)" >&2
    cargo bench -p roundtrip-tests --bench "$1" --no-run --message-format=json 2>/dev/null |
        grep -o '"executable":"[^"]*"' | sed 's/"executable":"\(.*\)"/\1/' | tail -n 1
}

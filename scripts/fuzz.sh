#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time (FUZZ_SECONDS each, default 40),
# two at a time, from the committed seed corpora (fuzz/corpus/<target>, read only) plus a
# scratch corpus. A crash fails the run and leaves its input under fuzz/artifacts/<target>/;
# replay it with `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> <file>`.
# cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP=1 lets the stable toolchain take them, and
# `-s none` builds without a sanitizer (libFuzzer's coverage and its panic = crash still hold).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
seconds="${FUZZ_SECONDS:-40}"
cargo fuzz build -s none
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
run() {
    mkdir -p "$scratch/$1"
    cargo fuzz run -s none "$1" "$scratch/$1" "corpus/$1" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch/$1.log" 2>&1 || { echo "fuzz target $1 failed:"; tail -40 "$scratch/$1.log"; return 1; }
    echo "fuzz target $1: $(grep -m1 -o 'Done [0-9]* runs' "$scratch/$1.log") in ${seconds}s, no crash"
}
targets=(event_line meta_envelope meta_cards tariff_csv estimate_traffic tenant_setup config)
status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
    pids=()
    for t in "${targets[@]:i:2}"; do run "$t" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || status=1; done
done
exit "$status"

#!/bin/sh
# `make fuzz`: run every cargo-fuzz target for a bounded time and report the
# executions each one reached. Exits non-zero if any target found a crash
# (the input is kept in fuzz/artifacts/TARGET/).
#
# Knobs (environment): FUZZ_SECONDS per target (default 60), FUZZ_TARGETS
# (default: all), FUZZ_SANITIZER (default none: the code under test is safe
# Rust, and without ASan twice the executions fit in the same time; use
# `address` to also check the few unsafe blocks).
set -u
cd "$(dirname "$0")/.." || exit 2

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-"config_pies config_inittab selector protobuf router"}
sanitizer=${FUZZ_SANITIZER:-none}
# cargo-fuzz passes nightly-only flags; this lets a stable toolchain accept them.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || exit 2
fi

mkdir -p fuzz/logs
failed=""
summary=""
for t in $targets; do
    mkdir -p "fuzz/corpus/$t"
    log="fuzz/logs/$t.log"
    dict=""
    [ -f "fuzz/dicts/$t.dict" ] && dict="-dict=fuzz/dicts/$t.dict"
    echo "== $t: ${seconds}s"
    cargo fuzz run --sanitizer "$sanitizer" --debug-assertions "$t" \
        "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        $dict -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    if [ "$rc" -ne 0 ]; then
        failed="$failed $t"
        tail -n 40 "$log"
        summary="$summary$(printf '%-16s CRASH (exit %s), see %s and fuzz/artifacts/%s/' "$t" "$rc" "$log" "$t")
"
    else
        summary="$summary$(printf '%-16s %12s executions in %ss, %s' "$t" "${execs:-?}" "$seconds" "$cov")
"
    fi
done

printf '\n%s' "$summary"
if [ -n "$failed" ]; then
    echo "crashes in:$failed"
    exit 1
fi

#!/usr/bin/env bash
# Build the libFuzzer targets and fuzz each for SECONDS (default 60), starting from the
# committed corpus (new inputs go to a scratch copy, not into the repo). Exits non-zero on
# any crash, leaving the reproducer in build/fuzz-crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
make -j"$(nproc 2>/dev/null || echo 2)" fuzz >/dev/null
mkdir -p build/fuzz-crashes
status=0
for bin in build/tests/fuzzer/fuzz_*; do
    [ -x "$bin" ] || continue
    name=${bin##*/fuzz_}
    corpus=tests/fuzz/corpus/$name
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
    echo "fuzz $name: ${secs}s"
    if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix=build/fuzz-crashes/"$name"- -print_final_stats=1 "$work" \
        2>build/fuzz-"$name".log; then
        echo "fuzz $name: FAILED (see build/fuzz-$name.log and build/fuzz-crashes/)"
        tail -40 build/fuzz-"$name".log
        status=1
    else
        grep -E 'stat::number_of_executed_units|stat::peak_rss' build/fuzz-"$name".log | sed "s/^/fuzz $name: /"
    fi
    rm -rf "$work"
done
exit $status

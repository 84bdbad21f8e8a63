#!/usr/bin/env bash
# Build the libFuzzer targets and fuzz each for SECONDS (default 60), one after the other,
# starting from the committed corpus (new inputs go to a scratch copy, not into the repo)
# and with the target's dictionary tests/fuzz/<name>.dict if there is one. Exits non-zero
# on any crash, leaving the reproducer in build/fuzz-crashes/. See docs/fuzzing.md.
# Usage: scripts/fuzz.sh [SECONDS [TARGET...]]   (targets: packet zone conf csv mmdb)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
make -j"$(nproc 2>/dev/null || echo 2)" fuzz >/dev/null
mkdir -p build/fuzz-crashes
# UBSan reports are recoverable in this build (-fsanitize=undefined without
# -fno-sanitize-recover): make them fatal so that libFuzzer stops and saves the input.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# Known leaks in system libraries, not in geocast (tests/fuzz/lsan.supp says which). The
# suppression names a libmaxminddb function, so the mmdb target needs full stacks on malloc.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0}
if [ $# -gt 0 ]; then
    bins=()
    for t in "$@"; do bins+=("build/tests/fuzzer/fuzz_$t"); done
else
    bins=(build/tests/fuzzer/fuzz_*)
fi
status=0
for bin in "${bins[@]}"; do
    if [ ! -x "$bin" ]; then
        echo "fuzz: no target $bin"
        status=1
        continue
    fi
    name=${bin##*/fuzz_}
    corpus=tests/fuzz/corpus/$name
    dict=()
    [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
    asan=${ASAN_OPTIONS:-}
    [ "$name" = mmdb ] && asan="fast_unwind_on_malloc=0${asan:+:$asan}"
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
    echo "fuzz $name: ${secs}s"
    if ! ASAN_OPTIONS=$asan "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 "${dict[@]}" \
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

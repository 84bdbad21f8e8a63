#!/usr/bin/env bash
# Set up, build and run every test. This is the README's test command.
#   scripts/test.sh           normal build (build/)
#   scripts/test.sh --asan    ASan+UBSan build (build-asan/)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -x scripts/fetch-geoip.sh ] && scripts/fetch-geoip.sh data/geoip || true
jobs=$(nproc 2>/dev/null || echo 2)
if [ "${1:-}" = "--asan" ]; then
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    make -j"$jobs" BUILD=build-asan SANITIZER=address,undefined OPT=-O1 all
    make BUILD=build-asan SANITIZER=address,undefined OPT=-O1 check
else
    make -j"$jobs" all
    make check
    # The anycast lab (network namespaces, BIRD 2, three nodes; root only, else it skips).
    # It depends on BGP and ECMP timing on a shared machine: one retry before failing.
    prove -e '' tests/anycast/t_anycast.sh || {
        echo "anycast lab failed once; retrying"
        prove -e '' tests/anycast/t_anycast.sh
    }
fi

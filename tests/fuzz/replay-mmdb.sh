#!/usr/bin/env bash
# Replay the MMDB-loader fuzz corpus through the non-fuzzer build of fuzz_mmdb (TAP).
# Usage: BUILD=build tests/fuzz/replay-mmdb.sh   (run from anywhere; BUILD is relative to
# the repository root unless absolute)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
# libmaxminddb's own leak on malformed metadata (see the file) is not ours: an ASan build
# would otherwise fail on tests/fuzz/corpus/mmdb/repro-libmaxminddb-metadata-leak.mmdb.
# The suppression names a libmaxminddb function: full stacks on malloc.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0}
export ASAN_OPTIONS=fast_unwind_on_malloc=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
exec "$BUILD/tests/replay/fuzz_mmdb" tests/fuzz/corpus/mmdb

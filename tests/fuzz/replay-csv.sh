#!/usr/bin/env bash
# Replay the CSV-loader fuzz corpus through the non-fuzzer build of fuzz_csv (TAP).
# Usage: BUILD=build tests/fuzz/replay-csv.sh   (run from anywhere; BUILD is relative to
# the repository root unless absolute)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
exec "$BUILD/tests/replay/fuzz_csv" tests/fuzz/corpus/csv

#!/usr/bin/env bash
# Replay the zone-parser fuzz corpus through the non-fuzzer build of fuzz_zone (TAP).
# Usage: BUILD=build tests/fuzz/replay-zone.sh   (run from anywhere; BUILD is relative to
# the repository root unless absolute)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
exec "$BUILD/tests/replay/fuzz_zone" tests/fuzz/corpus/zone

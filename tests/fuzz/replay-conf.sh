#!/usr/bin/env bash
# Replay the committed config corpus through the loader and route compiler (TAP).
cd "$(dirname "$0")/../.."
exec "${BUILD:-build}"/tests/replay/fuzz_conf tests/fuzz/corpus/conf

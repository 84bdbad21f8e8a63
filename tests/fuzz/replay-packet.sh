#!/usr/bin/env bash
# Replay the committed packet corpus through the query path (TAP).
cd "$(dirname "$0")/../.."
exec "${BUILD:-build}"/tests/replay/fuzz_packet tests/fuzz/corpus/packet

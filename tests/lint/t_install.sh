#!/usr/bin/env bash
# make install (PREFIX, DESTDIR): the binaries, the man pages and the systemd unit land
# where they should, and the unit runs the installed geocastd.
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
if [ ! -x "$BUILD/bin/geocastd" ] || [ ! -x "$BUILD/bin/geocastctl" ]; then
    echo "1..0 # SKIP binaries not built"
    exit 0
fi
d=$(mktemp -d /tmp/geocast-install-XXXXXX)
trap 'rm -rf "$d"' EXIT
n=0
fail=0
t() { n=$((n + 1)); if eval "$1"; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
out=$(make -s install BUILD="$BUILD" PREFIX=/usr DESTDIR="$d" 2>&1)
rc=$?
t '[ $rc -eq 0 ]' "make install PREFIX=/usr DESTDIR=... ${out:0:200}"
t '[ -x "$d/usr/sbin/geocastd" ] && [ -x "$d/usr/sbin/geocastctl" ]' "binaries in PREFIX/sbin"
t '"$d/usr/sbin/geocastd" --version | grep -q "^geocastd "' "the installed geocastd runs"
t '[ -f "$d/usr/share/man/man8/geocastd.8" ] && [ -f "$d/usr/share/man/man8/geocastctl.8" ] && [ -f "$d/usr/share/man/man5/geocast.yaml.5" ]' "man pages in PREFIX/share/man"
u="$d/usr/lib/systemd/system/geocast.service"
t '[ -f "$u" ]' "unit in PREFIX/lib/systemd/system"
t 'grep -q "^ExecStart=/usr/sbin/geocastd -c " "$u" && ! grep -q /usr/local "$u"' "the unit runs PREFIX/sbin/geocastd"
t '[ "$(stat -c %a "$u")" = 644 ] && [ "$(stat -c %a "$d/usr/sbin/geocastd")" = 755 ]' "modes 0644 and 0755"
echo "1..$n"
exit $fail

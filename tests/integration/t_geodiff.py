#!/usr/bin/python3
"""geocastctl geodiff: per route, how much address space gets another first answer or
answer list under a new GeoIP database, on two small generated databases
(tests/data/geodiff/gen-geodiff-mmdb.pl) whose differences are known exactly."""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

GEOCASTCTL = os.path.join(lib.ROOT, lib.BUILD, "bin", "geocastctl") if not os.path.isabs(lib.BUILD) \
    else os.path.join(lib.BUILD, "bin", "geocastctl")
GEN = os.path.join(lib.ROOT, "tests", "data", "geodiff", "gen-geodiff-mmdb.pl")
if not os.access(GEOCASTCTL, os.X_OK):
    tap.skip_all("geocastctl not built")
if shutil.which("perl") is None or subprocess.run(
        ["perl", "-MMaxMind::DB::Writer::Tree", "-e", "1"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode != 0:
    tap.skip_all("perl MaxMind::DB::Writer::Tree (libmaxmind-db-writer-perl) not installed")

D = lib.tmpdir("geocast-geodiff-")
OLD, NEW = os.path.join(D, "old.mmdb"), os.path.join(D, "new.mmdb")
r = subprocess.run(["perl", GEN, OLD, NEW], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   text=True, timeout=60)
if r.returncode != 0:
    tap.bail("gen-geodiff-mmdb.pl failed: %s" % r.stderr)

with open(os.path.join(D, "z.zone"), "w") as f:
    f.write("$ORIGIN example.com.\n@ 300 SOA ns1 hm 1 3600 600 86400 300\n@ 300 NS ns1\n"
            "ns1 300 A 192.0.2.53\n")
CONF = os.path.join(D, "geocast.yaml")
with open(CONF, "w") as f:
    f.write("""server: { listen: ["127.0.0.1@53"] }
geoip: { mmdb: does-not-need-to-exist.mmdb }
boundaries:
  Europe: [eur]
  USA: [US]
  France: [FR]
zones:
  example.com:
    file: z.zone
    routes:
      www:
        A:
          answers:
            - { value: 192.0.2.1, boundary: Europe }
            - { value: 192.0.2.2, boundary: USA }
            - { value: 192.0.2.3 }
      us:
        A:
          answers:
            - { value: 192.0.2.5, boundary: USA }
            - { value: 192.0.2.6 }
      multi:
        A:
          answers:
            - { value: 192.0.2.7, boundary: Europe }
            - { value: 192.0.2.8, boundary: France }
            - { value: 192.0.2.9 }
""")


def ctl(*args):
    return lib.run_cmd([GEOCASTCTL] + list(args), timeout=60 * lib.SLOW)


# What changes from OLD to NEW (see the generator):
#   11.0.0.0/24      DE -> FR    (256):   multi's list gains France's answer, first unchanged
#   11.0.128.0/17    DE -> US    (32768): every route's first answer
#   12.0.0.0/24      none -> FR  (256):   www and multi (Europe now), not us
#   2a00:1000:8000::/33 DE -> US (2^31 /64s): every route
#   2600:1000::/32   US -> none  (2^32 /64s): www and us; multi falls back either way
WANT = {
    "www.example.com.": ((33024, 33024), (6442450944, 6442450944)),
    "us.example.com.": ((32768, 32768), (6442450944, 6442450944)),
    "multi.example.com.": ((33024, 33280), (2147483648, 2147483648)),
}

rc, out, err = ctl("-c", CONF, "-j", "geodiff", OLD, NEW)
tap.is_(rc, 0, "geodiff -j exits 0")
try:
    res = json.loads(out)
except ValueError:
    res = {}
    tap.diag("output: %r %r" % (out, err))
got = {r["name"]: ((r["ipv4"]["first"], r["ipv4"]["list"]),
                   (r["ipv6_64s"]["first"], r["ipv6_64s"]["list"]))
       for r in res.get("routes", []) if r.get("type") == "A"}
for name, want in WANT.items():
    tap.is_(got.get(name), want, "%s: IPv4 addresses and IPv6 /64s with another first answer "
            "and another list" % name)
tap.is_(res.get("any"), {"ipv4": {"first": 33024, "list": 33280},
                         "ipv6_64s": {"first": 6442450944, "list": 6442450944}},
        "any route: the union, not the sum")
tap.is_((res.get("old"), res.get("new")), (OLD, NEW), "JSON names both files")

rc, out, err = ctl("-c", CONF, "geodiff", OLD, NEW)
tap.is_(rc, 0, "text geodiff exits 0")
tap.like(out, "IPv4 in addresses, IPv6 in /64 networks", "text says which units")
tap.like(out, "multi.example.com. A: ipv4 first 33024 (0.000769%) list 33280 (0.000775%); "
         "ipv6 first 2147483648", "text line for a route")
tap.like(out, "any route: ipv4 first 33024", "text total line")

# Reversed, the same space changes.
rc, out, err = ctl("-c", CONF, "-j", "geodiff", NEW, OLD)
rev = json.loads(out) if rc == 0 else {}
tap.is_(rev.get("any"), res.get("any"), "NEW -> OLD changes the same space")

# The same file twice: nothing changes.
rc, out, err = ctl("-c", CONF, "-j", "geodiff", NEW, NEW)
same = json.loads(out) if rc == 0 else {}
tap.is_(same.get("any"), {"ipv4": {"first": 0, "list": 0}, "ipv6_64s": {"first": 0, "list": 0}},
        "identical databases: no change")

# Errors: a missing or corrupt database, wrong arguments, -s.
rc, out, err = ctl("-c", CONF, "geodiff", OLD, os.path.join(D, "missing.mmdb"))
tap.is_(rc, 1, "missing NEW: exit 1")
tap.like(err, "missing.mmdb", "missing NEW: the error names the file")
bad = os.path.join(D, "bad.mmdb")
with open(bad, "wb") as f:
    f.write(b"not a database" * 100)
rc, out, err = ctl("-c", CONF, "geodiff", bad, NEW)
tap.is_(rc, 1, "corrupt OLD: exit 1")
tap.like(err, "bad.mmdb", "corrupt OLD: the error names the file")
rc, out, err = ctl("-c", CONF, "geodiff", OLD)
tap.is_(rc, 2, "one argument: usage error")
rc, out, err = ctl("-s", os.path.join(D, "sock"), "geodiff", OLD, NEW)
tap.is_(rc, 2, "-s: geodiff is offline, usage error")
tap.done()

#!/usr/bin/python3
"""bench/dnsload against a real geocastd: what it reports is what happened.

Closed loop (-w): every query sent is answered, the counts and the rcodes add up, -N stops
at the count; with nothing lost, the p99 that counts lost queries as timeouts is the p99, and
against a socket that never answers it is the 1 s timeout. Open loop (-r RATE): the number sent follows the schedule, RATE per second
for the duration, not the window; the same rate is echoed in the JSON. These check counts,
never speed: the rate is low enough for any build, sanitizers included.
"""
import json
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

lib.require_geocastd()
B = lib.BUILD if os.path.isabs(lib.BUILD) else os.path.join(lib.ROOT, lib.BUILD)
DNSLOAD = os.path.join(B, "bench", "dnsload")
if not os.access(DNSLOAD, os.X_OK):
    tap.skip_all("bench/dnsload not built")

ZONE = lib.EXAMPLE_ZONE


def load(port, *args):
    r = subprocess.run([DNSLOAD, "-s", "127.0.0.1", "-p", str(port), "--json"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    try:
        return json.loads(r.stdout)
    except ValueError:
        tap.diag("dnsload: %r %r" % (r.stdout, r.stderr))
        return {}


srv = lib.start_geocast(zones={"example.com": ZONE})
try:
    # Closed loop, stopped by count.
    j = load(srv.port, "-w", "20", "-N", "3000", "-d", "20")
    tap.is_(j.get("sent"), 3000, "-N 3000: exactly 3000 queries sent")
    tap.ok(j.get("answered") == 3000 and j.get("lost") == 0,
           "closed loop: all answered, none lost (%r)" % {k: j.get(k) for k in ("answered", "lost")})
    tap.is_(j.get("rcodes"), {"NOERROR": 3000}, "closed loop: the rcode counts add up")
    tap.is_(j.get("answers_a"), {"192.0.2.1": 3000}, "closed loop: the answers are counted")
    lat = j.get("lat_us", {})
    tap.ok(lat.get("p99_all") is not None and lat.get("p99_all") == lat.get("p99"),
           "nothing lost: p99 with lost queries is the p99 (%r)" % lat)

    # Open loop: 2000 q/s for 1.5 s is 3000 queries, whatever the window allows.
    j = load(srv.port, "-r", "2000", "-d", "1.5", "-w", "4096", "-n", "www.example.com")
    sent = j.get("sent", 0)
    tap.ok(2990 <= sent <= 3010, "-r 2000 -d 1.5: the schedule's 3000 queries sent (%d)" % sent)
    tap.is_(j.get("rate"), 2000, "-r: the offered rate is in the JSON")
    tap.ok(j.get("answered") == sent and j.get("lost") == 0,
           "open loop: every query answered (%r)" % {k: j.get(k) for k in ("answered", "lost")})

    # The schedule, not the window, paces: a window of 1 at a low rate still sends it all.
    j = load(srv.port, "-r", "500", "-d", "1", "-w", "1")
    tap.ok(495 <= j.get("sent", 0) <= 505, "-r 500 -w 1: 500 queries sent (%r)" % j.get("sent"))
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)

# A server that never answers: every query is lost, and counts as the 1 s timeout.
hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
hole.bind(("127.0.0.1", 0))
try:
    j = load(hole.getsockname()[1], "-r", "200", "-d", "0.5", "-w", "4096")
    lat = j.get("lat_us", {})
    tap.ok(j.get("answered") == 0 and j.get("lost", 0) >= 95,
           "black hole: nothing answered, all lost (%r)" % {k: j.get(k) for k in ("answered", "lost")})
    tap.ok(lat.get("p99") == 0 and lat.get("p99_all") == 1000000,
           "black hole: p99 of answers 0, p99 with lost queries the 1 s timeout (%r)" % lat)
finally:
    hole.close()

# Bad arguments: a usage error, exit status 2.
r = subprocess.run([DNSLOAD, "-r", "-5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   text=True, timeout=10)
tap.ok(r.returncode == 2 and "usage" in r.stderr, "-r -5: usage error, exit 2")
tap.done()

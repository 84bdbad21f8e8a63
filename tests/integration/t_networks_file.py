#!/usr/bin/python3
"""A boundary read from a networks file (`boundaries.NAME: { networks_file: FILE }`): clients
in a listed network (IPv4 and IPv6, via ECS) get the boundary's answer with the network's
scope; a reload (SIGHUP) reads the file again; a bad line fails the reload with FILE:LINE
and the previous data keeps serving; `--check` reports the same error."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

import dns.edns  # noqa: E402
import dns.rcode  # noqa: E402

lib.require_geocastd()

ZONE = """$ORIGIN example.com.
$TTL 60
@ SOA ns1 hm 1 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
"""

CONF = """server:
  listen: ["127.0.0.1@{port}"]
  workers: 1
boundaries:
  customers: { networks_file: %s }
zones:
  example.com:
    file: {zone:example.com}
    routes:
      www:
        A:
          answers:
            - { value: 192.0.2.1, boundary: customers }
            - { value: 192.0.2.9 }
"""


def www(srv, client):
    """(answer, scope) for an ECS client "address/prefix"; None when no good answer."""
    a, ln = client.split("/")
    m = lib.make_query("www.example.com", "A", options=[dns.edns.ECSOption(a, int(ln))])
    r = srv.query(m, timeout=1.0)
    if r is None or r.rcode() != dns.rcode.NOERROR or not r.answer:
        return None
    scope = next((o.scopelen for o in r.options if isinstance(o, dns.edns.ECSOption)), None)
    return r.answer[0][0].to_text(), scope


def wait_for(srv, client, want, secs=5.0):
    deadline = time.monotonic() + secs * lib.SLOW
    got = None
    while time.monotonic() < deadline:
        got = www(srv, client)
        if got == want:
            break
        time.sleep(0.05)
    return got


d = lib.tmpdir("geocast-nets-")
nets = os.path.join(d, "customers.txt")
with open(nets, "w") as f:
    f.write("# customers of the week\n\n5.5.5.0/24\n  2a01:4f8::/32   # IPv6 customer\n")

srv = lib.start_geocast(config=CONF % nets, zones={"example.com": ZONE})
try:
    tap.is_(www(srv, "5.5.5.7/32"), ("192.0.2.1", 24), "listed IPv4 network: its answer, scope /24")
    tap.is_(www(srv, "5.5.4.1/24"), ("192.0.2.9", 24), "its neighbour: the fallback")
    tap.is_(www(srv, "2a01:4f8:1::/48"), ("192.0.2.1", 32), "listed IPv6 network, scope /32")
    tap.is_(www(srv, "2a01:4f9::/48")[0], "192.0.2.9", "IPv6 outside: the fallback")

    with open(nets, "a") as f:
        f.write("5.5.4.0/24\n")
    os.kill(srv.proc.pid, signal.SIGHUP)
    tap.is_(wait_for(srv, "5.5.4.1/24", ("192.0.2.1", 23)), ("192.0.2.1", 23),
            "SIGHUP reads the file again: the added /24 joins its neighbour (scope /23)")

    with open(nets, "a") as f:
        f.write("5.5.6.0/24\nUS\n")
    os.kill(srv.proc.pid, signal.SIGHUP)
    time.sleep(0.5 * lib.SLOW)
    tap.is_(www(srv, "5.5.6.1/24")[0], "192.0.2.9", "a bad line fails the reload: old data serves")
    tap.like(srv.stderr(), "customers.txt:7: boundaries.customers: bad network 'US'",
             "the error names the networks file and line")
    tap.like(srv.stderr(), "reload failed", "reload failure logged")
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)

rc, out, _, _ = lib.geocast_check(CONF % nets, zones={"example.com": ZONE})
tap.is_(rc, 1, "--check fails on the bad line")
tap.like(out, "customers.txt:7: boundaries.customers: bad network 'US'", "...naming file and line")
tap.done()

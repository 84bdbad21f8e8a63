#!/usr/bin/python3
"""server.minimal_responses: positive answers carry no authority NS and no additional
addresses; referrals keep their glue; negative answers keep the SOA."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

import dns.rcode  # noqa: E402

lib.require_geocastd()

ZONE = """$TTL 60
@ SOA ns hm 1 2 3 4 5
@ NS ns
@ MX 10 mail
ns A 192.0.2.1
mail A 192.0.2.25
www A 192.0.2.2
sub NS ns.sub
ns.sub A 192.0.2.77
"""
CONF = """server:
  listen: ["127.0.0.1@{port}"]
  workers: 1
  minimal_responses: %s
boundaries: { office: [1.2.3.0/24] }
zones:
  example.com:
    file: {zone:example.com}
    routes:
      geo: { A: { answers: [ {value: 192.0.2.9, boundary: office}, 192.0.2.10 ] } }
"""


def sections(srv, name, qtype):
    r = srv.query(lib.make_query(name, qtype, edns=0))
    return r.rcode(), len(r.answer), len(r.authority), len(r.additional)


for minimal in (True, False):
    srv = lib.start_geocast(config=CONF % ("true" if minimal else "false"),
                            zones={"example.com": ZONE})
    tag = "minimal" if minimal else "default"
    try:
        rc, an, au, ad = sections(srv, "www.example.com", "A")
        tap.is_((an, au, ad), (1, 0, 0) if minimal else (1, 1, 1), "%s: A answer sections" % tag)
        rc, an, au, ad = sections(srv, "example.com", "MX")
        tap.is_((an, au, ad), (1, 0, 0) if minimal else (1, 1, 2), "%s: MX, target address" % tag)
        rc, an, au, ad = sections(srv, "geo.example.com", "A")
        tap.is_((an, au, ad), (1, 0, 0) if minimal else (1, 1, 1), "%s: routed answer" % tag)
        rc, an, au, ad = sections(srv, "x.sub.example.com", "A")
        tap.is_((an, au, ad), (0, 1, 1), "%s: referral keeps its glue" % tag)
        rc, an, au, ad = sections(srv, "nope.example.com", "A")
        tap.is_((rc, an, au), (dns.rcode.NXDOMAIN, 0, 1), "%s: NXDOMAIN keeps the SOA" % tag)
        srv.stop_and_check()
    finally:
        srv.stop(timeout=2)
tap.done()

#!/usr/bin/python3
"""ALIAS routes (seeds/003): A/AAAA at a name, the apex included, answered with the data
of a target chosen per client; scope from the decisions taken; load-time checks."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

import dns.edns  # noqa: E402
import dns.rcode  # noqa: E402

lib.require_geocastd()

ZONE = """$TTL 300
@ SOA ns1 hm 1 3600 600 86400 60
@ NS ns1
@ MX 10 mail
ns1 A 192.0.2.53
a A 192.0.2.1
b A 192.0.2.2
b AAAA 2001:db8::2
"""
CONF = """server: { listen: ["127.0.0.1@{port}"], workers: 1 }
boundaries:
  office: [1.2.3.0/24]
zones:
  example.com:
    file: {zone:example.com}
    routes:
      "@":
        ALIAS:
          answers:
            - { value: a, boundary: office }
            - { value: b }
      www:
        ALIAS: { answers: [ { value: c, boundary: office }, { value: b } ] }
      c:
        A: { ttl: 77, answers: [ { value: 192.0.2.77, boundary: office }, 192.0.2.78 ] }
"""


def ask(srv, name, qtype, subnet):
    opts = [dns.edns.ECSOption(subnet.split("/")[0], int(subnet.split("/")[1]))]
    r = srv.query(lib.make_query(name, qtype, edns=0, options=opts))
    if r is None:
        return None, None, None
    ans = sorted(rd.to_text() for rrset in r.answer for rd in rrset)
    scope = None
    for o in r.options:
        if isinstance(o, dns.edns.ECSOption):
            scope = o.scopelen
    return r, ans, scope


srv = lib.start_geocast(config=CONF, zones={"example.com": ZONE})
try:
    r, ans, scope = ask(srv, "example.com", "A", "1.2.3.0/24")
    tap.is_(ans, ["192.0.2.1"], "apex ALIAS: office client gets a's address")
    tap.is_(scope, 24, "...with scope /24 (the office network)")
    tap.ok(r.answer and r.answer[0].name.to_text() == "example.com.", "owner is the apex")
    r, ans, scope = ask(srv, "example.com", "A", "5.5.5.0/24")
    tap.is_(ans, ["192.0.2.2"], "apex ALIAS: others get b's address")
    tap.is_(scope, 6, "...scope /6: 4.0.0.0/6 is the widest block clear of the office")
    r, ans, scope = ask(srv, "example.com", "AAAA", "5.5.5.0/24")
    tap.is_(ans, ["2001:db8::2"], "apex ALIAS: AAAA from the target")
    r, ans, scope = ask(srv, "example.com", "AAAA", "1.2.3.0/24")
    tap.is_((r.rcode(), ans, len(r.authority)), (dns.rcode.NOERROR, [], 1),
            "target without AAAA: NODATA with SOA")
    r, ans, scope = ask(srv, "example.com", "MX", "1.2.3.0/24")
    tap.is_((ans, scope), (["10 mail.example.com."], 0), "static MX at the apex, scope 0")
    r, ans, scope = ask(srv, "www.example.com", "A", "1.2.3.0/24")
    tap.is_(ans, ["192.0.2.77"], "ALIAS to a routed target: the target's route decides")
    tap.is_(r.answer[0].ttl, 77, "...with the target route's TTL")
    r, ans, scope = ask(srv, "www.example.com", "A", "9.9.9.0/24")
    tap.is_(ans, ["192.0.2.2"], "ALIAS fallback target")
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)

BAD = [
    ("a:\n        ALIAS: { answers: [ b ] }", "an ALIAS replaces A and AAAA"),
    ("x:\n        ALIAS: { answers: [ www.example.org. ] }", "outside the zone"),
    ("x:\n        ALIAS: { answers: [ b ] }\n        A: { answers: [ 192.0.2.9 ] }", "cannot share its name"),
]
for routes, want in BAD:
    conf = ("zones:\n  example.com:\n    file: {zone:example.com}\n    routes:\n      " + routes + "\n")
    st, err, _, _ = lib.geocast_check(conf, zones={"example.com": ZONE})
    tap.ok(st != 0 and want in err, "--check rejects: %s (%s)" % (want, err.strip()[-160:]))
tap.done()

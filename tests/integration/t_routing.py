#!/usr/bin/python3
"""Geo routing, exactly, on a small crafted GeoIP database (tests/data/route/gen-route-mmdb.pl):
answers and their order, union of matching boundaries, fallback only when nothing matches,
NODATA without fallback, IP boundaries together with geo, closest (select 1, select > n,
ties, clients without coordinates), weights, `ecs: false`, the ECS echo and its SCOPE
(0 for location-independent data; for routed answers a block in which every address gets
the same answer, not wider than the truth and exactly the widest such block; private ECS: the source prefix; source prefix 0: 0), IPv6 addresses that
embed IPv4 (mapped, 6to4, Teredo), private ECS addresses treated as the resolver's address,
the source address without ECS (IPv4 and IPv6), a routed CNAME to a routed name (longest
scope of the two decisions), TTLs, TCP, static types next to routed ones, a routed wildcard, routed
CNAME/TXT/MX/SRV/AAAA, a reload (SIGHUP) that changes a route and one that breaks it, and
config errors caught by `geocastd --check`.

The expected answers are written out by hand (and cross-checked against the model: a
disagreement is reported as a TEST BUG); the expected scopes come from
tests/data/route/routelib.py, an independent model that walks the generated database."""

import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402
from lib import tap  # noqa: E402

sys.path.insert(0, os.path.join(lib.ROOT, "tests", "data", "route"))
import routelib as R  # noqa: E402

import dns.edns  # noqa: E402
import dns.flags  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

lib.require_geocastd()

GEN = os.path.join(lib.ROOT, "tests", "data", "route", "gen-route-mmdb.pl")


def routing_supported():
    """False when the daemon rejects the geoip/boundaries/routes keys (not implemented)."""
    rc, err, _, _ = lib.geocast_check(
        "server:\n  listen: [\"127.0.0.1@{port}\"]\nboundaries:\n  office: [1.2.3.0/24]\n"
        "zones:\n  example.com:\n    file: {zone:example.com}\n    routes:\n      www:\n"
        "        A:\n          answers:\n            - { value: 192.0.2.1, boundary: office }\n"
        "            - { value: 192.0.2.2 }\n",
        {"example.com": "$ORIGIN example.com.\n@ 300 SOA ns1 hm 1 3600 600 86400 300\n@ 300 NS ns1\n"
                        "ns1 300 A 192.0.2.53\n"})
    return not (rc != 0 and "unknown key" in err)


if not routing_supported():
    tap.skip_all("routing not supported yet")

if shutil.which("perl") is None or subprocess.run(
        ["perl", "-MMaxMind::DB::Writer::Tree", "-e", "1"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode != 0:
    tap.skip_all("perl MaxMind::DB::Writer::Tree (libmaxmind-db-writer-perl) not installed")

WORK = lib.tmpdir("geocast-route-")
MMDB = os.path.join(WORK, "route.mmdb")
r = subprocess.run(["perl", GEN, MMDB], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                   timeout=60)
if r.returncode != 0 or not os.path.isfile(MMDB):
    tap.bail("gen-route-mmdb.pl failed: %s" % r.stderr)
GEO = R.Geo(MMDB)

ZONE = """$ORIGIN example.com.
$TTL 300
@           SOA   ns1 hostmaster 2026112401 3600 600 86400 300
@           NS    ns1
@           MX    30 static-mx        ; replaced by the routed apex MX
@           TXT   "apex static"
ns1         A     192.0.2.53
www         A     192.0.2.200         ; replaced by the route
www         AAAA  2001:db8::1
www         MX    10 mail
mail        A     192.0.2.25
jp-target   A     192.0.2.111
www-target  A     192.0.2.112
static      A     192.0.2.77
*.cdn       TXT   "wild"
real.cdn    A     192.0.2.5           ; an existing name: the wildcard (and its route) does not apply
"""

ANS4 = [  # closest candidates
    {"value": "192.0.2.31", "location": [39.04, -77.49]},    # Ashburn
    {"value": "192.0.2.32", "location": [50.11, 8.68]},      # Frankfurt
    {"value": "192.0.2.33", "location": [35.68, 139.69]},    # Tokyo
    {"value": "192.0.2.34", "location": [37.77, -122.42]},   # San Francisco
]

CONF = {
    "server": {"listen": None, "workers": 2, "identity": "node-a", "version": "geocast test"},
    "geoip": {"mmdb": MMDB},
    "boundaries": {
        "Americas": ["nam", "sam"],
        "USA": ["US"],
        "Japan": ["JP"],
        "China": ["CN"],
        "Europe": ["eur"],
        "WestCities": ["US/Los Angeles", "US/San Francisco"],
        "California": ["US-CA"],
        "NYnet": ["2.2.0.0/17"],
        "local": ["127.0.0.0/8", "::1/128"],
        "v6net": ["2a00:1000:8000::/33", "2.5.128.0/17"],
        "hosts": ["2.5.0.7/32", "2a00:1000::7/128"],
    },
    "zones": {"example.com": {"file": None, "routes": {
        "www": {"A": {"ttl": 60, "answers": [
            {"value": "192.0.2.1", "boundary": "Americas"},
            {"value": "192.0.2.2", "boundary": "Americas"},
            {"value": "192.0.2.3", "boundary": "USA"},
            {"value": "198.51.100.1"},
            {"value": "192.0.2.99", "boundary": "NYnet"},
            {"value": "192.0.2.50", "boundary": "Japan"},
        ]}},
        "jpcn": {"A": {"answers": [
            {"value": "192.0.2.1", "boundary": "Japan"},
            {"value": "192.0.2.2", "boundary": "China"},
            {"value": "192.0.2.3"},
        ]}},
        "cities": {"A": {"answers": [
            {"value": "192.0.2.10", "boundary": "WestCities"},
            {"value": "192.0.2.11", "boundary": "California"},
            {"value": "192.0.2.12"},
        ]}},
        "same": {"A": {"answers": [{"value": "192.0.2.7"}, {"value": "192.0.2.8"}]}},
        "jponly": {"A": {"answers": [{"value": "192.0.2.1", "boundary": "Japan"}]}},
        "near": {"A": {"closest": {"select": 1}, "answers": ANS4}},
        "nearall": {"A": {"closest": True, "answers": ANS4}},
        "nearbig": {"A": {"closest": {"select": 10}, "answers": ANS4}},
        "tie": {"A": {"closest": True, "answers": [
            {"value": "192.0.2.20", "location": [48.0, 2.0]},
            {"value": "192.0.2.10", "location": [48.0, 2.0]},      # same place: a tie
            {"value": "192.0.2.30", "location": [35.68, 139.69]},
        ]}},
        "geoclose": {"A": {"closest": {"select": 2}, "answers": [
            {"value": "192.0.2.41", "boundary": "Americas", "location": [39.04, -77.49]},
            {"value": "192.0.2.42", "boundary": "Americas", "location": [37.77, -122.42]},
            {"value": "192.0.2.43", "boundary": "USA", "location": [50.11, 8.68]},
            {"value": "192.0.2.44", "location": [35.68, 139.69]},
            {"value": "192.0.2.45", "location": [50.11, 8.68]},
        ]}},
        "named": {"A": {"closest": True, "answers": [
            {"value": "192.0.2.121", "location": "us-east"},
            {"value": "192.0.2.122", "location": "US-CA"},
            {"value": "192.0.2.123", "location": "eur"},
            {"value": "192.0.2.124", "location": "asia"},
        ]}},
        "wgeo": {"A": {"select": 1, "answers": [
            {"value": "192.0.2.131", "boundary": "Japan", "weight": 1},
            {"value": "192.0.2.132", "boundary": "Japan", "weight": 9},
            {"value": "192.0.2.133"},
        ]}},
        "big": {"TXT": {"answers": [{"value": "\"answer %02d %s\"" % (i, "x" * 60)} for i in range(40)]}},
        "weighted": {"A": {"select": 1, "answers": [
            {"value": "192.0.2.61", "weight": 1},
            {"value": "192.0.2.62", "weight": 3},
        ]}},
        "noecs": {"A": {"ecs": False, "answers": [
            {"value": "192.0.2.71", "boundary": "Japan"},
            {"value": "192.0.2.72", "boundary": "local"},
            {"value": "192.0.2.73"},
        ]}},
        "src": {"A": {"answers": [
            {"value": "192.0.2.81", "boundary": "local"},
            {"value": "192.0.2.82", "boundary": "Japan"},
            {"value": "192.0.2.83"},
        ]}},
        "*.cdn": {"A": {"answers": [
            {"value": "192.0.2.91", "boundary": "Japan"},
            {"value": "192.0.2.92"},
        ]}},
        "alias": {"CNAME": {"answers": [
            {"value": "jp-target", "boundary": "Japan"},
            {"value": "www-target.example.com."},
        ]}},
        "chain": {"CNAME": {"answers": [
            {"value": "jpcn", "boundary": "Japan"},
            {"value": "www"},
        ]}},
        "info": {"TXT": {"answers": [
            {"value": "\"hello japan\"", "boundary": "Japan"},
            {"value": "\"hello world\""},
        ]}},
        "@": {"MX": {"answers": [
            {"value": "10 mx-jp", "boundary": "Japan"},
            {"value": "20 mail"},
        ]}},
        "_sip._udp": {"SRV": {"answers": [
            {"value": "10 5 5060 sip-us", "boundary": "USA"},
            {"value": "10 5 5060 sip"},
        ]}},
        "ipgeo": {"A": {"answers": [
            {"value": "192.0.2.1", "boundary": "v6net"},
            {"value": "192.0.2.2", "boundary": "Europe"},
            {"value": "192.0.2.3"},
        ]}},
        "host": {"A": {"answers": [
            {"value": "192.0.2.141", "boundary": "hosts"},
            {"value": "192.0.2.142"},
        ]}},
        "v6": {"AAAA": {"answers": [
            {"value": "2001:db8::e", "boundary": "Europe"},
            {"value": "2001:db8::f"},
        ]}},
    }}},
}

def _unit(lat, lon):
    la, lo = math.radians(lat), math.radians(lon)
    return (math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la))


def _midpoint(points):
    """docs/geoip.md: a subdivision's midpoint is the normalized mean of the unit vectors of
    its distinct locations with coordinates."""
    v = [sum(c) for c in zip(*[_unit(a, b) for a, b in points])]
    return (math.degrees(math.atan2(v[2], math.hypot(v[0], v[1]))), math.degrees(math.atan2(v[1], v[0])))


# midpoints of the named places (docs/geoip.md tables; US-CA from the crafted data: LA, SF)
NAMED = {"us-east": (38.0, -79.0), "eur": (50.0, 10.0), "asia": (34.05, 100.62),
         "US-CA": _midpoint([(34.0522, -118.2437), (37.7749, -122.4194)])}


def _model_conf():
    c = json.loads(json.dumps(CONF))
    for a in c["zones"]["example.com"]["routes"]["named"]["A"]["answers"]:
        a["location"] = list(NAMED[a["location"]])
    return c


ROUTES = R.routes_from_config(_model_conf())
V6 = lib.have_ipv6()


def config_text():
    c = json.loads(json.dumps(CONF))
    c["server"]["listen"] = ["127.0.0.1@{port}"] + (["::1@{port}"] if V6 else [])
    c["zones"]["example.com"]["file"] = "{zone:example.com}"
    # JSON is YAML: flow style keeps keys like "*.cdn" and "@" quoted
    return json.dumps(c, indent=2) + "\n"


def route_of(name, qtype):
    """The Route model for a routed owner name (handles the wildcard)."""
    rel = name.rstrip(".").lower()
    assert rel.endswith("example.com")
    rel = rel[:-len("example.com")].rstrip(".") or "@"
    if rel in ("real.cdn",):          # exists in the zone file: no wildcard (RFC 4592)
        return None
    for (z, n, t), rt in ROUTES.items():
        if t != qtype:
            continue
        if n == rel or (n.startswith("*.") and rel.endswith(n[1:])):
            return rt
    return None


# --------------------------------------------------------------------------------------------

try:
    SRV = lib.start_geocast(config_text(), zones={"example.com": ZONE}, v6=V6, probe="example.com")
except RuntimeError as e:
    tap.ok(False, "geocastd starts with the routing config")
    tap.diag(str(e)[-3000:])
    tap.done()
PORT = SRV.port

# --check on the same config: valid, and warns about the route without fallback (jponly)
rc, err, _, _ = lib.geocast_check(config_text(), {"example.com": ZONE})
tap.is_(rc, 0, "--check accepts the routing config")
tap.ok(re.search(r"(?i)warn", err) and "jponly" in err,
       "--check warns about the route without fallback (names jponly)")
if not (re.search(r"(?i)warn", err) and "jponly" in err):
    tap.diag(err[-2000:])


def q(name, qtype="A", ecs=None, addr="127.0.0.1"):
    """dnspython query; ecs = "a.b.c.d/len" or None."""
    if ecs:
        a, ln = ecs.split("/")
        m = R.ecs_message(name, qtype, a, int(ln))
    else:
        m = R.ecs_message(name, qtype)
    return lib.udp(m, PORT, addr=addr, timeout=2.0)


def kdig_q(name, qtype="A", ecs=None, addr="127.0.0.1"):
    """kdig; returns (rcode, answers of qtype in order, (addr, src, scope) or None, authority)."""
    args = [name, qtype, "+norec"] + (["+subnet=" + ecs] if ecs else [])
    out = lib.kdig(PORT, *args, addr=addr)
    p = lib.parse_text_reply(out)
    if p is None:
        return None, None, None, None, out
    ans = []
    for line in p["answer"]:
        f = line.split()
        if len(f) >= 5 and f[3] == qtype:
            ans.append(" ".join(f[4:]))
    m = re.search(r"CLIENT-SUBNET: ([0-9a-fA-F.:]+)/(\d+)/(\d+)", out)
    e = (m.group(1), int(m.group(2)), int(m.group(3))) if m else None
    return p["rcode"], ans, e, p["authority"], out


def fam_addr(ecs):
    a, ln = ecs.split("/")
    fam = 6 if ":" in a else 4
    return fam, R.ip_int(a), int(ln)


def check_scope_block(name, qtype, ecs, got_answers, scope, route, exact):
    """The claimed block ADDR/scope: every address in it gets the same answer (model), the
    server agrees when asked for a few addresses inside; for exact, scope is the widest."""
    fam, addr, srclen = fam_addr(ecs)
    bits = R.bits_of(fam)
    label = "%s %s ECS %s" % (name, qtype, ecs)
    if scope is None:
        tap.ok(False, "%s: reply has an ECS option" % label)
        return
    net = (addr >> (bits - scope) << (bits - scope)) if scope else 0
    if route is not None:
        want = route.decide(fam, addr, GEO.lookup(fam, addr))
        ds = R.block_decisions(GEO, route, fam, net, scope)
        ok = ds is not None and ds <= {want}
        tap.ok(ok, "%s: scope /%d claims %s/%d, in which every address gets the same answer (model)"
               % (label, scope, R.ip_str(fam, net), scope))
        if not ok:
            tap.diag("  decisions in that block: %r" % (sorted(ds) if ds else ds,))
        if exact:
            wide = R.widest_uniform_prefix(GEO, route, fam, addr, mode="lenient")
            narrow = R.widest_uniform_prefix(GEO, route, fam, addr, mode="strict")
            tap.ok(wide <= scope <= narrow, "%s: scope is the widest block with that answer (/%d%s)"
                   % (label, narrow, "" if wide == narrow else ", or up to /%d counting private ranges as don't-care" % wide))
            if not wide <= scope <= narrow:
                tap.diag("  got scope /%d" % scope)
    # ask the server about other addresses inside the claimed block
    rng = random.Random(addr ^ scope)
    probes = {net, net | ((1 << (bits - scope)) - 1) if scope < bits else net}
    for _ in range(4):
        probes.add(net | (rng.getrandbits(bits - scope) if scope < bits else 0))
    bad = []
    for p in sorted(probes):
        if R.is_private(fam, p):
            continue
        pe = "%s/%d" % (R.ip_str(fam, p), bits)
        rr = q(name, qtype, pe)
        got = sorted(R.answer_texts(rr, name, dns.rdatatype.from_text(qtype)) or []) if rr else None
        if got != sorted(got_answers):
            bad.append((pe, got))
    tap.ok(not bad, "%s: other addresses inside the claimed /%d get the same answer" % (label, scope))
    for pe, got in bad:
        tap.diag("  ECS %s got %r, expected %r" % (pe, got, got_answers))


def case(name, qtype, ecs, expected, scope="exact", ordered=True, use_kdig=False, addr="127.0.0.1"):
    """One routed query. expected: list of rdata texts (order checked when ordered), or
    "NODATA". scope: "exact" | "valid" | "zero" | "positive" | None (not checked)."""
    label = "%s %s%s%s" % (name, qtype, (" ECS " + ecs) if ecs else " (no ECS)",
                           "" if addr == "127.0.0.1" else " via " + addr)
    rt = route_of(name, qtype)
    if rt is not None and rt.ecs and not rt.weighted and ecs and qtype in ("A", "AAAA", "TXT") and expected != "NODATA" \
            and not R.is_private(*fam_addr(ecs)[:2]):
        fam, a, _ = fam_addr(ecs)
        model = list(rt.decide(fam, a, GEO.lookup(fam, a)))
        if [x.strip('"') for x in model] != [x.strip('"') for x in expected]:
            tap.ok(False, "TEST BUG: %s: hand-written expectation %r != model %r" % (label, expected, model))
    if use_kdig:
        rcode, ans, e, auth, out = kdig_q(name, qtype, ecs, addr=addr)
        if rcode is None:
            tap.ok(False, "%s: kdig got a reply" % label)
            tap.diag(out[-1500:])
            return None
        ecs_t = e
        rc_ok = rcode == "NOERROR"
        auth_soa = any(len(a.split()) > 3 and a.split()[3] == "SOA" for a in auth)
    else:
        rr = q(name, qtype, ecs, addr=addr)
        if rr is None:
            tap.ok(False, "%s: got a reply" % label)
            return None
        ans = R.answer_texts(rr, name, dns.rdatatype.from_text(qtype))
        e = R.ecs_of(rr)
        ecs_t = (e[3], e[1], e[2]) if e else None
        rc_ok = rr.rcode() == dns.rcode.NOERROR
        auth_soa = any(rs.rdtype == dns.rdatatype.SOA for rs in rr.authority)
    if expected == "NODATA":
        tap.ok(rc_ok and ans == [] and auth_soa, "%s: NODATA (NOERROR, no answer, SOA in authority)" % label)
        if not (rc_ok and ans == [] and auth_soa):
            tap.diag("  got rcode ok=%r answers=%r soa=%r" % (rc_ok, ans, auth_soa))
        got = []
    else:
        tap.ok(rc_ok, "%s: NOERROR" % label)
        if ordered:
            tap.is_(ans, expected, "%s: answers %s in this order" % (label, " ".join(expected)))
        else:
            tap.is_(sorted(ans or []), sorted(expected), "%s: answers %s" % (label, " ".join(expected)))
        got = expected
    if ecs:
        fam, a, ln = fam_addr(ecs)
        if ecs_t is None:
            tap.ok(False, "%s: ECS option echoed" % label)
            return ans
        same = R.ip_int(ecs_t[0]) == a and (":" in ecs_t[0]) == (fam == 6) and ecs_t[1] == ln
        tap.ok(same, "%s: ECS echoed with the same family, address and source /%d" % (label, ln))
        if not same:
            tap.diag("  echoed %r" % (ecs_t,))
        sc = ecs_t[2]
        if isinstance(scope, int) and not isinstance(scope, bool):
            tap.is_(sc, scope, "%s: scope /%d" % (label, scope))
        elif scope == "zero":
            tap.is_(sc, 0, "%s: scope 0 (answer does not depend on the client address)" % label)
        elif scope == "source":
            tap.is_(sc, ln, "%s: scope = source prefix /%d (private ECS: the answer holds for that private "
                    "subnet only; 0 would let the resolver give it to its other clients)" % (label, ln))
        elif scope == "positive":
            tap.ok(sc > 0, "%s: scope > 0 (a location-dependent answer must not be cached for everyone)"
                   % label)
            if sc == 0:
                tap.diag("  got scope 0")
        elif scope in ("exact", "valid"):
            check_scope_block(name, qtype, ecs, got, sc, route_of(name, qtype), scope == "exact")
    else:
        if not use_kdig:
            tap.ok(R.ecs_of(rr) is None, "%s: no ECS option in the reply to a query without one" % label)
    return ans


N = "www.example.com"
# ---- boundaries: union, order, fallback, IP boundary with geo (kdig, as a user would) ------
case(N, "A", "2.0.0.0/24", ["192.0.2.1", "192.0.2.2", "192.0.2.3"], use_kdig=True)        # Los Angeles
case(N, "A", "2.2.0.0/24", ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.99"], use_kdig=True)  # NY + NYnet
case(N, "A", "2.2.128.0/24", ["192.0.2.1", "192.0.2.2", "192.0.2.3"], use_kdig=True)      # NY, outside NYnet
case(N, "A", "2.3.0.0/24", ["192.0.2.1", "192.0.2.2", "192.0.2.3"])                       # US, no city
case(N, "A", "2.4.0.0/24", ["192.0.2.1", "192.0.2.2"], use_kdig=True)                     # Canada
case(N, "A", "4.0.0.0/24", ["192.0.2.1", "192.0.2.2"])                                    # Brazil (sam)
case(N, "A", "3.0.0.0/24", ["198.51.100.1"], use_kdig=True)                               # Germany
case(N, "A", "3.2.0.0/24", ["198.51.100.1"])                                              # UK
case(N, "A", "1.0.0.0/24", ["192.0.2.50"], use_kdig=True)                                 # Japan only
case(N, "A", "1.0.1.0/24", ["198.51.100.1"])                                              # China
case(N, "A", "7.0.0.0/24", ["198.51.100.1"])                                              # not in the DB
case(N, "A", "2.2.1.0/32", ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.99"])
case(N, "A", None, ["198.51.100.1"])                       # no ECS: 127.0.0.1, unknown -> fallback
case(N, "A", "2600:1000::/56", ["192.0.2.1", "192.0.2.2", "192.0.2.3"], use_kdig=True)    # v6 LA
case(N, "A", "2a00:1001::/48", ["192.0.2.50"])                                            # v6 Osaka
case(N, "A", "2a00:1000::/56", ["198.51.100.1"])                                          # v6 Berlin
case(N, "A", "::ffff:1.0.0.0/120", ["192.0.2.50"], scope="positive")   # v4-mapped ECS: JP

# source prefix shorter than the networks: decided on the truncated address
case(N, "A", "2.0.0.0/15", ["192.0.2.1", "192.0.2.2", "192.0.2.3"], scope="valid")
# TTLs: the route's ttl (60), the default (300)
rr = q(N, "A", "2.0.0.0/24")
tap.ok(rr is not None and rr.answer and rr.answer[0].ttl == 60, "routed www A has the route's ttl 60 (got %r)"
       % (rr.answer[0].ttl if rr is not None and rr.answer else None,))
rr = q("jpcn.example.com", "A", "1.0.0.0/24")
tap.ok(rr is not None and rr.answer and rr.answer[0].ttl == 300, "route without ttl: default 300 (got %r)"
       % (rr.answer[0].ttl if rr is not None and rr.answer else None,))
# TCP: same answers and ECS handling
for e, want in (("2.2.0.0/24", ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.99"]), ("1.0.0.0/24", ["192.0.2.50"])):
    a, ln = e.split("/")
    rr = lib.tcp(R.ecs_message(N, "A", a, int(ln)), PORT)
    ee = R.ecs_of(rr)
    tap.ok(rr is not None and R.answer_texts(rr, N, dns.rdatatype.A) == want and ee is not None and ee[2] > 0,
           "TCP %s A ECS %s: %s, scope > 0" % (N, e, " ".join(want)))

# IPv6 addresses that embed IPv4 (docs/geoip.md): located through the IPv4 address; the
# scope is the offset plus the IPv4 block (JP 1.0.0.0/24 next to CN 1.0.1.0/24)
case("jpcn.example.com", "A", "::ffff:1.0.0.0/120", ["192.0.2.1"], scope=120)
case("jpcn.example.com", "A", "2002:100::/48", ["192.0.2.1"], scope=40)           # 6to4 of 1.0.0.0
case("jpcn.example.com", "A", "2002:100:100::/48", ["192.0.2.2"], scope=40)       # 6to4 of 1.0.1.0
case("jpcn.example.com", "A", "2001:0:abcd:1234:0:0:feff:fffa/128", ["192.0.2.1"], scope=120)  # Teredo, client 1.0.0.5
case(N, "A", "2002:200::/48", ["192.0.2.1", "192.0.2.2", "192.0.2.3"], scope="positive")     # 6to4 of LA
case(N, "A", "2002:a00::/48", ["198.51.100.1"], scope="source")                             # 6to4 of 10.0.0.0: private

# ---- cities and subdivisions ---------------------------------------------------------------
case("cities.example.com", "A", "2.0.0.0/24", ["192.0.2.10", "192.0.2.11"])    # LA: city + US-CA
case("cities.example.com", "A", "2.1.0.0/24", ["192.0.2.10", "192.0.2.11"])    # SF
case("cities.example.com", "A", "2.2.0.0/24", ["192.0.2.12"])                  # NY: fallback
case("cities.example.com", "A", "2.5.0.0/24", ["192.0.2.12"])                  # Las Vegas (US-NV)
case("cities.example.com", "A", "2600:1000::/56", ["192.0.2.10", "192.0.2.11"])

# ---- scope: JP and CN /24s side by side ----------------------------------------------------
for e in ("1.0.0.0/24", "1.0.0.77/32", "1.0.1.0/24", "1.0.2.0/24", "1.0.3.128/25"):
    want = {"1.0.0": ["192.0.2.1"], "1.0.1": ["192.0.2.2"]}.get(e[:5], ["192.0.2.3"])
    ans = case("jpcn.example.com", "A", e, want)
rr = q("jpcn.example.com", "A", "1.0.0.0/24")
sc = R.ecs_of(rr)[2] if rr is not None and R.ecs_of(rr) else None
tap.ok(sc is not None and sc >= 24, "jpcn from 1.0.0.0/24 (JP next to CN 1.0.1.0/24): scope >= 24 (got %r)" % sc)
case("jpcn.example.com", "A", "6.0.0.0/24", ["192.0.2.3"])
case("jpcn.example.com", "A", "7.1.2.0/24", ["192.0.2.3"])  # fallback: scope must not be 0 (JP gets another)
rr = q("jpcn.example.com", "A", "7.1.2.0/24")
sc = R.ecs_of(rr)[2] if rr is not None and R.ecs_of(rr) else None
tap.ok(sc is not None and sc > 0, "jpcn fallback answer is not sent with scope 0 (got %r)" % sc)

# ---- location-independent data: scope 0 ----------------------------------------------------
case("same.example.com", "A", "1.0.0.0/24", ["192.0.2.7", "192.0.2.8"], scope="zero")
case("same.example.com", "A", "2.0.0.0/24", ["192.0.2.7", "192.0.2.8"], scope="zero", use_kdig=True)
case("static.example.com", "A", "1.0.0.0/24", ["192.0.2.77"], scope="zero", use_kdig=True)
rr = q("example.com", "SOA", "1.0.0.0/24")
e = R.ecs_of(rr)
tap.ok(rr is not None and rr.rcode() == 0 and len(R.answer_texts(rr)) == 1 and e is not None and e[2] == 0,
       "apex SOA (static) answered with ECS scope 0")

# ---- static types next to routed ones --------------------------------------------------------
case(N, "MX", "1.0.0.0/24", ["10 mail.example.com."], scope="zero", use_kdig=True)
case(N, "AAAA", "1.0.0.0/24", ["2001:db8::1"], scope="zero")
case(N, "TXT", "1.0.0.0/24", "NODATA", scope="zero")
case("example.com", "TXT", "2.0.0.0/24", ["\"apex static\""], scope="zero")

# ---- NODATA when nothing matches and there is no fallback -----------------------------------
case("jponly.example.com", "A", "1.0.0.0/24", ["192.0.2.1"])
case("jponly.example.com", "A", "3.0.0.0/24", "NODATA", scope="valid", use_kdig=True)
case("jponly.example.com", "A", "2.0.0.0/24", "NODATA", scope="valid")
case("jponly.example.com", "A", None, "NODATA")
rr = q("jponly.example.com", "A", "3.0.0.0/24")
sc = R.ecs_of(rr)[2] if rr is not None and R.ecs_of(rr) else None
tap.ok(sc is not None and sc > 0, "jponly NODATA is not sent with scope 0 (JP gets an answer) (got %r)" % sc)

# ---- closest ----------------------------------------------------------------------------------
case("near.example.com", "A", "2.0.0.0/24", ["192.0.2.34"], use_kdig=True)    # LA -> SF
case("near.example.com", "A", "2.5.0.0/24", ["192.0.2.34"])                   # Las Vegas -> SF
case("near.example.com", "A", "2.2.0.0/24", ["192.0.2.31"])                   # NY -> Ashburn
case("near.example.com", "A", "3.1.0.0/24", ["192.0.2.32"])                   # Paris -> Frankfurt
case("near.example.com", "A", "1.0.1.0/24", ["192.0.2.33"])                   # Beijing -> Tokyo
case("near.example.com", "A", "1.0.2.0/24", ["192.0.2.33"])                   # Sydney -> Tokyo
case("near.example.com", "A", "4.0.0.0/24", ["192.0.2.31"])                   # Sao Paulo -> Ashburn
case("near.example.com", "A", "5.0.0.0/24", ["192.0.2.31"])                   # RU, no coordinates: 1st
case("near.example.com", "A", "7.0.0.0/24", ["192.0.2.31"])                   # unknown: 1st
case("near.example.com", "A", None, ["192.0.2.31"])
case("nearall.example.com", "A", "2.0.0.0/24", ["192.0.2.34", "192.0.2.31", "192.0.2.33", "192.0.2.32"],
     use_kdig=True)
case("nearall.example.com", "A", "3.0.0.0/24", ["192.0.2.32", "192.0.2.31", "192.0.2.34", "192.0.2.33"])
case("nearall.example.com", "A", "1.0.0.0/24", ["192.0.2.33", "192.0.2.34", "192.0.2.32", "192.0.2.31"])
case("nearall.example.com", "A", "5.0.0.0/24", ["192.0.2.31", "192.0.2.32", "192.0.2.33", "192.0.2.34"])
case("nearbig.example.com", "A", "3.0.0.0/24", ["192.0.2.32", "192.0.2.31", "192.0.2.34", "192.0.2.33"])
case("nearbig.example.com", "A", "2a00:1001::/48", ["192.0.2.33", "192.0.2.34", "192.0.2.32", "192.0.2.31"])
case("nearbig.example.com", "A", "5.0.0.0/24", ["192.0.2.31", "192.0.2.32", "192.0.2.33", "192.0.2.34"])
# ties keep the configured order (192.0.2.20 before 192.0.2.10, both at 48,2)
case("tie.example.com", "A", "3.1.0.0/24", ["192.0.2.20", "192.0.2.10", "192.0.2.30"], use_kdig=True)
case("tie.example.com", "A", "1.0.0.0/24", ["192.0.2.30", "192.0.2.20", "192.0.2.10"])
case("tie.example.com", "A", "5.0.0.0/24", ["192.0.2.20", "192.0.2.10", "192.0.2.30"])
# boundaries first, then closest, then select 2
case("geoclose.example.com", "A", "2.0.0.0/24", ["192.0.2.42", "192.0.2.41"])   # LA: 41,42,43 -> SF, Ashburn
case("geoclose.example.com", "A", "2.2.0.0/24", ["192.0.2.41", "192.0.2.42"])   # NY
case("geoclose.example.com", "A", "2.4.0.0/24", ["192.0.2.41", "192.0.2.42"])   # Montreal: Americas only
case("geoclose.example.com", "A", "3.0.0.0/24", ["192.0.2.45", "192.0.2.44"])   # DE: fallback sorted
case("geoclose.example.com", "A", "1.0.1.0/24", ["192.0.2.44", "192.0.2.45"])   # CN: fallback sorted
case("geoclose.example.com", "A", "5.0.0.0/24", ["192.0.2.44", "192.0.2.45"])   # RU no coords: config order

# named places as locations: their midpoints (model-computed order, checked by hand too)
case("named.example.com", "A", "2.5.0.0/24", ["192.0.2.122", "192.0.2.121", "192.0.2.123", "192.0.2.124"])  # Las Vegas
case("named.example.com", "A", "2.2.0.0/24", ["192.0.2.121", "192.0.2.122", "192.0.2.123", "192.0.2.124"])  # New York
case("named.example.com", "A", "3.2.0.0/24", ["192.0.2.123", "192.0.2.121", "192.0.2.124", "192.0.2.122"])  # London
case("named.example.com", "A", "1.0.1.0/24", ["192.0.2.124", "192.0.2.123", "192.0.2.122", "192.0.2.121"])  # Beijing
case("named.example.com", "A", "5.0.0.0/24", ["192.0.2.121", "192.0.2.122", "192.0.2.123", "192.0.2.124"])  # no coords

# ---- ecs: false ---------------------------------------------------------------------------------
case("noecs.example.com", "A", "1.0.0.0/24", ["192.0.2.72"], scope="zero", use_kdig=True)  # source 127.0.0.1
case("noecs.example.com", "A", "3.0.0.0/24", ["192.0.2.72"], scope="zero")
case("noecs.example.com", "A", None, ["192.0.2.72"])

# ---- source address without ECS; private ECS = the resolver's own address -------------------
case("src.example.com", "A", None, ["192.0.2.81"], use_kdig=True)
case("src.example.com", "A", "1.0.0.0/24", ["192.0.2.82"])
case("src.example.com", "A", "3.0.0.0/24", ["192.0.2.83"])
if V6:
    case("src.example.com", "A", None, ["192.0.2.81"], addr="::1")
    case(N, "A", None, ["198.51.100.1"], addr="::1")
    case(N, "A", "2.0.0.0/24", ["192.0.2.1", "192.0.2.2", "192.0.2.3"], addr="::1")
for e in ("10.1.2.0/24", "192.168.1.0/24", "127.0.0.0/8", "192.0.2.0/24", "172.16.5.0/24",
          "fc00:1::/48", "fd12:3456::/48", "fe80::/64"):
    case("src.example.com", "A", e, ["192.0.2.81"], scope="source",
         use_kdig=e in ("10.1.2.0/24", "fd12:3456::/48"))
    case(N, "A", e, ["198.51.100.1"], scope="source")
# private ECS on a route that is the same for everyone: still scope 0
case("same.example.com", "A", "10.1.2.0/24", ["192.0.2.7", "192.0.2.8"], scope="zero")
# source prefix 0: "do not use my address" -> decided on the packet's source, scope 0
case("src.example.com", "A", "0.0.0.0/0", ["192.0.2.81"], scope="zero")
case("src.example.com", "A", "::/0", ["192.0.2.81"], scope="zero")

# ---- routed wildcard ------------------------------------------------------------------------------
case("a.cdn.example.com", "A", "1.0.0.0/24", ["192.0.2.91"], use_kdig=True)
case("b.cdn.example.com", "A", "3.0.0.0/24", ["192.0.2.92"])
case("x.y.cdn.example.com", "A", "1.0.0.0/24", ["192.0.2.91"])
case("a.cdn.example.com", "TXT", "1.0.0.0/24", ["\"wild\""], scope="zero")
case("real.cdn.example.com", "A", "1.0.0.0/24", ["192.0.2.5"], scope="zero")   # RFC 4592: no wildcard
case("WwW.ExAmPlE.CoM", "A", "1.0.0.0/24", ["192.0.2.50"])                    # names are case-insensitive
rr = q("a.cdn.example.com", "A", "1.0.0.0/24")
tap.ok(rr is not None and rr.answer and rr.answer[0].name.to_text() == "a.cdn.example.com.",
       "routed wildcard answer is owned by the query name")

# ---- routed CNAME, TXT, MX (apex), SRV, AAAA ---------------------------------------------------
rr = q("alias.example.com", "A", "1.0.0.0/24")
tap.ok(rr is not None and R.answer_texts(rr, "alias.example.com", dns.rdatatype.CNAME) == ["jp-target.example.com."]
       and R.answer_texts(rr, "jp-target.example.com", dns.rdatatype.A) == ["192.0.2.111"],
       "routed CNAME from JP: alias -> jp-target (chased: 192.0.2.111)")
if rr is not None and not rr.answer:
    tap.diag("  alias A from JP: empty answer, rcode %d" % rr.rcode())
e = R.ecs_of(rr)
tap.ok(e is not None and e[2] >= 24, "routed CNAME: scope of the CNAME decision (>= 24 next to CN), got %r"
       % (e[2] if e else None,))
rr = q("alias.example.com", "A", "3.0.0.0/24")
tap.ok(rr is not None and R.answer_texts(rr, "alias.example.com", dns.rdatatype.CNAME) == ["www-target.example.com."]
       and R.answer_texts(rr, "www-target.example.com", dns.rdatatype.A) == ["192.0.2.112"],
       "routed CNAME from DE: alias -> www-target (chased: 192.0.2.112)")
e = R.ecs_of(rr)
tap.ok(e is not None and e[2] > 0, "routed CNAME fallback: scope > 0 (got %r)" % (e[2] if e else None,))
# a routed CNAME to a routed name: the message carries the longest scope of the two decisions
for e, target, want in (("1.0.0.0/24", "jpcn.example.com.", ["192.0.2.1"]),
                        ("1.0.1.0/24", "www.example.com.", ["198.51.100.1"]),
                        ("3.0.0.0/24", "www.example.com.", ["198.51.100.1"]),
                        ("2.2.0.0/24", "www.example.com.", ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.99"])):
    fam, a, ln = fam_addr(e)
    loc = GEO.lookup(fam, a)
    rr = q("chain.example.com", "A", e)
    got_c = R.answer_texts(rr, "chain.example.com", dns.rdatatype.CNAME) if rr is not None else None
    got_a = R.answer_texts(rr, target, dns.rdatatype.A) if rr is not None else None
    tap.ok(got_c == [target] and got_a == want, "chain A ECS %s: CNAME %s then %s (got %r %r)"
           % (e, target, " ".join(want), got_c, got_a))
    sc = R.ecs_of(rr)[2] if rr is not None and R.ecs_of(rr) else None
    t_rt = route_of(target.rstrip("."), "A")
    c_rt = route_of("chain.example.com", "CNAME")
    w1 = R.widest_uniform_prefix(GEO, c_rt, fam, a)
    w2 = R.widest_uniform_prefix(GEO, t_rt, fam, a)
    tap.is_(sc, max(w1, w2), "chain A ECS %s: scope is the longer of the CNAME decision's (/%d) and the "
            "target's (/%d)" % (e, w1, w2))
case("alias.example.com", "CNAME", "1.0.0.0/24", ["jp-target.example.com."])
case("alias.example.com", "CNAME", "3.0.0.0/24", ["www-target.example.com."])
case("info.example.com", "TXT", "1.0.0.0/24", ["\"hello japan\""], use_kdig=True)
case("info.example.com", "TXT", "2.0.0.0/24", ["\"hello world\""])
case("example.com", "MX", "1.0.0.0/24", ["10 mx-jp.example.com."], use_kdig=True)
case("example.com", "MX", "3.0.0.0/24", ["20 mail.example.com."])
case("example.com", "MX", None, ["20 mail.example.com."])
case("example.com", "NS", "1.0.0.0/24", ["ns1.example.com."], scope="zero")
case("_sip._udp.example.com", "SRV", "2.2.0.0/24", ["10 5 5060 sip-us.example.com."], use_kdig=True)
case("_sip._udp.example.com", "SRV", "3.0.0.0/24", ["10 5 5060 sip.example.com."])
case("v6.example.com", "AAAA", "2a00:1000::/48", ["2001:db8::e"], use_kdig=True)
case("v6.example.com", "AAAA", "3.1.0.0/24", ["2001:db8::e"])
case("v6.example.com", "AAAA", "5.0.0.0/24", ["2001:db8::e"])          # RU is in Europe (no coords)
case("v6.example.com", "AAAA", "2600:1000::/56", ["2001:db8::f"])

# ---- IPv6 and IPv4 networks in one IP boundary, together with geo ---------------------------
case("ipgeo.example.com", "A", "2a00:1000:8000::/48", ["192.0.2.1", "192.0.2.2"], use_kdig=True)
case("ipgeo.example.com", "A", "2a00:1000:ffff:ff00::/56", ["192.0.2.1", "192.0.2.2"])
case("ipgeo.example.com", "A", "2a00:1000::/48", ["192.0.2.2"])
case("ipgeo.example.com", "A", "2a00:1000:7fff::/48", ["192.0.2.2"])
case("ipgeo.example.com", "A", "2600:1000::/56", ["192.0.2.3"])
case("ipgeo.example.com", "A", "2.5.200.0/24", ["192.0.2.1"])
case("ipgeo.example.com", "A", "2.5.0.0/24", ["192.0.2.3"])
case("ipgeo.example.com", "A", "3.0.0.0/24", ["192.0.2.2"])

# ---- single-address IP boundaries (/32, /128): scopes longer than the source prefix ------------
case("host.example.com", "A", "2.5.0.7/32", ["192.0.2.141"])
case("host.example.com", "A", "2.5.0.6/32", ["192.0.2.142"])
case("host.example.com", "A", "2.5.0.0/24", ["192.0.2.142"])       # scope must be > 24: .7 is inside
case("host.example.com", "A", "2a00:1000::7/128", ["192.0.2.141"])
case("host.example.com", "A", "2a00:1000::/56", ["192.0.2.142"])   # scope /126: ::7 is in the /56
case("host.example.com", "A", "2a00:1000:0:100::/56", ["192.0.2.142"])

# ---- weights ---------------------------------------------------------------------------------
NW = 2000
msgs = [R.ecs_message("weighted.example.com", "A", "1.0.0.0", 24) for _ in range(NW)]
reps = R.batch_udp(PORT, msgs, window=32, timeout=2.0 * lib.SLOW, deadline_s=60 * lib.SLOW)
cnt = {}
scopes = set()
for rep in reps:
    if rep is None:
        cnt["(none)"] = cnt.get("(none)", 0) + 1
        continue
    a = R.answer_texts(rep, "weighted.example.com", dns.rdatatype.A)
    cnt[" ".join(a)] = cnt.get(" ".join(a), 0) + 1
    e = R.ecs_of(rep)
    scopes.add(e[2] if e else None)
tap.ok(set(cnt) <= {"192.0.2.61", "192.0.2.62"} and sum(cnt.values()) == NW,
       "weighted select 1: every reply is one of the two answers (%r)" % cnt)
f62 = cnt.get("192.0.2.62", 0) / float(NW)
tap.ok(0.65 <= f62 <= 0.85, "weights 1:3 over %d queries: the weight-3 answer %.1f%% (expected ~75%%)"
       % (NW, 100 * f62))
tap.is_(scopes, {0}, "weighted route without boundaries: scope 0")

# ---- reload: a changed route goes live; a broken one keeps the old data -----------------------


def jpcn_from_jp():
    rr = q("jpcn.example.com", "A", "1.0.0.0/24")
    return R.answer_texts(rr, "jpcn.example.com", dns.rdatatype.A) if rr is not None else None


def wait_answer(want, secs=10.0):
    deadline = time.monotonic() + secs * lib.SLOW
    got = None
    while time.monotonic() < deadline:
        got = jpcn_from_jp()
        if got == want:
            break
        time.sleep(0.1)
    return got


orig = open(SRV.conf_path).read()
c = json.loads(orig)
c["zones"]["example.com"]["routes"]["jpcn"]["A"]["answers"][0]["value"] = "192.0.2.101"
with open(SRV.conf_path, "w") as f:
    f.write(json.dumps(c, indent=2) + "\n")
os.kill(SRV.proc.pid, signal.SIGHUP)
tap.is_(wait_answer(["192.0.2.101"]), ["192.0.2.101"], "SIGHUP: a changed route answer goes live")
c["boundaries"]["Japan"] = ["JP", "1.2.3.0/33"]
with open(SRV.conf_path, "w") as f:
    f.write(json.dumps(c, indent=2) + "\n")
os.kill(SRV.proc.pid, signal.SIGHUP)
time.sleep(1.0 * lib.SLOW)
tap.is_(jpcn_from_jp(), ["192.0.2.101"], "SIGHUP with a bad CIDR in a boundary: the old routes keep serving")
tap.ok(SRV.alive(), "server alive after the failed reload")

# ---- a routed answer too big for UDP: TC over UDP (with the ECS echo), all of it over TCP ----
rr = q("big.example.com", "TXT", "1.0.0.0/24")
tap.ok(rr is not None and (rr.flags & dns.flags.TC) and R.ecs_of(rr) is not None,
       "routed TXT of 40 x 75 bytes over UDP: TC=1, ECS echoed")
rr = lib.tcp(R.ecs_message("big.example.com", "TXT", "1.0.0.0", 24), PORT)
want = ['"answer %02d %s"' % (i, "x" * 60) for i in range(40)]
tap.is_(R.answer_texts(rr, "big.example.com", dns.rdatatype.TXT) if rr is not None else None, want,
        "... over TCP: all 40 answers in configured order")
tap.is_(R.ecs_of(rr)[2] if rr is not None and R.ecs_of(rr) else None, 0, "... scope 0 (same for everyone)")

# ---- weights inside a boundary ------------------------------------------------------------------
msgs = [R.ecs_message("wgeo.example.com", "A", "1.0.0.0", 24) for _ in range(600)] + \
       [R.ecs_message("wgeo.example.com", "A", "3.0.0.0", 24) for _ in range(100)]
reps = R.batch_udp(PORT, msgs, window=32, timeout=2.0 * lib.SLOW, deadline_s=60 * lib.SLOW)
jp = {}
jp_sc = set()
for rep in reps[:600]:
    k = " ".join(R.answer_texts(rep, "wgeo.example.com", dns.rdatatype.A)) if rep is not None else "(none)"
    jp[k] = jp.get(k, 0) + 1
    jp_sc.add(R.ecs_of(rep)[2] if rep is not None and R.ecs_of(rep) else None)
de = {}
de_sc = set()
for rep in reps[600:]:
    k = " ".join(R.answer_texts(rep, "wgeo.example.com", dns.rdatatype.A)) if rep is not None else "(none)"
    de[k] = de.get(k, 0) + 1
    de_sc.add(R.ecs_of(rep)[2] if rep is not None and R.ecs_of(rep) else None)
tap.ok(set(jp) == {"192.0.2.131", "192.0.2.132"} and 0.8 <= jp.get("192.0.2.132", 0) / 600.0 <= 0.97,
       "weights inside the Japan boundary (1:9, select 1) from JP: both, ~90%% the weight-9 one (%r)" % jp)
tap.is_(jp_sc, {24}, "weights inside a boundary: the scope is the boundary's block (/24), not 0")
tap.is_(de, {"192.0.2.133": 100}, "weights inside a boundary: others always get the fallback")
tap.ok(len(de_sc) == 1 and min(de_sc) is not None and min(de_sc) > 0, "... with one scope > 0 (%r)" % de_sc)

# ---- the server is still fine ------------------------------------------------------------------
lib.alive_check(SRV, "www.example.com", "A")
SRV.stop_and_check()

# ---- config errors caught by --check -------------------------------------------------------------
BASE = """server:
  listen: ["127.0.0.1@{port}"]
geoip:
  mmdb: %s
boundaries:
  Japan: [JP]
%%s
zones:
  example.com:
    file: {zone:example.com}
    routes:
      www:
%%s
""" % MMDB
SMALLZONE = {"example.com": "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hm 1 3600 600 86400 300\n"
                            "@ NS ns1\nns1 A 192.0.2.53\nmail A 192.0.2.25\n"}


def check_case(label, bounds, route, want_rc, needles):
    conf = BASE % (bounds, route)
    rc, err, _, _ = lib.geocast_check(conf, SMALLZONE)
    ok = rc == want_rc and all(n.lower() in err.lower() for n in needles)
    tap.ok(ok, "--check: %s -> exit %d, message mentions %s" % (label, want_rc, ", ".join(needles)))
    if not ok:
        tap.diag("  exit %r, stderr: %s" % (rc, err.strip()[-800:]))


A_OK = """        A:
          answers:
            - { value: 192.0.2.1, boundary: Japan }
            - { value: 192.0.2.2 }"""
check_case("a valid route", "", A_OK, 0, [])
check_case("unknown boundary name", "", """        A:
          answers:
            - { value: 192.0.2.1, boundary: Atlantis }
            - { value: 192.0.2.2 }""", 1, ["Atlantis"])
check_case("unknown place code", "  Nowhere: [ZZ]", A_OK, 1, ["ZZ"])
check_case("unknown continent/place word", "  Nowhere: [middle-earth]", A_OK, 1, ["middle-earth"])
check_case("bad CIDR (prefix too long)", "  net: [1.2.3.0/33]", A_OK, 1, ["1.2.3.0/33"])
check_case("bad CIDR (bad address)", "  net: [300.1.2.0/24]", A_OK, 1, ["300.1.2.0/24"])
check_case("bad IPv6 CIDR", "  net: [\"2001:db8::/129\"]", A_OK, 1, ["2001:db8::/129"])
check_case("bad A value", "", """        A:
          answers:
            - { value: not-an-address, boundary: Japan }
            - { value: 192.0.2.2 }""", 1, ["not-an-address"])
check_case("IPv4 value for AAAA", "", """        AAAA:
          answers:
            - { value: 192.0.2.1 }""", 1, ["AAAA"])
check_case("bad MX value (no preference)", "", """        MX:
          answers:
            - { value: mail }""", 1, ["MX"])
check_case("bad SRV value", "", """        SRV:
          answers:
            - { value: "10 5 mail" }""", 1, ["SRV"])
check_case("unsupported route type", "", """        NS:
          answers:
            - { value: ns1 }""", 1, ["NS"])
check_case("unknown answer key", "", """        A:
          answers:
            - { value: 192.0.2.1, boundry: Japan }""", 1, ["boundry"])
check_case("zero weight", "", """        A:
          answers:
            - { value: 192.0.2.1, weight: 0 }
            - { value: 192.0.2.2, weight: 1 }""", 1, ["weight"])
check_case("unknown location place", "", """        A:
          closest: { select: 1 }
          answers:
            - { value: 192.0.2.1, location: Atlantis }
            - { value: 192.0.2.2, location: JP }""", 1, ["Atlantis"])
# answers placed at a subdivision take its midpoint from the data, with or without closest
# (a config that could otherwise load its GeoIP data stripped to countries)
check_case("answer located at a subdivision, no closest", "", """        A:
          answers:
            - { value: 192.0.2.1, boundary: Japan, location: US-CA }
            - { value: 192.0.2.2 }""", 0, [])
check_case("answer located at a subdivision, closest", "", """        A:
          closest: { select: 1 }
          answers:
            - { value: 192.0.2.1, location: US-CA }
            - { value: 192.0.2.2, location: JP }""", 0, [])
check_case("latitude out of range", "", """        A:
          closest: true
          answers:
            - { value: 192.0.2.1, location: [91.0, 0.0] }""", 1, ["location"])
# a route without fallback: a warning, exit 0
conf = BASE % ("", """        A:
          answers:
            - { value: 192.0.2.1, boundary: Japan }""")
rc, err, _, _ = lib.geocast_check(conf, SMALLZONE)
tap.is_(rc, 0, "--check: a route without fallback is valid (exit 0)")
tap.ok(re.search(r"(?i)warn", err) and "www" in err,
       "--check: ... but warns on stderr, naming the route (%s)" % err.strip().replace("\n", " | ")[:200])
# geoip required for a geographic boundary
conf = """server:
  listen: ["127.0.0.1@{port}"]
boundaries:
  Japan: [JP]
zones:
  example.com:
    file: {zone:example.com}
    routes:
      www:
        A:
          answers:
            - { value: 192.0.2.1, boundary: Japan }
            - { value: 192.0.2.2 }
"""
rc, err, _, _ = lib.geocast_check(conf, SMALLZONE)
tap.ok(rc == 1 and "geoip" in err.lower(), "--check: a geographic boundary without geoip is an error naming geoip")
if not (rc == 1 and "geoip" in err.lower()):
    tap.diag("  exit %r: %s" % (rc, err.strip()[-500:]))
# an IP-only boundary needs no geoip
conf = conf.replace("Japan: [JP]", "Japan: [1.0.0.0/24]")
rc, err, _, _ = lib.geocast_check(conf, SMALLZONE)
tap.is_(rc, 0, "--check: IP boundaries only, no geoip: valid")
if rc != 0:
    tap.diag(err[-500:])

tap.done()

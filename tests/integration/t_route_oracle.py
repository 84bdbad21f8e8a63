#!/usr/bin/python3
"""Property test on the REAL GeoLite2 City database: geocast's routed answers and ECS scopes
against an independent oracle (tests/data/route/routelib.py: python3-maxminddb lookups, its
own haversine, the config's boundaries).

Three policies: countries (EU-27, US, the US west-coast states, JP, an IP boundary with an
IPv4 and an IPv6 network, fallback), continents (with an overlapping Americas boundary,
fallback), and closest (5 answers at city coordinates, select 2). For N random public IPv4
and IPv6 addresses (seeded PRNG; private, reserved and IPv4-embedding ranges skipped; a
third drawn by random descent of the database's tree so they land in known networks) every
route is queried over UDP with ECS source /32 (IPv4) or /56 (IPv6), many queries in flight.
Failures: any wrong answer (value or order), a missing reply or ECS echo, and any scope
that claims a block in which some address gets another answer — checked for a sample of
replies by walking every network of the claimed block in the database (or, for blocks with
too many networks, by sampling addresses in it) — and any scope narrower than the truth
allows (the parent block of the claimed one must hold another answer: DESIGN §3 "as wide as
the truth allows"). Then IPv6 ECS addresses that embed IPv4 (::ffff:a.b.c.d, 6to4, Teredo)
for the routes without IP boundaries: answers of the embedded IPv4 address (Teredo: the
client), scope = offset + a sound, maximal IPv4 prefix.

Env: ORACLE_N (default 12000 addresses), ORACLE_SEED (default 7), ORACLE_SCOPE_SAMPLES (300)."""

import json
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402
from lib import tap  # noqa: E402

sys.path.insert(0, os.path.join(lib.ROOT, "tests", "data", "route"))
import routelib as R  # noqa: E402

import dns.rdatatype  # noqa: E402

lib.require_geocastd()

MMDB = os.path.join(lib.ROOT, "data", "geoip", "GeoLite2-City.mmdb")
if not os.path.isfile(MMDB):
    tap.skip_all("GeoLite2 database absent (run scripts/fetch-geoip.sh data/geoip)")

# under TEST_RUNNER (valgrind) everything is much slower: fewer clients unless told
N = int(os.environ.get("ORACLE_N", "12000" if lib.SLOW <= 1 else "1500"))
SEED = int(os.environ.get("ORACLE_SEED", "7"))
NSCOPE = int(os.environ.get("ORACLE_SCOPE_SAMPLES", "300"))
T0 = time.monotonic()

EU27 = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()
CONF = {
    "server": {"listen": ["127.0.0.1@{port}"], "workers": 2},
    "geoip": {"mmdb": MMDB},
    "boundaries": {
        "EU27": EU27,
        "USA": ["US"],
        "WestCoast": ["US-CA", "US-OR", "US-WA"],
        "Japan": ["JP"],
        "Nets": ["57.0.0.0/8", "2a02:8000::/17"],
        "cEU": ["eur"], "cNA": ["nam"], "cSA": ["sam"], "cAS": ["asi"], "cAF": ["afr"], "cOC": ["oce"],
        "Americas": ["nam", "sam"],
    },
    "zones": {"example.com": {"file": "{zone:example.com}", "routes": {
        "country": {"A": {"answers": [
            {"value": "192.0.2.1", "boundary": "EU27"},
            {"value": "192.0.2.2", "boundary": "USA"},
            {"value": "192.0.2.3", "boundary": "WestCoast"},
            {"value": "192.0.2.4", "boundary": "Japan"},
            {"value": "192.0.2.5", "boundary": "Nets"},
            {"value": "192.0.2.9"},
        ]}},
        "continent": {"A": {"answers": [
            {"value": "198.51.100.11", "boundary": "cEU"},
            {"value": "198.51.100.12", "boundary": "cNA"},
            {"value": "198.51.100.13", "boundary": "Americas"},
            {"value": "198.51.100.14", "boundary": "cAS"},
            {"value": "198.51.100.15", "boundary": "cAF"},
            {"value": "198.51.100.16", "boundary": "cOC"},
            {"value": "198.51.100.19"},
        ]}},
        "closest": {"A": {"closest": {"select": 2}, "answers": [
            {"value": "203.0.113.1", "location": [39.04, -77.49]},     # Ashburn
            {"value": "203.0.113.2", "location": [50.11, 8.68]},       # Frankfurt
            {"value": "203.0.113.3", "location": [1.29, 103.85]},      # Singapore
            {"value": "203.0.113.4", "location": [-23.55, -46.63]},    # Sao Paulo
            {"value": "203.0.113.5", "location": [-33.87, 151.21]},    # Sydney
        ]}},
    }}},
}
ZONE = ("$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\n"
        "ns1 A 192.0.2.53\n")

rc, err, _, _ = lib.geocast_check(json.dumps(CONF, indent=1), {"example.com": ZONE})
if rc != 0 and "unknown key" in err:
    tap.skip_all("routing not supported yet")

ROUTES = R.routes_from_config(CONF)
NAMES = ["country", "continent", "closest"]
GEO = R.Geo(MMDB)

# ---- clients --------------------------------------------------------------------------------------
rng = random.Random(SEED)
RIR12 = [0x2400, 0x2600, 0x2800, 0x2a00, 0x2c00, 0x2001, 0x2003]   # RIR /12s and two /16s


def tree_descent(family):
    """A random address inside a network the database knows (random walk down the tree)."""
    bits = R.bits_of(family)
    v = GEO.v4_root if family == 4 else 0
    a = 0
    for depth in range(bits):
        if v >= GEO.node_count:
            break
        l, r = GEO._node(v)
        choices = [b for b, c in ((0, l), (1, r)) if c != GEO.node_count]
        if not choices:
            break
        b = rng.choice(choices)
        a |= b << (bits - 1 - depth)
        v = (l, r)[b]
    rest = bits - depth
    if rest > 0:
        a |= rng.getrandbits(rest)
    return a


def draw(family):
    for _ in range(1000):
        k = rng.random()
        if family == 4:
            a = tree_descent(4) if k < 0.35 else rng.getrandbits(32)
        else:
            if k < 0.35:
                a = tree_descent(6)
            elif k < 0.7:
                p = rng.choice(RIR12)
                if p & 0xF:           # a /16
                    a = (p << 112) | rng.getrandbits(112)
                else:                 # a /12
                    a = ((p >> 4) << 116) | rng.getrandbits(116)
            else:
                a = (1 << 125) | rng.getrandbits(125)
            a &= ~((1 << 72) - 1)         # the /56 that ECS carries
        if not R.is_private(family, a):
            return a
    raise RuntimeError("could not draw a public address")


n4 = N * 6 // 10
clients = [(4, draw(4)) for _ in range(n4)] + [(6, draw(6)) for _ in range(N - n4)]

# ---- oracle -----------------------------------------------------------------------------------------
expected = {}
ties = 0
for fam, a in clients:
    loc = GEO.lookup(fam, a)
    for name in NAMES:
        t = []
        expected[(fam, a, name)] = ROUTES[("example.com", name, "A")].decide(fam, a, loc, ties=t)
        if t:
            expected[(fam, a, name)] = None       # a distance tie: order not determined
            ties += 1
t_oracle = time.monotonic() - T0

# ---- server --------------------------------------------------------------------------------------------
try:
    srv = lib.start_geocast(json.dumps(CONF, indent=1), zones={"example.com": ZONE}, probe="example.com")
except RuntimeError as e:
    tap.ok(False, "geocastd starts with the oracle config")
    tap.diag(str(e)[-2000:])
    tap.done()

queries = []
msgs = []
for fam, a in clients:
    for name in NAMES:
        queries.append((fam, a, name))
        msgs.append(R.ecs_message(name + ".example.com", "A", R.ip_str(fam, a), 32 if fam == 4 else 56))
t1 = time.monotonic()
replies = R.batch_udp(srv.port, msgs, window=64, timeout=1.0 * lib.SLOW, retries=3, deadline_s=90 * lib.SLOW)
t_query = time.monotonic() - t1

wrong = []
noreply = []
badecs = []
scopes = {4: [], 6: []}
for (fam, a, name), rep in zip(queries, replies):
    if rep is None:
        noreply.append((fam, a, name))
        continue
    got = tuple(R.answer_texts(rep, name + ".example.com", dns.rdatatype.A))
    e = R.ecs_of(rep)
    src = 32 if fam == 4 else 56
    if e is None or e[1] != src or R.ip_int(e[3]) != a or e[0] != (1 if fam == 4 else 2):
        badecs.append((fam, a, name, e))
    else:
        scopes[fam].append(e[2])
    want = expected[(fam, a, name)]
    if want is not None and got != want:
        wrong.append((fam, a, name, want, got, GEO.lookup(fam, a)))

tap.diag("%d clients (%d IPv4, %d IPv6) x %d routes = %d queries in %.1fs (oracle %.1fs); %d distance ties skipped"
         % (len(clients), n4, len(clients) - n4, len(NAMES), len(queries), t_query, t_oracle, ties))
tap.ok(not noreply, "every query answered (%d unanswered)" % len(noreply))
for fam, a, name in noreply[:5]:
    tap.diag("  no reply: %s.example.com A ECS %s/%d" % (name, R.ip_str(fam, a), 32 if fam == 4 else 56))
tap.ok(not badecs, "every reply echoes the ECS option with the query's family, address and source (%d bad)"
       % len(badecs))
for fam, a, name, e in badecs[:5]:
    tap.diag("  %s.example.com A ECS %s: echoed %r" % (name, R.ip_str(fam, a), e))
for name in NAMES:
    w = [x for x in wrong if x[2] == name]
    tot = sum(1 for q in queries if q[2] == name)
    tap.ok(not w, "route %s: %d of %d answers differ from the oracle" % (name, len(w), tot))
    for fam, a, _n, want, got, loc in w[:15]:
        tap.diag("  %s.example.com A ECS %s/%d: expected %s, got %s (location %r)"
                 % (name, R.ip_str(fam, a), 32 if fam == 4 else 56, " ".join(want), " ".join(got) or "(empty)", loc))
for name in NAMES:
    hist = {}
    for (fam, a, n), want in expected.items():
        if n == name:
            k = " ".join(want) if want else "(tie)"
            hist[k] = hist.get(k, 0) + 1
    tap.diag("route %s, expected answers: %s" % (name, ", ".join(
        "%s x%d" % kv for kv in sorted(hist.items(), key=lambda kv: -kv[1])[:12])))
for fam in (4, 6):
    s = scopes[fam]
    if s:
        tap.diag("IPv%d: average scope /%.1f (min /%d, max /%d) over %d replies"
                 % (fam, sum(s) / float(len(s)), min(s), max(s), len(s)))

# ---- scope soundness --------------------------------------------------------------------------------------
srng = random.Random(SEED + 1)
idx = [i for i, r in enumerate(replies) if r is not None and R.ecs_of(r) is not None]
sample = srng.sample(idx, min(NSCOPE, len(idx)))
bad_scope = []
walked = sampled = 0
deadline = time.monotonic() + 40
checked = 0
for i in sample:
    if time.monotonic() > deadline:
        break
    fam, a, name = queries[i]
    rep = replies[i]
    sc = R.ecs_of(rep)[2]
    got = tuple(R.answer_texts(rep, name + ".example.com", dns.rdatatype.A))
    route = ROUTES[("example.com", name, "A")]
    bits = R.bits_of(fam)
    net = (a >> (bits - sc) << (bits - sc)) if sc else 0
    ds = R.block_decisions(GEO, route, fam, net, sc, budget=4000)
    if ds is not None:
        walked += 1
        others = ds - {got}
    else:
        sampled += 1
        others = set()
        for _ in range(300):
            p = net | (srng.getrandbits(bits - sc) if sc < bits else 0)
            if R.is_private(fam, p):
                continue
            d = route.decide(fam, p, GEO.lookup(fam, p))
            if d != got:
                others.add(d)
                break
    checked += 1
    # ties: a block whose only "other" decisions differ by the order of tied answers is fine
    if others:
        bad_scope.append((fam, a, name, sc, got, sorted(others)[:3], R.ip_str(fam, net)))
tap.ok(checked >= min(NSCOPE, len(idx)) // 2, "scope soundness: checked %d replies (%d blocks walked network by "
       "network, %d sampled)" % (checked, walked, sampled))
tap.ok(not bad_scope, "no scope claims a block in which some address gets another answer (%d bad of %d)"
       % (len(bad_scope), checked))
for fam, a, name, sc, got, others, net in bad_scope[:15]:
    tap.diag("  %s.example.com A ECS %s/%d -> %s scope /%d: block %s/%d also holds %r"
             % (name, R.ip_str(fam, a), 32 if fam == 4 else 56, " ".join(got), sc, net, sc, others))

# ---- scope width: as wide as the truth allows -------------------------------------------------------
# The parent block (scope - 1) must contain an address with another answer; otherwise the
# server could have claimed a wider block (DESIGN §3 "as wide as the truth allows"). Private
# ranges count with their database location here (the compiled table's view).
narrow = []
undetermined = {n: 0 for n in NAMES}
checked_w = {n: 0 for n in NAMES}
deadline = time.monotonic() + 30
for i in sample:
    if time.monotonic() > deadline:
        break
    fam, a, name = queries[i]
    rep = replies[i]
    sc = R.ecs_of(rep)[2]
    if sc == 0:
        continue
    got = tuple(R.answer_texts(rep, name + ".example.com", dns.rdatatype.A))
    route = ROUTES[("example.com", name, "A")]
    bits = R.bits_of(fam)
    p = sc - 1
    net = (a >> (bits - p) << (bits - p)) if p else 0
    other = R.block_has_other(GEO, route, fam, net, p, got, budget=20000, mode="strict")
    if other is None:
        undetermined[name] += 1
        continue
    checked_w[name] += 1
    if not other:
        narrow.append((fam, a, name, sc, got))
for name in NAMES:
    w = [x for x in narrow if x[2] == name]
    tap.ok(not w, "route %s: no scope narrower than the truth allows (%d too narrow of %d checked; %d undetermined)"
           % (name, len(w), checked_w[name], undetermined[name]))
    for fam, a, _n, sc, got in w[:10]:
        tap.diag("  %s.example.com A ECS %s -> %s scope /%d, but all of /%d gets that answer"
                 % (name, R.ip_str(fam, a), " ".join(got), sc, sc - 1))

# ---- IPv6 addresses that embed IPv4 (docs/geoip.md, docs/behaviour.md) ------------------------------
# ::ffff:a.b.c.d (source /120), 6to4 2002:AABB:CCDD:: (/48) and Teredo 2001:0:S:S:F:P:~C (/128)
# are located through the embedded IPv4 address (Teredo: the client, NOT of the last 32
# bits); the scope is offset + an IPv4 prefix that must be sound (and as wide as the truth
# allows) in the IPv4 space. Routes without IP boundaries only (continent, closest).
NA = int(os.environ.get("ORACLE_ALIAS_N", "600" if lib.SLOW <= 1 else "100"))
arng = random.Random(SEED + 2)
alias = []      # (kind, v6 address int, source, offset, v4 address as decided)
for i in range(NA):
    v4 = draw(4)
    kind = ("mapped", "6to4", "teredo")[i % 3]
    if kind == "mapped":
        v4 &= 0xFFFFFF00
        alias.append((kind, (0xFFFF << 32) | v4, 120, 96, v4))
    elif kind == "6to4":
        alias.append((kind, (0x2002 << 112) | (v4 << 80), 48, 16, v4))
    else:
        server = arng.getrandbits(32)
        flags_port = arng.getrandbits(32)
        a = (0x20010000 << 96) | (server << 64) | (flags_port << 32) | (v4 ^ 0xFFFFFFFF)
        alias.append((kind, a, 128, 96, v4))
AR = ["continent", "closest"]
amsgs = []
aq = []
for kind, a, src, off, v4 in alias:
    for name in AR:
        aq.append((kind, a, src, off, v4, name))
        amsgs.append(R.ecs_message(name + ".example.com", "A", R.ip_str(6, a), src))
areps = R.batch_udp(srv.port, amsgs, window=64, timeout=1.0 * lib.SLOW, retries=3, deadline_s=60 * lib.SLOW)
awrong = []
abad = []
anarrow = []
achecked = 0
deadline = time.monotonic() + 20
for (kind, a, src, off, v4, name), rep in zip(aq, areps):
    route = ROUTES[("example.com", name, "A")]
    want = route.decide(4, v4, GEO.lookup(4, v4))
    got = tuple(R.answer_texts(rep, name + ".example.com", dns.rdatatype.A)) if rep is not None else None
    if got != want:
        awrong.append((kind, a, src, name, want, got))
        continue
    e = R.ecs_of(rep)
    if e is None or e[1] != src:
        abad.append((kind, a, src, name, "echo %r" % (e,)))
        continue
    sc = e[2]
    if sc < off:
        abad.append((kind, a, src, name, "scope /%d is wider than the IPv4 alias range (offset %d)" % (sc, off)))
        continue
    if time.monotonic() > deadline or arng.random() > 0.25:
        continue
    p4 = min(32, sc - off)
    net4 = (v4 >> (32 - p4) << (32 - p4)) if p4 else 0
    other = R.block_has_other(GEO, route, 4, net4, p4, want, budget=20000, mode="lenient")
    if other:
        abad.append((kind, a, src, name, "scope /%d claims IPv4 %s/%d, which holds other answers"
                     % (sc, R.ip_str(4, net4), p4)))
        continue
    if other is None:
        continue
    achecked += 1
    if p4 > 0 and sc - off == p4:
        par = (v4 >> (33 - p4) << (33 - p4)) if p4 > 1 else 0
        o2 = R.block_has_other(GEO, route, 4, par, p4 - 1, want, budget=20000, mode="strict")
        if o2 is False:
            anarrow.append((kind, a, src, name, sc))
tap.ok(not awrong, "IPv4-embedding IPv6 ECS (mapped, 6to4, Teredo): %d of %d answers differ from the oracle "
       "(located through the embedded IPv4 address)" % (len(awrong), len(aq)))
for kind, a, src, name, want, got in awrong[:10]:
    tap.diag("  %s %s.example.com A ECS %s/%d: expected %s, got %s" % (kind, name, R.ip_str(6, a), src,
             " ".join(want), " ".join(got) if got else got))
tap.ok(not abad, "IPv4-embedding IPv6 ECS: echo and sound scopes (offset + IPv4 block), %d checked in IPv4"
       % achecked)
for kind, a, src, name, why in abad[:10]:
    tap.diag("  %s %s.example.com A ECS %s/%d: %s" % (kind, name, R.ip_str(6, a), src, why))
tap.ok(not anarrow, "IPv4-embedding IPv6 ECS: no scope narrower than the truth allows (%d too narrow)" % len(anarrow))
for kind, a, src, name, sc in anarrow[:10]:
    tap.diag("  %s %s.example.com A ECS %s/%d: scope /%d could be one bit wider" % (kind, name, R.ip_str(6, a), src, sc))

lib.alive_check(srv, "country.example.com", "A")
srv.stop_and_check()
tap.diag("total %.1fs" % (time.monotonic() - T0))
tap.done()

#!/usr/bin/python3
"""The seed examples (examples/seed000, seed002, seed003) on the REAL GeoLite2 City database
(data/geoip/GeoLite2-City.mmdb, fetched by scripts/fetch-geoip.sh): each example config is
started as shipped except for the listen port (a free one), the mmdb path (absolute) and
the zone file path. Client addresses are found at test time with python3-maxminddb (a Los
Angeles address, one in San Francisco, elsewhere in the US, JP, DE, CA, BR, Las Vegas, New
York...), queried with kdig +subnet=ADDR/24 (or /32 when the /24 is not uniform for the
route), and the answers, their order, the ECS echo and a scope > 0 whose block really is
uniform (tests/data/route/routelib.py walks the database) are checked.

Skipped when the database is absent or the daemon does not support routing yet."""

import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402
from lib import tap  # noqa: E402

sys.path.insert(0, os.path.join(lib.ROOT, "tests", "data", "route"))
import routelib as R  # noqa: E402

lib.require_geocastd()

MMDB = os.path.join(lib.ROOT, "data", "geoip", "GeoLite2-City.mmdb")
if not os.path.isfile(MMDB):
    tap.skip_all("GeoLite2 database absent (run scripts/fetch-geoip.sh data/geoip)")
try:
    import yaml
except ImportError:
    tap.skip_all("python3-yaml not installed")

EX = os.path.join(lib.ROOT, "examples")

rc, err, _, _ = lib.geocast_check(open(os.path.join(EX, "seed003", "geocast.yaml")).read()
                                  .replace("../../data/geoip/GeoLite2-City.mmdb", MMDB)
                                  .replace("file: example.com.zone",
                                           "file: " + os.path.join(EX, "seed003", "example.com.zone")))
if rc != 0 and "unknown key" in err:
    tap.skip_all("routing not supported yet")

V6 = lib.have_ipv6()
GEO = R.Geo(MMDB)


def example_text(seed, extra=None):
    d = os.path.join(EX, seed)
    t = open(os.path.join(d, "geocast.yaml")).read()
    t = t.replace("@5353", "@{port}")
    if not V6:
        t = t.replace(', "::1@{port}"', "")
    t = t.replace("../../data/geoip/GeoLite2-City.mmdb", MMDB)
    t = t.replace("file: example.com.zone", "file: " + os.path.join(d, "example.com.zone"))
    for a, b in (extra or []):
        assert a in t, a
        t = t.replace(a, b)
    return t


def model(text, name="www", typ="A"):
    return R.routes_from_config(yaml.safe_load(text))[("example.com", name, typ)]


# ---- finding clients ---------------------------------------------------------------------------

RNG = random.Random(20261124)
CANDIDATES = []   # (addr int, loc): random public /24 starts, drawn once, shared by all finders


def _draw(n=400000):
    seen = 0
    while len(CANDIDATES) < n and seen < n * 3:
        seen += 1
        a = RNG.getrandbits(24) << 8
        if R.is_private(4, a):
            continue
        loc = GEO.lookup(4, a)
        if loc is R.UNKNOWN:
            continue
        CANDIDATES.append((a, loc))


def find(pred, k=1):
    """Up to k /24 starts whose location satisfies pred; first from the random sample, then
    (for rare cities) by iterating the database's networks (bounded)."""
    if not CANDIDATES:
        _draw(150000)
    out = [a for a, loc in CANDIDATES if pred(loc)][:k]
    if len(out) < k:
        n = 0
        for net, rec in GEO.reader:
            n += 1
            if n > 3000000 or len(out) >= k:
                break
            if net.version != 4 or net.prefixlen > 24:
                continue
            loc = R.loc_of_record(rec)
            if pred(loc):
                a = int(net.network_address)
                if not R.is_private(4, a):
                    out.append(a)
    return out


def city(cc, name):
    return lambda loc: loc.country == cc and loc.city == name


def country(cc, exclude_cities=()):
    return lambda loc: loc.country == cc and loc.city not in exclude_cities


def subnet_for(route, a):
    """/24 when the whole /24 gets one decision (model), else /32."""
    ds = R.block_decisions(GEO, route, 4, a, 24, budget=2000)
    if ds is not None and len(ds) == 1:
        return "%s/24" % R.ip_str(4, a)
    return "%s/32" % R.ip_str(4, a)


# ---- querying ------------------------------------------------------------------------------------

def kq(srv, name, qtype, ecs=None):
    args = [name, qtype, "+norec"] + (["+subnet=" + ecs] if ecs else [])
    out = lib.kdig(srv.port, *args)
    p = lib.parse_text_reply(out)
    if p is None:
        return None, [], None, out
    ans = []
    for line in p["answer"]:
        f = line.split()
        if len(f) >= 5 and f[3] == qtype:
            ans.append(" ".join(f[4:]))
    m = re.search(r"CLIENT-SUBNET: ([0-9a-fA-F.:]+)/(\d+)/(\d+)", out)
    e = (m.group(1), int(m.group(2)), int(m.group(3))) if m else None
    return p["rcode"], ans, e, out


def check(srv, route, label, ecs, expected, qtype="A", name="www.example.com", scope="routed"):
    rcode, ans, e, out = kq(srv, name, qtype, ecs)
    what = "%s: %s %s%s" % (label, name, qtype, (" +subnet=" + ecs) if ecs else " (no ECS)")
    tap.ok(rcode == "NOERROR", "%s: NOERROR" % what)
    if not tap.is_(ans, expected, "%s -> %s" % (what, " ".join(expected))):
        if ecs:
            fam = 6 if ":" in ecs else 4
            a = R.ip_int(ecs.split("/")[0])
            tap.diag("  GeoIP location of %s: %r" % (ecs, GEO.lookup(fam, a)))
    if not ecs:
        return
    a, ln = ecs.split("/")
    fam = 6 if ":" in a else 4
    ok = e is not None and R.ip_int(e[0]) == R.ip_int(a) and e[1] == int(ln)
    tap.ok(ok, "%s: ECS echoed (%s)" % (what, e and "%s/%d/%d" % e))
    if e is None:
        return
    sc = e[2]
    if scope == "zero":
        tap.is_(sc, 0, "%s: scope 0 for data that does not depend on location" % what)
        return
    if scope == "none":
        return
    tap.ok(sc > 0, "%s: scope > 0 (got /%d)" % (what, sc))
    if route is None or R.is_private(fam, R.ip_int(a)):
        return
    bits = R.bits_of(fam)
    addr = R.ip_int(a)
    net = (addr >> (bits - sc) << (bits - sc)) if sc else 0
    want = route.decide(fam, addr, GEO.lookup(fam, addr))
    ds = R.block_decisions(GEO, route, fam, net, sc, budget=30000)
    if ds is None:      # too many networks to walk: sample
        rng = random.Random(addr)
        ds = set()
        for _ in range(400):
            p = net | (rng.getrandbits(bits - sc) if sc < bits else 0)
            if not R.is_private(fam, p):
                ds.add(route.decide(fam, p, GEO.lookup(fam, p)))
        how = "400 sampled addresses"
    else:
        how = "every network in it"
    good = ds <= {want}
    tap.ok(good, "%s: every address of the claimed block %s/%d gets this answer (%s)"
           % (what, R.ip_str(fam, net), sc, how))
    if not good:
        tap.diag("  other decisions in the block: %r" % sorted(ds - {want})[:5])


def start(text):
    try:
        return lib.start_geocast(text, zones={}, v6=V6, probe="example.com")
    except RuntimeError as e:
        tap.ok(False, "geocastd starts on the example")
        tap.diag(str(e)[-2000:])
        return None


_draw(150000)

# ==== seed000: west-coast cities, rest of US, JP, default ===========================================
text = example_text("seed000")
rt = model(text)
srv = start(text)
if srv:
    la = find(city("US", "Los Angeles"), 2)
    sf = find(city("US", "San Francisco"), 2)
    us = find(country("US", ("Los Angeles", "San Francisco")), 3)
    jp = find(country("JP"), 2)
    de = find(country("DE"), 2)
    br = find(country("BR"), 1)
    tap.ok(la and sf and us and jp and de, "seed000: found LA, SF, US, JP and DE clients in the database")
    for lab, addrs, exp in (("Los Angeles", la, ["198.51.100.10"]), ("San Francisco", sf, ["198.51.100.10"]),
                            ("US (other city)", us, ["192.0.2.10"]), ("Japan", jp, ["203.0.113.10"]),
                            ("Germany", de, ["192.0.2.10"]), ("Brazil", br, ["192.0.2.10"])):
        for a in addrs:
            check(srv, rt, "seed000 " + lab, subnet_for(rt, a), exp)
    check(srv, rt, "seed000 no ECS (127.0.0.1, unknown)", None, ["192.0.2.10"])
    check(srv, rt, "seed000 private ECS", "10.1.2.0/24", ["192.0.2.10"], scope="none")
    check(srv, None, "seed000 static TXT", "8.8.8.0/24",
          ['"static: same answer for everyone (ECS scope 0)"'], qtype="TXT", scope="zero")
    if la:
        check(srv, rt, "seed000 Los Angeles /32", "%s/32" % R.ip_str(4, la[0] + 7), ["198.51.100.10"])
    srv.stop_and_check()

# ==== seed002: closest region =========================================================================
text = example_text("seed002")
rt = model(text)
rt6 = model(text, "www", "AAAA")
srv = start(text)
if srv:
    lv = find(city("US", "Las Vegas"), 2)
    ny = find(city("US", "New York"), 2)
    de = find(country("DE"), 1)
    jp = find(country("JP"), 1)
    tap.ok(lv and ny, "seed002: found Las Vegas and New York clients in the database")
    for a in lv:
        check(srv, rt, "seed002 Las Vegas", subnet_for(rt, a), ["192.0.2.1"])
        check(srv, rt6, "seed002 Las Vegas", subnet_for(rt6, a), ["2001:db8:1::1"], qtype="AAAA")
    for a in ny:
        check(srv, rt, "seed002 New York", subnet_for(rt, a), ["198.51.100.1"])
    for a in de:
        check(srv, rt, "seed002 Germany", subnet_for(rt, a), ["198.51.100.1"])
    for a in jp:
        check(srv, rt, "seed002 Japan", subnet_for(rt, a), ["192.0.2.1"])
    check(srv, rt, "seed002 no ECS (no coordinates: configured order)", None, ["192.0.2.1"])
    check(srv, None, "seed002 static MX", "8.8.8.0/24", ["10 mail.example.com."], qtype="MX", scope="zero")
    srv.stop_and_check()

# ==== seed003: boundaries, multiple matches, fallback, IP boundary =====================================
text = example_text("seed003")
rt = model(text)
srv = start(text)
US3 = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
AM2 = ["192.0.2.1", "192.0.2.2"]
us = find(country("US"), 3)
ca = find(country("CA"), 2)
br = find(country("BR"), 1)
de = find(country("DE"), 2)
jp = find(country("JP"), 1)
if srv:
    tap.ok(us and ca and de, "seed003: found US, CA and DE clients in the database")
    for lab, addrs, exp in (("USA", us, US3), ("Canada", ca, AM2), ("Brazil", br, AM2),
                            ("Germany", de, ["198.51.100.1"]), ("Japan", jp, ["198.51.100.1"])):
        for a in addrs:
            check(srv, rt, "seed003 " + lab, subnet_for(rt, a), exp)
    check(srv, rt, "seed003 no ECS (127.0.0.1, unknown)", None, ["198.51.100.1"])
    # 203.0.113.0/24 is a documentation range: as ECS it says nothing (DESIGN §3)
    check(srv, rt, "seed003 ECS in the office (documentation) range", "203.0.113.0/24", ["198.51.100.1"],
          scope="none")
    check(srv, None, "seed003 static AAAA", "8.8.8.0/24", ["2001:db8::1"], qtype="AAAA", scope="zero")
    srv.stop_and_check()

# the office boundary on routable networks (the README's advice), and on 127.0.0.0/8 (no ECS)
OFF = "office: [203.0.113.0/24]"
if us and de:
    us24 = "%s/24" % R.ip_str(4, us[0])
    de24 = "%s/24" % R.ip_str(4, de[0])
    text = example_text("seed003", [(OFF, "office: [%s, %s]" % (us24, de24))])
    rt = model(text)
    srv = start(text)
    if srv:
        check(srv, rt, "seed003 office=%s (US)" % us24, us24, US3 + ["192.0.2.99"])
        check(srv, rt, "seed003 office=%s (DE): office only, no fallback" % de24, de24, ["192.0.2.99"])
        if ca:
            check(srv, rt, "seed003 office set, Canada", subnet_for(rt, ca[0]), AM2)
        check(srv, rt, "seed003 office set, Germany outside it", subnet_for(rt, de[1] if len(de) > 1 else de[0]),
              ["198.51.100.1"] if len(de) > 1 else ["192.0.2.99"])
        srv.stop_and_check()
text = example_text("seed003", [(OFF, "office: [127.0.0.0/8]")])
srv = start(text)
if srv:
    check(srv, None, "seed003 office=127.0.0.0/8, query from 127.0.0.1 without ECS", None, ["192.0.2.99"])
    srv.stop_and_check()

tap.done()

#!/usr/bin/python3
"""An independent model of geocast's geo routing (docs/config.md `boundaries`, `routes`;
DESIGN §2-§3), used as the oracle by tests/integration/t_routing.py, t_examples.py and
t_route_oracle.py. Written from the documentation, not from src/policy: it reads MaxMind DB
files with python3-maxminddb and walks their search tree itself to enumerate exactly the
networks inside a block (to check that an ECS scope never claims a block in which some
address gets another answer).

Model:
  * location of an address = the MaxMind record's continent.code, country.iso_code (else
    registered_country.iso_code), "CC-" + subdivisions[0].iso_code, city.names.en and
    location.latitude/longitude (both present and in range).
  * boundary entry: continent code/alias (nam, sam, ...), country code, subdivision
    "CC-SUB", city "CC/Name", or a CIDR. Answers whose boundary matches are kept (union,
    configured order); when none match, the answers without a boundary (the fallback);
    then closest (stable sort by haversine distance; no coordinates: configured order);
    then select N.
  * private/unroutable ECS addresses are "no ECS" (DESIGN §3): callers handle that; the
    block checks here treat private ranges as don't-care.
"""

import ipaddress
import math
import os

import maxminddb

CONTINENT_ALIASES = {"nam": "NA", "sam": "SA", "eur": "EU", "afr": "AF", "asi": "AS",
                     "oce": "OC", "ant": "AN"}
CONTINENTS = {"AF", "AN", "AS", "EU", "NA", "OC", "SA"}

# Private / unroutable ranges (DESIGN §3: RFC 1918, loopback, link-local, ULA, documentation,
# plus the usual special-purpose blocks). Used as don't-care in block checks and to skip
# addresses when generating random clients.
PRIVATE_V4 = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3")]
# In the IPv6 space, don't-care: private ranges and the IPv4-embedding ranges (::/96,
# ::ffff:0:0/96, Teredo 2001::/32, 6to4 2002::/16), whose semantics (folding into IPv4)
# this model does not reproduce; clients are never drawn from them.
PRIVATE_V6 = [ipaddress.ip_network(n) for n in (
    "::/96", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
    "2001:db8::/32", "2002::/16", "3fff::/20", "fc00::/7", "fe80::/10", "ff00::/8")]
ALIAS_V6 = [ipaddress.ip_network(n) for n in ("::/96", "::ffff:0:0/96", "2001::/32", "2002::/16")]
ALIAS_V6_T = [(int(n.network_address), n.prefixlen) for n in ALIAS_V6]
PRIVATE_V4_T = [(int(n.network_address), n.prefixlen) for n in PRIVATE_V4]
PRIVATE_V6_T = [(int(n.network_address), n.prefixlen) for n in PRIVATE_V6]


def bits_of(family):
    return 32 if family == 4 else 128


def in_net(addr, bits, net, plen):
    if plen == 0:
        return True
    return (addr >> (bits - plen)) == (net >> (bits - plen))


def is_private(family, addr):
    bits = bits_of(family)
    for net, plen in (PRIVATE_V4_T if family == 4 else PRIVATE_V6_T):
        if in_net(addr, bits, net, plen):
            return True
    if family == 6 and not in_net(addr, 128, 1 << 125, 3):
        return True      # outside 2000::/3 (global unicast): never a client here
    return False


def haversine_km(lat1, lon1, lat2, lon2):
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(a)))


class Loc:
    __slots__ = ("continent", "country", "subdivision", "city", "lat", "lon")

    def __init__(self, continent="", country="", subdivision="", city="", lat=None, lon=None):
        self.continent, self.country, self.subdivision = continent, country, subdivision
        self.city, self.lat, self.lon = city, lat, lon

    def has_coords(self):
        return self.lat is not None and self.lon is not None

    def key(self):
        return (self.continent, self.country, self.subdivision, self.city, self.lat, self.lon)

    def __repr__(self):
        return "Loc(%s)" % "/".join(str(x) for x in self.key())


UNKNOWN = Loc()
OPAQUE = Loc(continent="??")      # a piece whose location this model does not know


# Country -> continent (GeoNames assignment) for records that carry a country but no
# continent (registered_country-only records); continents seen in the database itself win.
_CONT_TABLE = {
    "AF": "AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW KE KM LR LS LY MA "
          "MG ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TN TZ UG YT ZA ZM ZW",
    "AN": "AQ BV GS HM TF",
    "AS": "AE AF AM AZ BD BH BN BT CC CN CX CY GE HK ID IL IN IO IQ IR JO JP KG KH KP KR KW KZ LA "
          "LB LK MM MN MO MV MY NP OM PH PK PS QA SA SG SY TH TJ TM TR TW UZ VN YE",
    "EU": "AD AL AT AX BA BE BG BY CH CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE LI "
          "LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA XK",
    "NA": "AG AI AW BB BL BM BQ BS BZ CA CR CU CW DM DO GD GL GP GT HN HT JM KN KY LC MF MQ MS MX "
          "NI PA PM PR SV SX TC TT US VC VG VI",
    "OC": "AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TL TO TV UM VU WF WS",
    "SA": "AR BO BR CL CO EC FK GF GY PE PY SR UY VE",
}
CC2CONT = {cc: cont for cont, ccs in _CONT_TABLE.items() for cc in ccs.split()}
LEARNED_CONT = {}


def loc_of_record(rec, cc2cont=None):
    if not rec:
        return UNKNOWN
    cont = ((rec.get("continent") or {}).get("code") or "").upper()
    cc = ((rec.get("country") or {}).get("iso_code") or "")
    if not cc:
        cc = ((rec.get("registered_country") or {}).get("iso_code") or "")
    cc = cc.upper()
    if cont and cc and (rec.get("country") or {}).get("iso_code"):
        LEARNED_CONT.setdefault(cc, cont)
    if not cont and cc:
        cont = LEARNED_CONT.get(cc) or (cc2cont or {}).get(cc) or CC2CONT.get(cc, "")
    sub = ""
    subs = rec.get("subdivisions") or []
    if subs and subs[0].get("iso_code") and cc:
        s = subs[0]["iso_code"].upper()
        sub = s if s.startswith(cc + "-") else cc + "-" + s
    city = ((rec.get("city") or {}).get("names") or {}).get("en") or ""
    lat = lon = None
    loc = rec.get("location") or {}
    la, lo = loc.get("latitude"), loc.get("longitude")
    if isinstance(la, (int, float)) and isinstance(lo, (int, float)) and -90 <= la <= 90 \
            and -180 <= lo <= 180:
        lat, lon = float(la), float(lo)
    return Loc(cont, cc, sub, city, lat, lon)


# ------------------------------------------------------------------------------------------
# MaxMind DB: lookups and an exact walk of the networks inside a block

class Geo:
    def __init__(self, path):
        self.path = path
        self.reader = maxminddb.open_database(path, maxminddb.MODE_MMAP if hasattr(maxminddb, "MODE_MMAP") else 0)
        md = self.reader.metadata()
        self.node_count = md.node_count
        self.record_size = md.record_size
        self.ip_version = md.ip_version
        with open(path, "rb") as f:
            self.tree = f.read(self.node_count * self.record_size // 4)
        self.node_bytes = self.record_size // 4
        self._rec_cache = {}
        self._loc_cache = {}
        self.cc2cont = {}
        self.v4_root = self._v4_root()

    # raw tree -------------------------------------------------------------------------------
    def _node(self, n):
        b = self.tree
        o = n * self.node_bytes
        rs = self.record_size
        if rs == 24:
            return (int.from_bytes(b[o:o + 3], "big"), int.from_bytes(b[o + 3:o + 6], "big"))
        if rs == 28:
            mid = b[o + 3]
            left = ((mid & 0xF0) << 20) | int.from_bytes(b[o:o + 3], "big")
            right = ((mid & 0x0F) << 24) | int.from_bytes(b[o + 4:o + 7], "big")
            return (left, right)
        return (int.from_bytes(b[o:o + 4], "big"), int.from_bytes(b[o + 4:o + 8], "big"))

    def _v4_root(self):
        if self.ip_version == 4:
            return 0
        n = 0
        for _ in range(96):
            if n >= self.node_count:
                return n
            n = self._node(n)[0]
        return n

    def _leaf_loc(self, v, family, net):
        """Location of a tree leaf value v (first address of its network: net)."""
        if v == self.node_count:
            return UNKNOWN
        if v in self._loc_cache:
            return self._loc_cache[v]
        if family == 4:
            ip = str(ipaddress.IPv4Address(net))
        else:
            ip = str(ipaddress.IPv6Address(net))
        rec = self.reader.get(ip)
        loc = loc_of_record(rec, self.cc2cont)
        self._loc_cache[v] = loc
        return loc

    def lookup(self, family, addr):
        """Location of one address (int). family 4 or 6."""
        ip = str(ipaddress.IPv4Address(addr)) if family == 4 else str(ipaddress.IPv6Address(addr))
        rec = self.reader.get(ip)
        return loc_of_record(rec, self.cc2cont)

    def learn_continents(self, max_records=200000):
        """country -> continent from records that carry both (for records lacking a continent)."""
        n = 0
        for _net, rec in self.reader:
            n += 1
            if n > max_records:
                break
            cc = ((rec.get("country") or {}).get("iso_code") or "")
            cont = ((rec.get("continent") or {}).get("code") or "")
            if cc and cont:
                self.cc2cont.setdefault(cc.upper(), cont.upper())

    def atoms(self, family, net, plen, split_cidrs, budget, mode="lenient"):
        return list(self.iter_atoms(family, net, plen, split_cidrs, budget, mode))

    def iter_atoms(self, family, net, plen, split_cidrs, budget, mode="lenient"):
        """Return [(net, plen, loc)] for the pieces covering block net/plen exactly, split
        along the tree's networks and along every CIDR in split_cidrs [(net, plen)] (same
        family). mode "lenient": pieces inside the private/special ranges are skipped
        (don't-care). mode "strict": private ranges count with their database location,
        and pieces inside the IPv6 ranges that embed IPv4 (::/96, ::ffff:0:0/96, Teredo,
        6to4), whose folding this model does not reproduce, get loc OPAQUE (a decision of
        their own). Raises Budget when more than budget pieces would be produced."""
        bits = bits_of(family)
        if mode == "lenient":
            dontcare = PRIVATE_V4_T if family == 4 else PRIVATE_V6_T
            opaque = []
        else:
            dontcare = []
            opaque = [] if family == 4 else ALIAS_V6_T
        count = 0
        v = self.v4_root if family == 4 else 0
        depth = 0
        while depth < plen and v < self.node_count:
            bit = (net >> (bits - 1 - depth)) & 1
            v = self._node(v)[bit]
            depth += 1

        def strictly_inside(n, p, cidrs):
            for cn, cp in cidrs:
                if cp > p and in_net(cn, bits, n, p):
                    return True
            return False

        def within(n, p, lst):
            for cn, cp in lst:
                if cp <= p and in_net(n, bits, cn, cp):
                    return True
            return False

        stack = [(v, net, plen)]
        while stack:
            v, n, p = stack.pop()
            if within(n, p, dontcare):
                continue
            if mode == "lenient" and family == 6 and p >= 3 and not in_net(n, 128, 1 << 125, 3):
                continue
            if within(n, p, opaque):
                count += 1
                yield (n, p, OPAQUE)
                continue
            if v < self.node_count:
                if p >= bits:
                    raise RuntimeError("tree deeper than the address")
                l, r = self._node(v)
                stack.append((r, n | (1 << (bits - 1 - p)), p + 1))
                stack.append((l, n, p + 1))
                continue
            if p < bits and (strictly_inside(n, p, split_cidrs) or strictly_inside(n, p, dontcare) or
                             strictly_inside(n, p, opaque) or
                             (mode == "lenient" and family == 6 and p < 3)):
                stack.append((v, n | (1 << (bits - 1 - p)), p + 1))
                stack.append((v, n, p + 1))
                continue
            count += 1
            if count > budget:
                raise Budget()
            yield (n, p, self._leaf_loc(v, family, n))


class Budget(Exception):
    pass


# ------------------------------------------------------------------------------------------
# policies

class Boundary:
    def __init__(self, name, entries):
        self.name = name
        self.continents, self.countries, self.subdivisions, self.cities = set(), set(), set(), set()
        self.v4, self.v6 = [], []
        for e in entries:
            e = str(e)
            if "/" in e and any(ch.isdigit() for ch in e.split("/")[-1]) and \
                    e.split("/")[-1].isdigit():
                n = ipaddress.ip_network(e, strict=False)
                (self.v4 if n.version == 4 else self.v6).append((int(n.network_address), n.prefixlen))
            elif "/" in e:
                cc, city = e.split("/", 1)
                self.cities.add((cc.upper(), city))
            elif e.lower() in CONTINENT_ALIASES:
                self.continents.add(CONTINENT_ALIASES[e.lower()])
            elif e.upper() in CONTINENTS:
                self.continents.add(e.upper())
            elif e.lower().startswith("country:"):
                self.countries.add(e[8:].upper())
            elif "-" in e:
                self.subdivisions.add(e.upper())
            else:
                self.countries.add(e.upper())

    def contains(self, family, addr, loc):
        bits = bits_of(family)
        for n, p in (self.v4 if family == 4 else self.v6):
            if in_net(addr, bits, n, p):
                return True
        if loc is UNKNOWN or not (loc.continent or loc.country):
            return False
        if loc.continent and loc.continent in self.continents:
            return True
        if loc.country and loc.country in self.countries:
            return True
        if loc.subdivision and loc.subdivision in self.subdivisions:
            return True
        if loc.city and (loc.country, loc.city) in self.cities:
            return True
        return False

    def cidrs(self, family):
        return self.v4 if family == 4 else self.v6


class Route:
    """answers: list of dicts {value, boundary?, location?: [lat, lon]}; closest: bool;
    select: int or 0."""

    def __init__(self, answers, boundaries, closest=False, select=0):
        self.answers = answers
        self.boundaries = boundaries
        self.closest = closest
        self.select = select

    def decide(self, family, addr, loc, ties=None):
        if loc is OPAQUE:
            return ("<opaque>",)
        matched = [i for i, a in enumerate(self.answers)
                   if a.get("boundary") and self.boundaries[a["boundary"]].contains(family, addr, loc)]
        if not matched:
            matched = [i for i, a in enumerate(self.answers) if not a.get("boundary")]
        if self.closest and loc.has_coords():
            d = {i: haversine_km(loc.lat, loc.lon, self.answers[i]["location"][0],
                                 self.answers[i]["location"][1]) for i in matched}
            matched = sorted(matched, key=lambda i: d[i])   # stable: ties keep config order
            if ties is not None:
                ds = sorted(d[i] for i in matched)
                for x, y in zip(ds, ds[1:]):
                    if abs(x - y) < 1e-6:
                        ties.append((x, y))
        if self.select:
            matched = matched[:self.select]
        return tuple(str(self.answers[i]["value"]) for i in matched)

    def split_cidrs(self, family):
        out = []
        for b in self.boundaries.values():
            out += b.cidrs(family)
        return out


def block_decisions(geo, route, family, net, plen, budget=20000, mode="lenient"):
    """Set of decisions over block net/plen (see Geo.atoms for mode), or None if the block
    has more than budget pieces."""
    try:
        atoms = geo.atoms(family, net, plen, route.split_cidrs(family), budget, mode)
    except Budget:
        return None
    return {route.decide(family, n, loc) for n, p, loc in atoms}


def block_has_other(geo, route, family, net, plen, want, budget=20000, mode="strict"):
    """True when some piece of block net/plen gets a decision other than want, False when
    none does, None when the block has more than budget pieces before one was found."""
    try:
        for n, p, loc in geo.iter_atoms(family, net, plen, route.split_cidrs(family), budget, mode):
            if route.decide(family, n, loc) != want:
                return True
    except Budget:
        return None
    return False


def widest_uniform_prefix(geo, route, family, addr, budget=20000, mode="lenient"):
    """The smallest prefix length p such that every address of addr/p gets the same decision
    as addr (mode: see Geo.atoms; lenient gives the widest, strict the narrowest
    defensible value). Blocks over budget are skipped (result may then be narrower)."""
    bits = bits_of(family)
    want = route.decide(family, addr, geo.lookup(family, addr))
    for p in range(0, bits + 1):
        net = (addr >> (bits - p) << (bits - p)) if p else 0
        ds = block_decisions(geo, route, family, net, p, budget, mode)
        if ds is None:
            continue
        if ds <= {want}:
            return p
    return bits


def root_dir():
    return os.environ.get("GEOCAST_ROOT") or os.path.abspath(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))


# ------------------------------------------------------------------------------------------
# configs and DNS helpers shared by the routing tests

def routes_from_config(conf):
    """{(zone, name, type): Route} from a config dict (as dumped to YAML/JSON)."""
    bds = {n: Boundary(n, e) for n, e in (conf.get("boundaries") or {}).items()}
    out = {}
    for zname, z in conf.get("zones", {}).items():
        for name, types in (z.get("routes") or {}).items():
            for typ, r in types.items():
                cl = r.get("closest")
                sel = r.get("select") or 0
                if isinstance(cl, dict):
                    sel = cl.get("select") or sel
                rt = Route(r["answers"], bds, closest=bool(cl), select=sel)
                rt.ecs = r.get("ecs", True)
                rt.weighted = any("weight" in a for a in r["answers"])
                out[(zname, name, typ)] = rt
    return out


def ecs_of(msg):
    """(family, srclen, scopelen, address) of the reply's ECS option, or None."""
    import dns.edns
    if msg is None:
        return None
    for o in msg.options:
        if o.otype == dns.edns.ECS:
            return (o.family, o.srclen, o.scopelen, o.address)
    return None


def answer_texts(msg, qname=None, rdtype=None):
    """Rdata texts of the answer section in wire order (all RRsets, or those matching)."""
    out = []
    if msg is None:
        return None
    for rrset in msg.answer:
        if qname is not None and rrset.name.to_text().rstrip(".").lower() != qname.rstrip(".").lower():
            continue
        if rrset.rdtype is not None and rdtype is not None and rrset.rdtype != rdtype:
            continue
        out += [rd.to_text() for rd in rrset]
    return out


def ecs_message(qname, qtype, addr=None, srclen=None):
    import dns.edns
    import dns.flags
    import dns.message
    opts = []
    if addr is not None:
        opts = [dns.edns.ECSOption(addr, srclen)]
    q = dns.message.make_query(qname, qtype, use_edns=0, payload=1232, options=opts)
    q.flags &= ~dns.flags.RD
    return q


def batch_udp(port, msgs, addr="127.0.0.1", window=64, timeout=2.0, retries=2, deadline_s=120.0):
    """Send dnspython queries over one UDP socket with up to `window` outstanding; returns
    the list of parsed replies (None where no reply came after `retries` resends). Bounded:
    gives up at deadline_s."""
    import select
    import socket
    import time
    import dns.message
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setblocking(False)
    n = len(msgs)
    replies = [None] * n
    wires = []
    for i, m in enumerate(msgs):
        m.id = i % 65536
        wires.append(m.to_wire())
    pending = {}          # qid -> (index, sent_at, tries)
    nxt = 0
    done = 0
    end = time.monotonic() + deadline_s
    try:
        while done < n and time.monotonic() < end:
            while nxt < n and len(pending) < window:
                qid = nxt % 65536
                if qid in pending:
                    break
                s.sendto(wires[nxt], (addr, port))
                pending[qid] = (nxt, time.monotonic(), 0)
                nxt += 1
            r, _, _ = select.select([s], [], [], 0.05)
            if r:
                for _ in range(256):
                    try:
                        data = s.recv(65535)
                    except BlockingIOError:
                        break
                    if len(data) < 2:
                        continue
                    qid = int.from_bytes(data[:2], "big")
                    if qid not in pending:
                        continue
                    i = pending.pop(qid)[0]
                    try:
                        replies[i] = dns.message.from_wire(data, ignore_trailing=True)
                    except Exception:  # noqa: BLE001 - unparsable counts as no reply
                        replies[i] = None
                    done += 1
            now = time.monotonic()
            for qid, (i, t0, tries) in list(pending.items()):
                if now - t0 > timeout:
                    if tries >= retries:
                        pending.pop(qid)
                        done += 1
                    else:
                        s.sendto(wires[i], (addr, port))
                        pending[qid] = (i, now, tries + 1)
    finally:
        s.close()
    return replies


def ip_int(s):
    return int(ipaddress.ip_address(s))


def ip_str(family, v):
    return str(ipaddress.IPv4Address(v)) if family == 4 else str(ipaddress.IPv6Address(v))

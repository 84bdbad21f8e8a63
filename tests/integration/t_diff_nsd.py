#!/usr/bin/python3
"""Differential test: geocastd against NSD (the reference) on the same zones.

Both servers load tests/data/diff/{diff.test,sub.diff.test}.zone. A few thousand queries
generated from a seeded PRNG (DIFF_SEED, default 20240101) are sent to both over UDP, and a
sample over TCP. Compared: rcode (with extended rcode), flags QR AA TC RD RA CD AD, answer and
authority sections (as multisets of RRs: names case-insensitive, TTLs included), presence of
OPT and its DO bit / NSID when EDNS was used, and glue in referrals. Every difference not
covered by the allow-list (ALLOW below, documented in tests/data/diff/README.md) fails.

Environment: DIFF_SEED, DIFF_PEER=geocastd|knot|nsd (knot/nsd: self-test of this harness
without geocastd), DIFF_VERBOSE=1 (print every difference).
"""

import collections
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

import dns.edns  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdataclass  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.zone  # noqa: E402

DATA = os.path.join(lib.ROOT, "tests", "data", "diff")
ZONES = ["diff.test", "sub.diff.test"]
APEXES = {dns.name.from_text(z) for z in ZONES}
SEED = int(os.environ.get("DIFF_SEED", "20240101"))
PEER = os.environ.get("DIFF_PEER", "geocastd")
VERBOSE = bool(os.environ.get("DIFF_VERBOSE"))
MAX_LISTED = 50

QTYPES = ["A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "DNAME", "SRV", "CAA", "SSHFP", "TLSA",
          "NAPTR", "PTR", "HINFO", "DS", "RRSIG", "DNSKEY", "NSEC", "ANY", "TYPE65280"]

# ------------------------------------------------------------------------------------------
# The allow-list: differences that are legitimate choices. Each rule is narrow: it names the
# exact part of the reply it excuses and the condition under which it applies.
ALLOW = {
    "tc-content":
        "Both replies have TC=1 over UDP: what a truncated reply carries besides the header and "
        "question is the server's choice (RFC 2181 section 9: the client must retry over TCP). "
        "NSD keeps the RRsets that fitted (e.g. a DNAME without its synthesized CNAME), geocast "
        "sends an empty answer. rcode, flags and OPT are still compared.",
    "ede-optional":
        "NSD adds an Extended DNS Error option (RFC 8914; code 20 'Not Authoritative' on "
        "REFUSED) that the peer does not send: EDE is optional (RFC 8914 section 3 'MAY'). "
        "Every other EDNS option code is compared.",
}
allow_hits = collections.Counter()


# ------------------------------------------------------------------------------------------
# query generation

def load_zone(origin):
    path = os.path.join(DATA, origin + ".zone")
    with open(path) as f:
        text = f.read()
    return text, dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)


def all_names(zones):
    """Every owner name and every empty non-terminal between it and its apex."""
    names = set()
    for origin, z in zones.items():
        apex = dns.name.from_text(origin)
        for n in z.nodes.keys():
            names.add(n)
            p = n
            while p != apex and len(p) > 1:
                p = p.parent()
                names.add(p)
    return sorted(names)


def rand_label(rng):
    r = rng.random()
    if r < 0.05:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))   # binary label
    if r < 0.08:
        return b"*"
    n = rng.randint(1, 12)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-_") for _ in range(n)).encode()


def child(rng, parent, depth=1):
    labels = [rand_label(rng) for _ in range(depth)]
    try:
        return dns.name.Name(labels + list(parent.labels))
    except dns.name.NameTooLong:
        return parent


def long_name(rng, parent):
    """A name close to the 255-octet limit under parent."""
    labels = list(parent.labels)
    total = sum(len(x) + 1 for x in labels)
    out = []
    while total + 64 <= 255:
        lab = "".join(rng.choice("abcdefghij") for _ in range(63)).encode()
        out.append(lab)
        total += 64
    if total + 2 <= 255:
        n = 255 - total - 1
        out.append(b"z" * n)
    return dns.name.Name(out + labels)


def randomize_case(rng, name):
    labels = []
    for lab in name.labels:
        labels.append(bytes((c ^ 0x20) if (65 <= c <= 90 or 97 <= c <= 122) and rng.random() < 0.5 else c
                            for c in lab))
    return dns.name.Name(labels)


def variant(rng):
    """Random per-query wire options: EDNS buffer, DO, RD, CD, AD, NSID, EDNS version."""
    r = rng.random()
    edns = None if r < 0.3 else rng.choice([512, 512, 1232, 4096])
    v = {"edns": edns, "do": False, "rd": rng.random() < 0.5, "cd": rng.random() < 0.1,
         "ad": rng.random() < 0.1, "nsid": False, "ednsver": 0}
    if edns is not None:
        v["do"] = rng.random() < 0.3
        v["nsid"] = rng.random() < 0.05
        v["ednsver"] = 1 if rng.random() < 0.01 else 0
        v["cookie"] = rng.random() < 0.05                 # a client COOKIE (RFC 7873)
        v["unknown_opt"] = rng.random() < 0.03            # an unassigned option code
    return v


def build(qname, qtype, v, case_rng=None):
    if case_rng is not None:
        qname = randomize_case(case_rng, qname)
    opts = []
    if v["nsid"]:
        opts.append(dns.edns.GenericOption(dns.edns.NSID, b""))
    if v.get("cookie"):
        opts.append(dns.edns.GenericOption(10, bytes(range(1, 9))))
    if v.get("unknown_opt"):
        opts.append(dns.edns.GenericOption(65001, b"geocast"))
    opts = opts or None
    q = dns.message.make_query(qname, qtype, use_edns=(v["ednsver"] if v["edns"] is not None else -1),
                               payload=v["edns"] or 512, want_dnssec=v["do"], options=opts)
    if v["edns"] is not None and v["ednsver"]:
        q.use_edns(v["ednsver"], q.ednsflags, v["edns"], options=opts)
    q.flags = dns.flags.Flag(0)
    if v["rd"]:
        q.flags |= dns.flags.RD
    if v["cd"]:
        q.flags |= dns.flags.CD
    if v["ad"]:
        q.flags |= dns.flags.AD
    return q


def generate(zones):
    rng = random.Random(SEED)
    queries = []   # (group, message)
    names = all_names(zones)

    def add(group, qname, qtype):
        v = variant(rng)
        case_rng = rng if rng.random() < 0.3 else None
        queries.append((group, build(qname, qtype, v, case_rng)))

    # existing names (and ENTs) x every qtype
    for n in names:
        for t in QTYPES:
            add("existing", n, t)
    # a second pass over random (name, qtype) pairs with fresh wire options and case
    for _ in range(800):
        add("existing", rng.choice(names), rng.choice(QTYPES))
    # random non-existent names under every node (one and two labels deep)
    for n in names:
        for depth in (1, 2):
            add("nonexistent", child(rng, n, depth), rng.choice(QTYPES))
        if rng.random() < 0.1:
            add("nonexistent", long_name(rng, n), rng.choice(QTYPES))
    # under the delegations, at several depths
    for d in ["deleg.diff.test", "ext.diff.test", "mixed.diff.test", "ds.diff.test", "sub.diff.test",
              "deeper.sub.diff.test"]:
        dn = dns.name.from_text(d)
        for _ in range(15):
            add("delegation", child(rng, dn, rng.randint(1, 3)), rng.choice(QTYPES))
    # DNAME-synthesized names
    for d in ["dn.diff.test", "dnext.diff.test"]:
        dn = dns.name.from_text(d)
        for lab in [b"x", b"nope", b"X"]:
            for t in ["A", "TXT", "AAAA", "ANY", "CNAME", "DNAME"]:
                add("dname", dns.name.Name([lab] + list(dn.labels)), t)
        for _ in range(10):
            add("dname", child(rng, dn, rng.randint(1, 2)), rng.choice(QTYPES))
        # names near 255 octets: for dn the substituted name is too long (YXDOMAIN, RFC 6672)
        for t in ["A", "CNAME", "TXT"]:
            add("dname", long_name(rng, dn), t)
    # outside every zone (REFUSED), including suffix traps
    for o in ["outside.example.", "www.outside.example.", "test.", ".", "xdiff.test.", "iff.test.",
              "diff.test.evil.", "www.xsub.diff.test.evil.", "sub.diff.test.example.", "com."]:
        for t in ["A", "SOA", "NS", "ANY"]:
            add("outside", dns.name.from_text(o), t)
    return queries


# ------------------------------------------------------------------------------------------
# comparison

FLAGS = [("QR", dns.flags.QR), ("AA", dns.flags.AA), ("TC", dns.flags.TC), ("RD", dns.flags.RD),
         ("RA", dns.flags.RA), ("CD", dns.flags.CD), ("AD", dns.flags.AD)]


def parse(raw):
    if raw is None:
        return None
    try:
        return dns.message.from_wire(raw, one_rr_per_rrset=True, ignore_trailing=False)
    except Exception as e:  # noqa: BLE001 — report unparsable replies as a difference
        return e


def rrs(section):
    """Multiset of (owner lower-case, class, type, TTL, rdata) — rdata compares names
    case-insensitively (dnspython compares the canonical form)."""
    c = collections.Counter()
    for rrset in section:
        for rd in rrset:
            c[(rrset.name.to_text().lower(), rrset.rdclass, rrset.rdtype, rrset.ttl,
               rd.to_digestable().hex())] += 1
    return c


def rrset_keys(section):
    return {(r.name.to_text().lower(), r.rdclass, r.rdtype) for r in section}


def flags_of(m):
    return {n for n, f in FLAGS if m.flags & f}


def opt_summary(m):
    if m.edns < 0:
        return None
    nsid = None
    for o in m.options:
        if o.otype == dns.edns.NSID:
            nsid = o.to_wire() if hasattr(o, "to_wire") else None
    return {"version": m.edns, "do": bool(m.ednsflags & dns.flags.DO), "nsid": nsid,
            "codes": sorted(int(o.otype) for o in m.options)}


def referral_glue(m):
    """Additional A/AAAA records owned at or below an NS RRset in authority that is not a zone
    apex we serve (i.e. a delegation): the glue that RFC 9471 requires in referrals."""
    cuts = [r.name for r in m.authority if r.rdtype == dns.rdatatype.NS and r.name not in APEXES]
    glue = [r for r in m.additional if r.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
            and any(r.name.is_subdomain(c) for c in cuts)]
    return rrs(glue)


def compare(q, ref, peer):
    """Return (differences, allow-rules used) for one query."""
    diffs = []
    used = []
    if isinstance(ref, Exception) or isinstance(peer, Exception):
        if not (isinstance(ref, Exception) and isinstance(peer, Exception)):
            diffs.append(("parse", "reference: %r / peer: %r" % (
                ref if isinstance(ref, Exception) else "ok", peer if isinstance(peer, Exception) else "ok")))
        return diffs, used
    if ref is None or peer is None:
        if (ref is None) != (peer is None):
            diffs.append(("reply", "reference %s, peer %s" % ("none" if ref is None else "replied",
                                                              "none" if peer is None else "replied")))
        return diffs, used
    if ref.rcode() != peer.rcode():
        diffs.append(("rcode", "%s vs %s" % (dns.rcode.to_text(ref.rcode()), dns.rcode.to_text(peer.rcode()))))
    if ref.id != q.id or peer.id != q.id:
        diffs.append(("id", "%d / %d for %d" % (ref.id, peer.id, q.id)))
    if [x.to_text().lower() for x in ref.question] != [x.to_text().lower() for x in peer.question]:
        diffs.append(("question", "differs"))
    fr, fp = flags_of(ref), flags_of(peer)
    if fr != fp:
        diffs.append(("flags", "%s vs %s" % (" ".join(sorted(fr)), " ".join(sorted(fp)))))
    ra, pa = rrs(ref.answer), rrs(peer.answer)
    if "TC" in fr and "TC" in fp:
        if ra != pa or rrs(ref.authority) != rrs(peer.authority):
            used.append("tc-content")
        ra, pa = collections.Counter(), collections.Counter()
        ref_auth, peer_auth = [], []
    else:
        ref_auth, peer_auth = ref.authority, peer.authority
    if ra != pa:
        diffs.append(("answer", "differs"))
    if rrs(ref_auth) != rrs(peer_auth):
        diffs.append(("authority", "differs"))
    if "TC" not in fr and referral_glue(ref) != referral_glue(peer):
        diffs.append(("glue", "referral glue differs"))
    # OPT
    if q.edns >= 0:
        orf, opr = opt_summary(ref), opt_summary(peer)
        if (orf is None) != (opr is None):
            diffs.append(("opt", "OPT present: reference %s, peer %s" % (orf is not None, opr is not None)))
        elif orf is not None:
            if orf["version"] != opr["version"]:
                diffs.append(("opt", "EDNS version %d vs %d" % (orf["version"], opr["version"])))
            if orf["do"] != opr["do"]:
                diffs.append(("opt", "DO %s vs %s" % (orf["do"], opr["do"])))
            if orf["nsid"] != opr["nsid"]:
                diffs.append(("opt", "NSID %r vs %r" % (orf["nsid"], opr["nsid"])))
            rc_, pc_ = orf["codes"], opr["codes"]
            if rc_ != pc_ and 15 in rc_ and 15 not in pc_:
                used.append("ede-optional")
                rc_ = [c for c in rc_ if c != 15]
            if rc_ != pc_:
                diffs.append(("opt", "option codes %s vs %s" % (rc_, pc_)))
    else:
        if (ref.edns >= 0) != (peer.edns >= 0):
            diffs.append(("opt", "OPT in reply to a query without EDNS: reference %s, peer %s"
                          % (ref.edns >= 0, peer.edns >= 0)))
    return diffs, used


# ------------------------------------------------------------------------------------------
# I/O

def ask(srv, q, transport):
    wire = q.to_wire()
    if transport == "udp":
        raw = lib.udp_raw(wire, srv.port, timeout=2.0)
        if raw is None:   # one retry: a lost datagram on loopback is rare but not impossible
            raw = lib.udp_raw(wire, srv.port, timeout=2.0)
        return raw
    r = lib.tcp_raw(wire, srv.port, timeout=3.0)
    return r[0] if r else None


def describe(q):
    opt = "noedns" if q.edns < 0 else "edns%d/%d%s%s" % (
        q.edns, q.payload, "+do" if q.ednsflags & dns.flags.DO else "",
        "+nsid" if any(o.otype == dns.edns.NSID for o in q.options) else "")
    fl = [n for n, f in FLAGS if q.flags & f]
    return "%s %s %s %s" % (q.question[0].name.to_text(), dns.rdatatype.to_text(q.question[0].rdtype),
                            opt, ",".join(fl) or "-")


def show(m):
    if m is None:
        return "(no reply)"
    if isinstance(m, Exception):
        return "(unparsable: %s)" % m
    return m.to_text()


def main():
    if PEER == "geocastd":
        lib.require_geocastd()
    zones_text = {}
    zones = {}
    for o in ZONES:
        zones_text[o], zones[o] = load_zone(o)
    queries = generate(zones)

    ref = lib.start_nsd(zones_text)
    tap.ok(ref.alive(), "NSD (reference) started on port %d" % ref.port)
    try:
        if PEER == "knot":
            peer = lib.start_knot(zones_text)
        elif PEER == "nsd":
            peer = lib.start_nsd(zones_text)
        else:
            peer = lib.start_geocast(None, zones_text, probe="diff.test")
    except RuntimeError as e:
        tap.ok(False, "%s started" % PEER)
        tap.diag(str(e))
        ref.stop()
        tap.done()
    tap.ok(peer.alive(), "%s started on port %d" % (PEER, peer.port))

    rng = random.Random(SEED + 1)
    tcp_sample = set(rng.sample(range(len(queries)), min(300, len(queries))))
    per_group = collections.Counter()
    per_group_diff = collections.Counter()
    kinds = collections.Counter()
    listed = []
    try:
        run_queries(queries, ref, peer, tcp_sample, per_group, per_group_diff, kinds, listed)
    finally:
        if PEER == "geocastd":
            peer.stop_and_check()
        else:
            tap.is_(peer.stop(), 0, "%s exits 0" % PEER)
        ref.stop()
    tap.done()


def run_queries(queries, ref, peer, tcp_sample, per_group, per_group_diff, kinds, listed):
    t0 = time.monotonic()
    ndiff = 0
    nq = 0
    for i, (group, q) in enumerate(queries):
        for transport in (["udp", "tcp"] if i in tcp_sample else ["udp"]):
            nq += 1
            g = "%s/%s" % (group, transport)
            per_group[g] += 1
            r_raw = ask(ref, q, transport)
            p_raw = ask(peer, q, transport)
            r, p = parse(r_raw), parse(p_raw)
            diffs, used = compare(q, r, p)
            for u in used:
                allow_hits[u] += 1
            if diffs:
                ndiff += 1
                per_group_diff[g] += 1
                for k, _ in diffs:
                    kinds[k] += 1
                if len(listed) < MAX_LISTED or VERBOSE:
                    listed.append((transport, q, diffs, r, p))
        if not peer.alive():
            tap.diag("%s died at query %d: %s" % (PEER, i, describe(q)))
            break
    elapsed = time.monotonic() - t0

    tap.diag("%d queries, %d differences (seed %d, %.1fs)" % (nq, ndiff, SEED, elapsed))
    for u, n in sorted(allow_hits.items()):
        tap.diag("allow-listed %-16s %5d  (%s)" % (u, n, ALLOW[u][:70] + "..."))
    if kinds:
        tap.diag("differences by kind: " + ", ".join("%s=%d" % kv for kv in kinds.most_common()))
    for transport, q, diffs, r, p in listed[:MAX_LISTED if not VERBOSE else None]:
        tap.diag("---- [%s] %s: %s" % (transport, describe(q), "; ".join("%s: %s" % d for d in diffs)))
        tap.diag("  NSD:\n" + "\n".join("    " + x for x in show(r).splitlines()))
        tap.diag("  %s:\n" % PEER + "\n".join("    " + x for x in show(p).splitlines()))
    for g in sorted(per_group):
        tap.is_(per_group_diff[g], 0, "%s: %d queries, no differences outside the allow-list"
                % (g, per_group[g]))


if __name__ == "__main__":
    main()

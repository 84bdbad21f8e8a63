#!/usr/bin/python3
"""Basic end-to-end behaviour of geocastd, checked with real clients (kdig and dig, over UDP
and TCP) and dnspython: RFC 1034 answers, negative answers and their TTL, REFUSED, CNAME,
wildcards, referrals, 0x20 case, EDNS (BADVERS, DO, NSID, ECS), CH TXT, truncation, TCP
pipelining, --check, and a clean shutdown."""

import os
import socket
import struct
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
import dns.rdatatype  # noqa: E402

BIG_N = 20
EXAMPLE = """$ORIGIN example.com.
$TTL 3600
@       IN SOA  ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300
@       NS      ns1
@       NS      ns2
@       MX      10 mail
@       TXT     "v=spf1 -all"
ns1     A       192.0.2.53
ns2     A       192.0.2.54
mail    A       192.0.2.25
www     A       192.0.2.1
www     AAAA    2001:db8::1
www     TXT     "hello world"
alias   CNAME   alias2
alias2  600 CNAME www
*.wild  A       192.0.2.99
*.wild  TXT     "wild"
sub     NS      ns1.sub
sub     NS      ns.other.example.
ns1.sub A       192.0.2.200
""" + "".join('big     TXT     "record %02d %s"\n' % (i, "z" * 60) for i in range(BIG_N))

# SOA TTL (60) below MINIMUM (600): the negative TTL is 60.
NEG = """$ORIGIN neg.test.
$TTL 3600
@   60  IN SOA  ns1.neg.test. hostmaster.neg.test. 1 7200 3600 1209600 600
@       NS      ns1
ns1     A       192.0.2.10
"""

ZONES = {"example.com": EXAMPLE, "neg.test": NEG}


def rrline(line):
    """'name ttl class type rdata...' -> (name lower, ttl, class, type, rdata) or None."""
    f = line.split()
    if len(f) < 5:
        return None
    return (f[0].lower(), f[1], f[2], f[3], " ".join(f[4:]))


def section(out, sec):
    r = lib.parse_text_reply(out)
    return [rrline(x) for x in (r[sec] if r else [])]


def client_checks(srv):
    """The same questions through kdig and dig, over UDP and TCP."""
    for tool in ("kdig", "dig"):
        for transport in ("udp", "tcp"):
            fn = lib.kdig if tool == "kdig" else lib.dig
            targs = ["+tcp"] if transport == "tcp" else ["+notcp"]
            if tool == "dig":
                targs += ["+norec"]

            def q(*args):
                return fn(srv.port, *(list(args) + targs))

            tag = "%s/%s" % (tool, transport)

            def expect(out, what, rcode, aa=None, answer=(), authority=(), additional=(),
                       empty_answer=False):
                r = lib.parse_text_reply(out)
                if not tap.ok(r is not None, "%s %s: got a reply" % (tag, what)):
                    tap.diag(out)
                    return
                tap.is_(r["rcode"], rcode, "%s %s: status %s" % (tag, what, rcode))
                if aa is not None:
                    tap.is_("aa" in r["flags"], aa, "%s %s: AA=%d" % (tag, what, aa))
                ans = [rrline(x) for x in r["answer"]]
                auth = [rrline(x) for x in r["authority"]]
                add = [rrline(x) for x in r["additional"]]
                for e in answer:
                    tap.ok(e in ans, "%s %s: answer has %s" % (tag, what, " ".join(e))) or tap.diag(out)
                if empty_answer:
                    tap.is_(ans, [], "%s %s: empty answer" % (tag, what))
                for e in authority:
                    tap.ok(e in auth, "%s %s: authority has %s" % (tag, what, " ".join(e))) or tap.diag(out)
                for e in additional:
                    tap.ok(e in add, "%s %s: additional has %s" % (tag, what, " ".join(e))) or tap.diag(out)

            expect(q("www.example.com", "A"), "www A", "NOERROR", True,
                   answer=[("www.example.com.", "3600", "IN", "A", "192.0.2.1")])
            expect(q("www.example.com", "AAAA"), "www AAAA", "NOERROR", True,
                   answer=[("www.example.com.", "3600", "IN", "AAAA", "2001:db8::1")])
            expect(q("example.com", "MX"), "apex MX", "NOERROR", True,
                   answer=[("example.com.", "3600", "IN", "MX", "10 mail.example.com.")])
            expect(q("www.example.com", "TXT"), "www TXT", "NOERROR", True,
                   answer=[("www.example.com.", "3600", "IN", "TXT", '"hello world"')])
            soa300 = ("example.com.", "300", "IN", "SOA",
                      "ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300")
            expect(q("nope.example.com", "A"), "NXDOMAIN", "NXDOMAIN", True, authority=[soa300],
                   empty_answer=True)
            expect(q("www.example.com", "MX"), "NODATA", "NOERROR", True, authority=[soa300],
                   empty_answer=True)
            soa60 = ("neg.test.", "60", "IN", "SOA",
                     "ns1.neg.test. hostmaster.neg.test. 1 7200 3600 1209600 600")
            expect(q("nope.neg.test", "A"), "NXDOMAIN (SOA TTL < MINIMUM)", "NXDOMAIN", True,
                   authority=[soa60], empty_answer=True)
            expect(q("www.example.org", "A"), "out of zone", "REFUSED", empty_answer=True)
            expect(q("notexample.com", "A"), "out of zone (suffix without label boundary)",
                   "REFUSED", empty_answer=True)
            expect(q("alias.example.com", "A"), "CNAME chain", "NOERROR", True,
                   answer=[("alias.example.com.", "3600", "IN", "CNAME", "alias2.example.com."),
                           ("alias2.example.com.", "600", "IN", "CNAME", "www.example.com."),
                           ("www.example.com.", "3600", "IN", "A", "192.0.2.1")])
            expect(q("foo.bar.wild.example.com", "A"), "wildcard", "NOERROR", True,
                   answer=[("foo.bar.wild.example.com.", "3600", "IN", "A", "192.0.2.99")])
            expect(q("host.sub.example.com", "A"), "referral", "NOERROR", False,
                   authority=[("sub.example.com.", "3600", "IN", "NS", "ns1.sub.example.com."),
                              ("sub.example.com.", "3600", "IN", "NS", "ns.other.example.")],
                   additional=[("ns1.sub.example.com.", "3600", "IN", "A", "192.0.2.200")],
                   empty_answer=True)


def dnspython_checks(srv):
    port = srv.port
    # 0x20: the question comes back byte for byte.
    qn = dns.name.from_text("wWw.ExAmPlE.cOm")
    q = lib.make_query(qn, "A")
    r = lib.udp(q, port)
    ok = r is not None and r.question and r.question[0].name.labels == qn.labels
    tap.ok(ok, "0x20: question case preserved (wWw.ExAmPlE.cOm)") or tap.diag(r)
    tap.ok(r is not None and r.rcode() == dns.rcode.NOERROR and any(
        rd.address == "192.0.2.1" for rs in r.answer for rd in rs), "0x20: mixed-case qname answered")
    raw = lib.udp_raw(q.to_wire(), port)
    tap.ok(raw is not None and raw[12:12 + len(qn.to_wire())] == qn.to_wire(),
           "0x20: raw question bytes identical")

    # NXDOMAIN via dnspython: SOA negative TTL exactly.
    r = lib.udp(lib.make_query("nope.neg.test", "A"), port)
    ttl = [rs.ttl for rs in r.authority if rs.rdtype == dns.rdatatype.SOA] if r else []
    tap.is_(ttl, [60], "negative answer SOA TTL = min(SOA TTL 60, MINIMUM 600)")
    r = lib.udp(lib.make_query("www.example.com", "MX"), port)
    ttl = [rs.ttl for rs in r.authority if rs.rdtype == dns.rdatatype.SOA] if r else []
    tap.is_(ttl, [300], "NODATA SOA TTL = min(SOA TTL 3600, MINIMUM 300)")

    # No EDNS in, no OPT out.
    r = lib.udp(lib.make_query("www.example.com", "A", edns=False), port)
    tap.ok(r is not None and r.edns < 0, "no OPT in the reply to a query without EDNS")
    r = lib.udp(lib.make_query("www.example.com", "A", edns=0), port)
    tap.ok(r is not None and r.edns == 0, "OPT (version 0) in the reply to an EDNS query")
    tap.ok(r is not None and not any(o.otype == dns.edns.ECS for o in r.options),
           "no ECS option in the reply to a query without ECS")


def edns_checks(srv):
    port = srv.port
    out = lib.kdig(port, "www.example.com", "A", "+edns=1")
    r = lib.parse_text_reply(out)
    tap.is_(r and r["rcode"], "BADVERS", "kdig +edns=1: BADVERS") or tap.diag(out)
    tap.like(out, "Version: 0;", "kdig +edns=1: reply OPT has version 0")
    out = lib.dig(port, "www.example.com", "A", "+edns=1", "+noednsnegotiation", "+norec")
    r = lib.parse_text_reply(out)
    tap.is_(r and r["rcode"], "BADVERS", "dig +edns=1: BADVERS") or tap.diag(out)
    q = lib.make_query("www.example.com", "A", edns=1)
    rr = lib.udp(q, port)
    tap.ok(rr is not None and rr.rcode() == dns.rcode.BADVERS and not rr.answer,
           "dnspython EDNS version 1: BADVERS, empty answer")

    out = lib.kdig(port, "www.example.com", "A", "+dnssec")
    tap.like(out, "flags: do;", "kdig +dnssec: DO bit echoed")
    out = lib.dig(port, "www.example.com", "A", "+dnssec", "+norec")
    tap.like(out, "flags: do;", "dig +dnssec: DO bit echoed")
    rr = lib.udp(lib.make_query("www.example.com", "A", edns=0), port)
    tap.ok(rr is not None and not (rr.ednsflags & dns.flags.DO), "DO not set when not asked")

    out = lib.kdig(port, "www.example.com", "A", "+nsid")
    tap.like(out, 'NSID: 6E6F64652D61 "node-a"', "kdig +nsid: NSID node-a")
    out = lib.dig(port, "www.example.com", "A", "+nsid", "+norec")
    tap.like(out, '("node-a")', "dig +nsid: NSID node-a")
    rr = lib.udp(lib.make_query("www.example.com", "A", edns=0), port)
    tap.ok(rr is not None and not any(o.otype == dns.edns.NSID for o in rr.options),
           "no NSID when not asked")

    for name, want in (("id.server", "node-a"), ("hostname.bind", "node-a"),
                       ("version.bind", "geocast test"), ("version.server", "geocast test")):
        out = lib.kdig(port, "-c", "CH", name, "TXT")
        r = lib.parse_text_reply(out)
        ans = section(out, "answer")
        ok = r is not None and r["rcode"] == "NOERROR" and any(
            a and a[2] == "CH" and a[3] == "TXT" and a[4] == '"%s"' % want for a in ans)
        tap.ok(ok, "CH TXT %s = %s" % (name, want)) or tap.diag(out)

    # ECS (RFC 7871): echoed with SCOPE 0 for static data.
    out = lib.kdig(port, "www.example.com", "A", "+subnet=192.0.2.0/24")
    tap.like(out, "CLIENT-SUBNET: 192.0.2.0/24/0", "kdig +subnet=192.0.2.0/24: echoed, scope 0")
    out = lib.dig(port, "www.example.com", "A", "+subnet=192.0.2.0/24", "+norec")
    tap.like(out, "CLIENT-SUBNET: 192.0.2.0/24/0", "dig +subnet=192.0.2.0/24: echoed, scope 0")

    def ecs_reply(addr, src, qname="www.example.com", qtype="A"):
        q = lib.make_query(qname, qtype, options=[dns.edns.ECSOption(addr, src, 0)])
        r = lib.udp(q, port)
        if r is None:
            return None, None
        e = [o for o in r.options if o.otype == dns.edns.ECS]
        return r, (e[0] if len(e) == 1 else None)

    for addr, src, fam in (("192.0.2.0", 24, 1), ("2001:db8:1200::", 56, 2), ("0.0.0.0", 0, 1),
                           ("198.51.100.7", 32, 1)):
        r, e = ecs_reply(addr, src)
        ok = e is not None and e.family == fam and e.srclen == src and e.scopelen == 0 and \
            e.address == addr
        tap.ok(ok, "ECS %s/%d: echoed once, family %d, source %d, scope 0, same address"
               % (addr, src, fam, src)) or tap.diag(r)
        tap.ok(r is not None and r.rcode() == dns.rcode.NOERROR and r.answer,
               "ECS %s/%d: answered" % (addr, src))
    r, e = ecs_reply("192.0.2.0", 24, "nope.example.com")
    tap.ok(r is not None and r.rcode() == dns.rcode.NXDOMAIN and e is not None and e.scopelen == 0,
           "ECS echoed (scope 0) in an NXDOMAIN reply")
    r, e = ecs_reply("192.0.2.0", 24, "host.sub.example.com")
    tap.ok(r is not None and not (r.flags & dns.flags.AA) and e is not None and e.scopelen == 0,
           "ECS echoed (scope 0) in a referral")


def truncation_checks(srv):
    port = srv.port
    for edns, label in ((False, "no EDNS"), (0, "EDNS 512")):
        q = lib.make_query("big.example.com", "TXT", edns=edns, payload=512)
        raw = lib.udp_raw(q.to_wire(), port)
        h = lib.header_of(raw)
        tap.ok(h is not None and h["tc"] and h["qr"], "big TXT over UDP (%s): TC=1" % label)
        tap.ok(raw is not None and len(raw) <= 512, "big TXT over UDP (%s): reply <= 512 bytes (%s)"
               % (label, len(raw) if raw else None))
        m = lib.parse(raw)
        tap.ok(m is not None and m.question and m.question[0].name == dns.name.from_text("big.example.com"),
               "big TXT over UDP (%s): question echoed" % label)
        if edns is not False:
            tap.ok(m is not None and m.edns == 0, "big TXT over UDP (EDNS 512): OPT kept in the TC reply")
    q = lib.make_query("big.example.com", "TXT", payload=512, options=[dns.edns.ECSOption("192.0.2.0", 24, 0)])
    m = lib.parse(lib.udp_raw(q.to_wire(), port))
    e = [o for o in m.options if o.otype == dns.edns.ECS] if m is not None else []
    tap.ok(m is not None and (m.flags & dns.flags.TC) and len(e) == 1 and e[0].srclen == 24
           and e[0].scopelen == 0, "big TXT over UDP with ECS: TC=1 and ECS still echoed")
    r = lib.tcp(lib.make_query("big.example.com", "TXT"), port)
    n = sum(len(rs) for rs in r.answer) if r else 0
    tap.ok(r is not None and not (r.flags & dns.flags.TC), "big TXT over TCP: TC=0")
    tap.is_(n, BIG_N, "big TXT over TCP: all %d records" % BIG_N)
    out = lib.kdig(port, "big.example.com", "TXT", "+notcp", "+bufsize=512", "+ignore")
    r = lib.parse_text_reply(out)
    tap.ok(r is not None and "tc" in r["flags"], "kdig +bufsize=512 big TXT: tc flag") or tap.diag(out)
    out = lib.kdig(port, "big.example.com", "TXT", "+tcp")
    tap.is_(len(section(out, "answer")), BIG_N, "kdig +tcp big TXT: %d records" % BIG_N)
    out = lib.dig(port, "big.example.com", "TXT", "+norec")   # dig retries over TCP on TC
    tap.is_(len(section(out, "answer")), BIG_N, "dig (UDP, falls back to TCP) big TXT: %d records" % BIG_N)


def tcp_checks(srv):
    port = srv.port
    names = ["www.example.com", "mail.example.com", "ns1.example.com", "ns2.example.com",
             "alias.example.com", "x.wild.example.com", "nope.example.com", "example.com",
             "www.example.org", "big.example.com"]
    types = ["A", "A", "A", "A", "A", "A", "A", "SOA", "A", "TXT"]
    msgs = []
    for i, (n, t) in enumerate(zip(names, types)):
        msgs.append(lib.make_query(n, t, qid=1000 + i).to_wire())
    replies = lib.tcp_raw(msgs, port, nreplies=len(msgs), timeout=5)
    tap.is_(len(replies), len(msgs), "TCP pipelining: %d queries in one write, %d replies"
            % (len(msgs), len(msgs)))
    got = {}
    for raw in replies:
        m = lib.parse(raw)
        if m is not None:
            got[m.id] = m
    tap.is_(sorted(got), [1000 + i for i in range(len(msgs))], "TCP pipelining: every id answered once")
    exp_rcode = {6: dns.rcode.NXDOMAIN, 8: dns.rcode.REFUSED}
    bad = []
    for i, n in enumerate(names):
        m = got.get(1000 + i)
        if m is None or m.question[0].name != dns.name.from_text(n) or \
                m.rcode() != exp_rcode.get(i, dns.rcode.NOERROR):
            bad.append(n)
    tap.is_(bad, [], "TCP pipelining: each reply matches its question and rcode")
    m = got.get(1009)
    tap.ok(m is not None and sum(len(rs) for rs in m.answer) == BIG_N,
           "TCP pipelining: the big reply is complete")

    # A query split across segments (length prefix first, then the body in pieces).
    wire = lib.make_query("www.example.com", "A", qid=4242).to_wire()
    s = socket.create_connection(("127.0.0.1", port), timeout=3 * lib.SLOW)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = struct.pack("!H", len(wire)) + wire
        for chunk in (data[:1], data[1:2], data[2:10], data[10:]):
            s.sendall(chunk)
            time.sleep(0.05)
        deadline = time.monotonic() + 3 * lib.SLOW
        hdr = lib._recv_exact(s, 2, deadline)
        body = lib._recv_exact(s, struct.unpack("!H", hdr)[0], deadline) if hdr else None
        m = lib.parse(body)
        tap.ok(m is not None and m.id == 4242 and m.rcode() == dns.rcode.NOERROR,
               "TCP: a query split over 4 segments is answered")
        # Then a second query on the same connection.
        wire2 = lib.make_query("mail.example.com", "A", qid=4243).to_wire()
        s.sendall(struct.pack("!H", len(wire2)) + wire2)
        hdr = lib._recv_exact(s, 2, deadline + 3)
        body = lib._recv_exact(s, struct.unpack("!H", hdr)[0], deadline + 3) if hdr else None
        m = lib.parse(body)
        tap.ok(m is not None and m.id == 4243, "TCP: a second query on the same connection is answered")
    finally:
        s.close()


def tcp_limits_checks():
    """tcp_idle_timeout closes an idle connection; tcp_max_clients does not stop UDP, and
    TCP works again once connections are released."""
    try:
        srv = lib.start_geocast(None, {"example.com": EXAMPLE}, probe="example.com",
                                extra_server={"tcp_idle_timeout": "1s", "tcp_max_clients": 2})
    except RuntimeError as e:
        tap.ok(False, "geocastd starts with tcp_idle_timeout: 1s, tcp_max_clients: 2")
        tap.diag(str(e))
        return
    tap.ok(True, "geocastd starts with tcp_idle_timeout: 1s, tcp_max_clients: 2")
    held = []
    try:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
        held.append(s)
        t0 = time.monotonic()
        closed = lib.tcp_closed_by_peer(s, timeout=4.0)
        dt = time.monotonic() - t0
        tap.ok(closed and dt >= 0.5, "tcp_idle_timeout 1s: an idle connection is closed (after %.1fs)" % dt)
        # a connection with a query in flight is answered, then idles out too
        wire = lib.make_query("www.example.com", "A", qid=77).to_wire()
        s2 = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
        held.append(s2)
        s2.sendall(struct.pack("!H", len(wire)) + wire)
        deadline = time.monotonic() + 3 * lib.SLOW
        h = lib._recv_exact(s2, 2, deadline)
        body = lib._recv_exact(s2, struct.unpack("!H", h)[0], deadline) if h else None
        m = lib.parse(body)
        tap.ok(m is not None and m.id == 77, "TCP query answered before the idle timeout")
        tap.ok(lib.tcp_closed_by_peer(s2, timeout=4.0), "...and the connection is closed once idle")
        for x in held:
            x.close()
        held = []
        # fill the TCP slots, then check UDP still works and TCP recovers after release
        for _ in range(4):
            try:
                held.append(socket.create_connection(("127.0.0.1", srv.port), timeout=1))
            except OSError:
                break
        r = lib.udp(lib.make_query("www.example.com", "A"), srv.port)
        tap.ok(r is not None and r.rcode() == dns.rcode.NOERROR, "UDP answered while TCP slots are full")
        for x in held:
            x.close()
        held = []
        ok = False
        deadline = time.monotonic() + 5 * lib.SLOW
        while time.monotonic() < deadline and not ok:
            r = lib.tcp(lib.make_query("www.example.com", "A"), srv.port, timeout=1.0)
            ok = r is not None and r.rcode() == dns.rcode.NOERROR
            if not ok:
                time.sleep(0.1)
        tap.ok(ok, "TCP answered again once the held connections are closed")
        # SIGTERM with an open TCP connection still exits cleanly
        held.append(socket.create_connection(("127.0.0.1", srv.port), timeout=1))
    finally:
        srv.stop_and_check()
        for x in held:
            x.close()


def ipv6_checks(srv):
    out = lib.kdig(srv.port, "www.example.com", "AAAA", addr="::1")
    r = lib.parse_text_reply(out)
    tap.ok(r is not None and r["rcode"] == "NOERROR" and any("2001:db8::1" in a for a in r["answer"]),
           "listening on ::1 (UDP)") or tap.diag(out)
    out = lib.kdig(srv.port, "www.example.com", "AAAA", "+tcp", addr="::1")
    r = lib.parse_text_reply(out)
    tap.ok(r is not None and r["rcode"] == "NOERROR", "listening on ::1 (TCP)") or tap.diag(out)


def disabled_identity_checks():
    """identity: false and version: false disable NSID and the CH TXT answers; workers: auto."""
    try:
        srv = lib.start_geocast(None, {"example.com": EXAMPLE}, probe="example.com",
                                extra_server={"identity": False, "version": False, "workers": "auto"})
    except RuntimeError as e:
        tap.ok(False, "geocastd starts with identity: false, version: false, workers: auto")
        tap.diag(str(e))
        return
    tap.ok(True, "geocastd starts with identity: false, version: false, workers: auto")
    try:
        q = lib.make_query("www.example.com", "A", options=[dns.edns.GenericOption(dns.edns.NSID, b"")])
        r = lib.udp(q, srv.port)
        tap.ok(r is not None and r.rcode() == dns.rcode.NOERROR and
               not any(o.otype == dns.edns.NSID for o in r.options),
               "identity: false: no NSID option in the reply")
        for name in ("id.server", "hostname.bind", "version.bind", "version.server"):
            r = lib.udp(lib.make_query(name, "TXT", rdclass="CH"), srv.port)
            tap.ok(r is not None and not r.answer and r.rcode() != dns.rcode.NOERROR,
                   "identity/version: false: CH TXT %s not answered (rcode %s)"
                   % (name, dns.rcode.to_text(r.rcode()) if r else None))
        # several workers answer (each query may land on any of them)
        bad = 0
        for i in range(50):
            r = lib.udp(lib.make_query("www.example.com", "A"), srv.port, timeout=1.0)
            bad += r is None or r.rcode() != dns.rcode.NOERROR
        tap.is_(bad, 0, "workers: auto: 50 queries from fresh sockets all answered")
    finally:
        srv.stop_and_check()


def check_mode():
    good = """server:
  listen: ["127.0.0.1@{port}"]
  workers: 1
  identity: "node-a"
  version: false
zones:
  example.com:
    file: {zone:example.com}
"""
    rc, err, _, _ = lib.geocast_check(good, {"example.com": EXAMPLE})
    tap.is_(rc, 0, "--check on a good config exits 0") or tap.diag(err)

    bad_zone = EXAMPLE.replace("www     A       192.0.2.1\n", "www     A       192.0.2.999\n")
    bad_line = bad_zone.splitlines().index("www     A       192.0.2.999") + 1
    rc, err, _, d = lib.geocast_check(good, {"example.com": bad_zone})
    tap.ok(rc not in (0, None) and rc > 0, "--check on a bad zone exits non-zero (%r)" % rc)
    tap.like(err, "example.com.zone:%d" % bad_line, "--check names the zone file and line %d" % bad_line)

    bad_zone2 = EXAMPLE.replace("mail    A       192.0.2.25\n", "mail    BOGUSTYPE 1\n")
    bad_line2 = bad_zone2.splitlines().index("mail    BOGUSTYPE 1") + 1
    rc, err, _, _ = lib.geocast_check(good, {"example.com": bad_zone2})
    tap.ok(rc not in (0, None) and rc > 0, "--check on an unknown RR type exits non-zero")
    tap.like(err, "example.com.zone:%d" % bad_line2, "--check names file:line %d for the unknown type"
             % bad_line2)

    bad_key = good.replace("  workers: 1\n", "  workers: 1\n  bogus_option: 7\n")
    rc, err, _, _ = lib.geocast_check(bad_key, {"example.com": EXAMPLE})
    tap.ok(rc not in (0, None) and rc > 0, "--check with an unknown config key exits non-zero")
    tap.like(err, "bogus_option", "--check names the unknown key")
    bad_key_line = bad_key.splitlines().index("  bogus_option: 7") + 1
    tap.like(err, "geocast.yaml:%d" % bad_key_line, "--check gives the config file:line of the key")

    missing = good.replace("{zone:example.com}", "/nonexistent/dir/example.com.zone")
    rc, err, _, _ = lib.geocast_check(missing, {})
    tap.ok(rc not in (0, None) and rc > 0, "--check with a missing zone file exits non-zero")
    tap.like(err, "/nonexistent/dir/example.com.zone", "--check names the missing zone file")


def main():
    # BASIC_PEER=nsd runs the query checks against NSD: a self-test of this file when geocastd
    # is not built (NSD has no ECS, so those checks fail there).
    peer = os.environ.get("BASIC_PEER", "geocastd")
    if peer == "geocastd":
        lib.require_geocastd()
    v6 = lib.have_ipv6() and peer == "geocastd"
    try:
        if peer == "nsd":
            srv = lib.start_nsd(ZONES)
        else:
            srv = lib.start_geocast(None, ZONES, v6=v6, probe="example.com")
    except RuntimeError as e:
        tap.ok(False, "geocastd starts and answers")
        tap.diag(str(e))
        check_mode()
        tap.done()
    tap.ok(True, "geocastd starts and answers on port %d" % srv.port)
    try:
        client_checks(srv)
        dnspython_checks(srv)
        edns_checks(srv)
        truncation_checks(srv)
        tcp_checks(srv)
        if v6:
            ipv6_checks(srv)
        else:
            tap.skip("no IPv6 loopback", 2)
    finally:
        srv.stop_and_check()
    if peer == "geocastd":
        disabled_identity_checks()
        tcp_limits_checks()
        check_mode()
    tap.done()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Hostile packets over UDP and TCP. Where a reply is due, its rcode is checked (FORMERR,
NOTIMP, REFUSED...), where none is (QR=1, shorter than a header) silence is checked; after
each group the server must still answer a normal query, and at the end it must still be alive
and exit cleanly (no sanitizer report)."""

import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import (tap, raw_query, wire_name, opt_rr, edns_option, ecs_option_raw,  # noqa: E402
                 header_of)

SEED = int(os.environ.get("MALFORMED_SEED", "7871"))
ZONE = """$ORIGIN example.com.
$TTL 3600
@       IN SOA  ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300
@       NS      ns1
ns1     A       192.0.2.53
www     A       192.0.2.1
"""
DROP = "drop"            # no reply at all
FORMERR, NOTIMP, REFUSED, NOERROR, BADVERS = 1, 4, 5, 0, 16
QID = 0x4d4d

WWW = wire_name("www.example.com")
QTAIL = struct.pack("!HH", 1, 1)


def hdr(qid=QID, flags=0, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def with_opt(opt, extra_ar=b"", arcount=1):
    return hdr(ar=arcount) + WWW + QTAIL + opt + extra_ar


def ecs(family, source, scope, addr):
    return with_opt(opt_rr(options=ecs_option_raw(family, source, scope, addr)))


def cases():
    """(group, name, packet, expected) — expected: DROP, or a set of acceptable rcodes
    (extended rcodes included: BADVERS = 16)."""
    c = []
    G = "short"
    c += [(G, "empty datagram", b"", DROP),
          (G, "1 byte", b"\x00", DROP),
          (G, "11 bytes (short header)", hdr()[:11], DROP)]
    G = "header"
    c += [(G, "header only, QDCOUNT=1", hdr(), {FORMERR}),
          (G, "QDCOUNT=0", hdr(qd=0), {FORMERR}),
          (G, "QDCOUNT=2 (two questions)", hdr(qd=2) + WWW + QTAIL + WWW + QTAIL, {FORMERR}),
          (G, "QDCOUNT=2, one question present", hdr(qd=2) + WWW + QTAIL, {FORMERR}),
          (G, "QR=1 (a response)", hdr(flags=0x8000) + WWW + QTAIL, DROP),
          (G, "QR=1 with rcode FORMERR", hdr(flags=0x8001) + WWW + QTAIL, DROP),
          (G, "ANCOUNT=1 without the record", hdr(an=1) + WWW + QTAIL, {FORMERR}),
          (G, "ARCOUNT=1 without the record", hdr(ar=1) + WWW + QTAIL, {FORMERR}),
          (G, "NSCOUNT=65535", hdr(ns=65535) + WWW + QTAIL, {FORMERR})]
    G = "names"
    c += [(G, "compression pointer loop (points to itself)", hdr() + b"\xc0\x0c" + QTAIL, {FORMERR}),
          (G, "compression pointer loop (two labels)", hdr() + b"\x01a\xc0\x0c" + QTAIL, {FORMERR}),
          (G, "compression pointer forward", hdr() + b"\xc0\x20" + QTAIL + b"\x00" * 16 + b"\x03www\x00",
           {FORMERR}),
          (G, "compression pointer past the end", hdr() + b"\xc3\xff" + QTAIL, {FORMERR}),
          (G, "compression pointer into the header", hdr() + b"\xc0\x02" + QTAIL, {FORMERR}),
          (G, "label length 64", hdr() + b"\x40" + b"a" * 64 + b"\x00" + QTAIL, {FORMERR}),
          (G, "label type 0x80 (reserved)", hdr() + b"\x80" + b"a" + b"\x00" + QTAIL, {FORMERR}),
          (G, "name of 256 octets", hdr() + (b"\x3f" + b"a" * 63) * 4 + b"\x00" + QTAIL, {FORMERR}),
          (G, "name without terminating root label", hdr() + b"\x03www\x07example", {FORMERR}),
          (G, "label length past the end", hdr() + b"\x3fabc", {FORMERR}),
          (G, "truncated question (no QTYPE)", hdr() + WWW, {FORMERR}),
          (G, "truncated question (1 byte of QTYPE)", hdr() + WWW + b"\x00", {FORMERR}),
          (G, "truncated question (no QCLASS)", hdr() + WWW + b"\x00\x01", {FORMERR})]
    # a name of exactly 255 octets is legal: NXDOMAIN (under the zone) — not an error
    legal = (b"\x3f" + b"a" * 63) * 3 + b"\x31" + b"b" * 49 + b"\x07example\x03com\x00"
    assert len(legal) == 255, len(legal)
    c += [(G, "name of exactly 255 octets (legal)", hdr() + legal + QTAIL, {3})]
    G = "opt"
    c += [(G, "OPT option length beyond RDLEN", with_opt(opt_rr(options=edns_option(10, b"\x01" * 8, length=20))),
           {FORMERR}),
          (G, "OPT RDLEN beyond the packet", with_opt(opt_rr(options=b"", rdlen=40)), {FORMERR}),
          (G, "OPT with a 3-byte option header", with_opt(opt_rr(options=b"\x00\x0a\x00")), {FORMERR}),
          (G, "two OPT records", hdr(ar=2) + WWW + QTAIL + opt_rr() + opt_rr(), {FORMERR}),
          (G, "OPT with non-root owner", with_opt(opt_rr(owner=WWW)), {FORMERR}),
          (G, "OPT version 1", with_opt(opt_rr(version=1)), {BADVERS}),
          (G, "OPT version 255 with DO", with_opt(opt_rr(version=255, do=True)), {BADVERS}),
          (G, "OPT in the answer section", hdr(an=1) + WWW + QTAIL + opt_rr(), {FORMERR}),
          (G, "OPT payload 0 (treated as 512)", with_opt(opt_rr(payload=0)), {NOERROR}),
          (G, "OPT with unknown option 65001", with_opt(opt_rr(options=edns_option(65001, b"xyz"))), {NOERROR}),
          (G, "OPT payload 100 (below 512)", with_opt(opt_rr(payload=100)), {NOERROR}),
          (G, "OPT with a 3000-byte PADDING option", with_opt(opt_rr(options=edns_option(12, b"\x00" * 3000))),
           {NOERROR}),
          (G, "OPT with DO, NSID, COOKIE and ECS together",
           with_opt(opt_rr(do=True, options=edns_option(3, b"") + edns_option(10, b"\x01" * 8) +
                           ecs_option_raw(1, 24, 0, b"\xc0\x00\x02"))), {NOERROR}),
          (G, "NSID option with data in a query", with_opt(opt_rr(options=edns_option(3, b"junk"))),
           {NOERROR, FORMERR})]
    G = "ecs"
    c += [(G, "ECS family 3", ecs(3, 24, 0, b"\xc0\x00\x02"), {FORMERR}),
          (G, "ECS family 0", ecs(0, 0, 0, b""), {FORMERR}),
          (G, "ECS IPv4 source prefix 33", ecs(1, 33, 0, b"\xc0\x00\x02\x01\x00"), {FORMERR}),
          (G, "ECS IPv6 source prefix 129", ecs(2, 129, 0, b"\x20\x01" + b"\x00" * 15), {FORMERR}),
          (G, "ECS address octets beyond the prefix (/24 with 4 octets)", ecs(1, 24, 0, b"\xc0\x00\x02\x00"),
           {FORMERR}),
          (G, "ECS IPv6 /56 with 8 address octets", ecs(2, 56, 0, b"\x20\x01\x0d\xb8\x00\x00\x00\x00"),
           {FORMERR}),
          (G, "ECS /0 with one address octet", ecs(1, 0, 0, b"\x00"), {FORMERR}),
          (G, "ECS too few address octets (/24 with 2 octets)", ecs(1, 24, 0, b"\xc0\x00"), {FORMERR}),
          (G, "ECS address bits set beyond the prefix (/20, 192.0.2.0)", ecs(1, 20, 0, b"\xc0\x00\x02"),
           {FORMERR}),
          (G, "ECS non-zero SCOPE in a query", ecs(1, 24, 24, b"\xc0\x00\x02"), {FORMERR}),
          (G, "ECS option shorter than 4 bytes", with_opt(opt_rr(options=edns_option(8, b"\x00\x01"))), {FORMERR}),
          (G, "two ECS options", with_opt(opt_rr(options=ecs_option_raw(1, 24, 0, b"\xc0\x00\x02") * 2)),
           {FORMERR}),
          (G, "ECS valid /24 (control)", ecs(1, 24, 0, b"\xc0\x00\x02"), {NOERROR}),
          (G, "ECS valid /0 (control)", ecs(1, 0, 0, b""), {NOERROR}),
          (G, "ECS valid IPv6 /56 (control)", ecs(2, 56, 0, b"\x20\x01\x0d\xb8\x12\x34\x56"), {NOERROR})]
    G = "opcode-class-type"
    c += [(G, "opcode 5 UPDATE", hdr(flags=5 << 11) + WWW + QTAIL, {NOTIMP}),
          (G, "opcode 3 (unassigned)", hdr(flags=3 << 11) + WWW + QTAIL, {NOTIMP}),
          (G, "opcode 15", hdr(flags=15 << 11) + WWW + QTAIL, {NOTIMP}),
          (G, "opcode 1 IQUERY", hdr(flags=1 << 11) + WWW + QTAIL, {NOTIMP}),
          (G, "opcode 2 STATUS", hdr(flags=2 << 11) + WWW + QTAIL, {NOTIMP}),
          (G, "unknown class 42", hdr() + WWW + struct.pack("!HH", 1, 42), {REFUSED}),
          (G, "class HS (4)", hdr() + WWW + struct.pack("!HH", 1, 4), {REFUSED}),
          (G, "class NONE (254)", hdr() + WWW + struct.pack("!HH", 1, 254), {REFUSED, FORMERR}),
          (G, "qtype AXFR over UDP", hdr() + wire_name("example.com") + struct.pack("!HH", 252, 1),
           {REFUSED, NOTIMP, FORMERR}),
          (G, "qtype IXFR over UDP", hdr() + wire_name("example.com") + struct.pack("!HH", 251, 1),
           {REFUSED, NOTIMP, FORMERR}),
          (G, "qtype OPT (41) in the question", hdr() + WWW + struct.pack("!HH", 41, 1), {FORMERR, NOERROR, REFUSED}),
          (G, "qtype 0", hdr() + WWW + struct.pack("!HH", 0, 1), {NOERROR, FORMERR, REFUSED}),
          (G, "Z bit set", hdr(flags=0x0040) + WWW + QTAIL, {NOERROR}),
          (G, "nonzero rcode in a query", hdr(flags=0x0003) + WWW + QTAIL, {NOERROR, FORMERR}),
          (G, "TC=1 in a query", hdr(flags=0x0200) + WWW + QTAIL, {NOERROR, FORMERR}),
          (G, "trailing garbage after the question", hdr() + WWW + QTAIL + b"\xde\xad\xbe\xef",
           {NOERROR, FORMERR})]
    return c


def rc_name(rc):
    return {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
            16: "BADVERS"}.get(rc, str(rc))


def full_rcode(raw):
    """rcode including the EDNS extended bits when the reply has an OPT record."""
    m = lib.parse(raw)
    if m is not None:
        return m.rcode()
    h = header_of(raw)
    return h["rcode"] if h else None


def judge(transport, name, pkt, expected, replies):
    """replies: list of raw replies (UDP: 0 or 1; TCP: 0 or 1)."""
    label = "[%s] %s" % (transport, name)
    if expected == DROP:
        tap.is_(len(replies), 0, "%s: no reply" % label)
        return
    if not tap.ok(len(replies) == 1, "%s: one reply" % label):
        return
    raw = replies[0]
    h = header_of(raw)
    ok = h is not None and h["qr"]
    if len(pkt) >= 2 and h is not None:
        ok = ok and h["id"] == struct.unpack("!H", pkt[:2])[0]
    tap.ok(ok, "%s: QR=1 and the query id" % label)
    rc = full_rcode(raw)
    tap.ok(rc in expected, "%s: rcode %s (expected %s)" % (label, rc_name(rc), "/".join(
        rc_name(x) for x in sorted(expected))))
    if rc not in (NOERROR, 3) and h is not None:
        tap.is_(h["an"], 0, "%s: no answer records in an error reply" % label)
    if transport == "udp":
        # every reply here is small; none may exceed 512 bytes (several queries have no OPT,
        # or one with a payload below 512)
        tap.ok(len(raw) <= 512, "%s: reply of %d bytes fits 512" % (label, len(raw)))


def send_tcp(port, pkt, expect_drop):
    """One framed packet on a fresh connection. Returns (replies, closed): the replies read
    (0 or 1) and whether the server closed the connection (EOF/reset) instead of leaving it
    open when it sent nothing."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    timeout = (1.0 if expect_drop else 3.0) * lib.SLOW
    replies, closed = [], False
    try:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.sendall(struct.pack("!H", len(pkt)) + pkt)
        deadline = time.monotonic() + timeout
        h = lib._recv_exact(s, 2, deadline)
        if h is not None:
            body = lib._recv_exact(s, struct.unpack("!H", h)[0], deadline)
            if body is not None:
                replies.append(body)
        else:
            closed = lib.tcp_closed_by_peer(s, 0.05)
    except OSError:
        closed = True
    finally:
        s.close()
    return replies, closed


def garbage(srv, rng, n=500):
    """n datagrams: half random bytes, half mutations of a valid query, sent in bursts of 25
    and drained after each burst. Any reply must carry QR=1. Returns (replies, replies without QR)."""
    base = raw_query("www.example.com") + opt_rr(options=ecs_option_raw(1, 24, 0, b"\xc0\x00\x02"))
    base = base[:11] + b"\x01" + base[12:]   # ARCOUNT=1
    bad_qr = 0
    nrep = 0
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(n):
            if i % 2 == 0:
                pkt = bytes(rng.randrange(256) for _ in range(rng.randint(0, 80)))
            else:
                b = bytearray(base)
                for _ in range(rng.randint(1, 6)):
                    op = rng.random()
                    if op < 0.6 and b:
                        b[rng.randrange(len(b))] = rng.randrange(256)
                    elif op < 0.8:
                        b = b[:rng.randrange(len(b) + 1)]
                    else:
                        b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
                pkt = bytes(b)
                # clear QR in most mutations so that they reach the parser
                if len(pkt) > 2 and rng.random() < 0.8:
                    pkt = pkt[:2] + bytes([pkt[2] & 0x7f]) + pkt[3:]
            s.sendto(pkt, ("127.0.0.1", srv.port))
            if i % 25 == 24 or i == n - 1:
                s.settimeout(0.1 * lib.SLOW)
                for _ in range(200):
                    try:
                        r = s.recv(65535)
                    except (socket.timeout, ConnectionRefusedError):
                        break
                    nrep += 1
                    h = header_of(r)
                    if h is None or not h["qr"]:
                        bad_qr += 1
    finally:
        s.close()
    return nrep, bad_qr


def tcp_garbage(srv, rng, n=40):
    """Framed garbage and broken framing over TCP, each on its own connection."""
    for i in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=1.0)
        except OSError:
            continue
        try:
            kind = i % 4
            if kind == 0:      # framed random bytes
                body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 60)))
                s.sendall(struct.pack("!H", len(body)) + body)
            elif kind == 1:    # length prefix larger than what follows, then close
                s.sendall(struct.pack("!H", 500) + raw_query())
            elif kind == 2:    # a single byte, then close
                s.sendall(b"\x00")
            else:              # length 0
                s.sendall(b"\x00\x00")
            s.settimeout(0.05)
            try:
                s.recv(65535)
            except (socket.timeout, OSError):
                pass
        finally:
            s.close()


def main():
    peer = os.environ.get("MALFORMED_PEER", "geocastd")   # "nsd": self-test of this file
    if peer == "geocastd":
        lib.require_geocastd()
    try:
        srv = lib.start_nsd({"example.com": ZONE}) if peer == "nsd" else \
            lib.start_geocast(None, {"example.com": ZONE}, probe="example.com")
    except RuntimeError as e:
        tap.ok(False, "%s starts" % peer)
        tap.diag(str(e))
        tap.done()
    tap.ok(True, "%s starts on port %d" % (peer, srv.port))
    t0 = time.monotonic()
    try:
        groups = []
        for g, name, pkt, exp in cases():
            if not groups or groups[-1][0] != g:
                groups.append((g, []))
            groups[-1][1].append((name, pkt, exp))
        for g, items in groups:
            for name, pkt, exp in items:
                r = lib.udp_raw(pkt, srv.port, timeout=0.3 if exp == DROP else 2.0)
                judge("udp", name, pkt, exp, [r] if r is not None else [])
            lib.alive_check(srv, label="UDP group '%s'" % g)
            for name, pkt, exp in items:
                replies, closed = send_tcp(srv.port, pkt, exp == DROP)
                if exp != DROP and exp == {FORMERR} and not replies and closed:
                    # Over TCP, closing the connection on an unparsable message is an accepted
                    # alternative to FORMERR (NSD does it for some of these); hanging is not.
                    tap.ok(True, "[tcp] %s: connection closed without a reply (accepted)" % name)
                    continue
                judge("tcp", name, pkt, exp, replies)
            lib.alive_check(srv, label="TCP group '%s'" % g)

        # The same hostile packets pipelined on one TCP connection after a good query:
        # the good one is answered, and the connection does not hang the server.
        good = raw_query("www.example.com", qid=7)
        lib.tcp_raw([good] + [p for _, _, p, e in cases() if e != DROP][:10], srv.port, nreplies=11)
        lib.alive_check(srv, label="pipelined hostile packets")

        rng = random.Random(SEED)
        nrep, bad = garbage(srv, rng, 500)
        tap.is_(bad, 0, "500 garbage datagrams (seed %d): every reply has QR=1 (%d replies)"
                % (SEED, nrep))
        lib.alive_check(srv, label="500 garbage datagrams")
        tcp_garbage(srv, rng, 40)
        lib.alive_check(srv, label="40 garbage TCP connections")
        # TCP still works after the garbage.
        r = lib.tcp(lib.make_query("www.example.com", "A"), srv.port)
        tap.ok(r is not None and r.rcode() == 0, "server still answers over TCP at the end")
        tap.diag("hostile traffic took %.1fs" % (time.monotonic() - t0))
    finally:
        if peer == "geocastd":
            srv.stop_and_check()
        else:
            srv.stop()
    tap.done()


if __name__ == "__main__":
    main()

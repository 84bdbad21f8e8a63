#!/usr/bin/python3
"""Helpers for the anycast lab (tests/anycast/t_anycast.sh).

  dnsstream.py stream --server ADDR [--port 53] --rate Q --duration S [--timeout 1]
                      [--qname NAME] [--log FILE] [--ready FILE]
      A bounded, paced stream of DNS queries (type A, EDNS with the NSID option), each
      from a new UDP socket, so from a fresh source port and a new ECMP flow. A query
      is lost when no reply from ADDR arrives within the timeout. Prints one JSON summary:
      sent, answered, lost, wrong_source, rcodes, per-NSID counts, first/last times each
      NSID was seen, the send times of the lost queries. --log writes one line per query:
      send_time status nsid latency_ms. --ready writes the start time to FILE once the
      sockets are about to be used (the caller waits for it before timing an event).

  dnsstream.py watch --ns NETNS --prefix P [--interval 0.01]
      Poll `ip route show P` in NETNS and print "<epoch> <dev> <dev>..." (the devices of
      its next hops, "to-" removed; "-" for none) on every change and once at start.
"""

import argparse
import json
import os
import random
import selectors
import socket
import struct
import subprocess
import sys
import time


def build_query(qid, qname):
    hdr = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 1)  # RD=0
    q = b"".join(bytes([len(p)]) + p.encode() for p in qname.strip(".").split(".") if p)
    q += b"\0" + struct.pack("!HH", 1, 1)
    opt = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 4) + struct.pack("!HH", 3, 0)
    return hdr + q + opt


def skip_name(buf, off):
    while True:
        n = buf[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def parse_reply(buf):
    """Return (id, rcode, nsid-or-None)."""
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", buf[:12])
    rcode = flags & 0xF
    off = 12
    for _ in range(qd):
        off = skip_name(buf, off) + 4
    nsid = None
    for i in range(an + ns + ar):
        off = skip_name(buf, off)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", buf[off:off + 10])
        off += 10
        if rtype == 41 and i >= an + ns:
            o, end = off, off + rdlen
            while o + 4 <= end:
                code, olen = struct.unpack("!HH", buf[o:o + 4])
                if code == 3:
                    nsid = buf[o + 4:o + 4 + olen].decode("ascii", "replace")
                o += 4 + olen
        off += rdlen
    return qid, rcode, nsid


def stream(a):
    family = socket.AF_INET6 if ":" in a.server else socket.AF_INET
    dest = (a.server, a.port)
    sel = selectors.DefaultSelector()
    pending = {}  # sock -> (qid, t_send, seq)
    records = []  # [t_send, status, nsid, latency]
    counts, first, last, rcodes = {}, {}, {}, {}
    wrong = 0
    t0 = time.time() + 0.05
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("%.6f\n" % t0)
    total = int(a.rate * a.duration)
    seq = 0
    while seq < total or pending:
        now = time.time()
        while seq < total and now >= t0 + seq / a.rate:
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.setblocking(False)
            qid = random.randrange(65536)
            try:
                s.sendto(build_query(qid, a.qname), dest)
                records.append([now, "lost", "-", None])
                pending[s] = (qid, now, seq)
                sel.register(s, selectors.EVENT_READ)
            except OSError as e:
                records.append([now, "senderr:" + e.strerror.replace(" ", "_"), "-", None])
                s.close()
            seq += 1
        # expire
        for s, (qid, ts, i) in list(pending.items()):
            if now - ts >= a.timeout:
                sel.unregister(s)
                s.close()
                del pending[s]
        nxt = t0 + seq / a.rate if seq < total else now + 0.05
        wait = max(0.0, min(nxt - time.time(), 0.05))
        for key, _ in sel.select(wait):
            s = key.fileobj
            if s not in pending:
                continue
            qid, ts, i = pending[s]
            try:
                buf, src = s.recvfrom(4096)
            except OSError:
                continue
            tr = time.time()
            if src[0] != a.server and not (family == socket.AF_INET6 and
                                           socket.inet_pton(family, src[0]) ==
                                           socket.inet_pton(family, a.server)):
                wrong += 1
                continue
            try:
                rid, rcode, nsid = parse_reply(buf)
            except (struct.error, IndexError):
                continue
            if rid != qid:
                continue
            nsid = nsid or "?"
            rec = records[i]
            rec[1], rec[2], rec[3] = "ok", nsid, round((tr - ts) * 1000, 2)
            rcodes[rcode] = rcodes.get(rcode, 0) + 1
            counts[nsid] = counts.get(nsid, 0) + 1
            first.setdefault(nsid, ts)
            last[nsid] = ts
            sel.unregister(s)
            s.close()
            del pending[s]
    lost = [r[0] for r in records if r[1] != "ok"]
    lat = sorted(r[3] for r in records if r[3] is not None)
    out = {
        "server": a.server, "rate": a.rate, "duration": a.duration, "timeout": a.timeout,
        "start": t0, "sent": len(records), "answered": len(records) - len(lost),
        "lost": len(lost), "wrong_source": wrong,
        "rcodes": {str(k): v for k, v in rcodes.items()},
        "nsid": counts, "first_seen": first, "last_seen": last,
        "lost_times": [round(t, 3) for t in lost],
        "latency_ms_p50": lat[len(lat) // 2] if lat else None,
        "latency_ms_max": lat[-1] if lat else None,
    }
    if a.log:
        with open(a.log, "w") as f:
            for r in records:
                f.write("%.6f %s %s %s\n" % (r[0], r[1], r[2], r[3]))
    print(json.dumps(out))


def route_gateways(ns, prefix):
    fam = "-6" if ":" in prefix else "-4"
    p = subprocess.run(["ip", "-n", ns, "-j", fam, "route", "show", prefix],
                       capture_output=True, text=True)
    try:
        routes = json.loads(p.stdout or "[]")
    except ValueError:
        return "?"
    devs = []
    for r in routes:
        if r.get("type", "unicast") != "unicast":
            continue
        for nh in r.get("nexthops", [r]):
            if "gateway" in nh:
                d = nh.get("dev", nh["gateway"])
                devs.append(d[3:] if d.startswith("to-") else d)
    return " ".join(sorted(devs)) or "-"


def watch(a):
    prev = None
    while True:
        g = route_gateways(a.ns, a.prefix)
        if g != prev:
            print("%.6f %s" % (time.time(), g), flush=True)
            prev = g
        time.sleep(a.interval)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stream")
    s.add_argument("--server", required=True)
    s.add_argument("--port", type=int, default=53)
    s.add_argument("--rate", type=float, default=200)
    s.add_argument("--duration", type=float, default=10)
    s.add_argument("--timeout", type=float, default=1.0)
    s.add_argument("--qname", default="www.anycast.test")
    s.add_argument("--log")
    s.add_argument("--ready", help="write the start time to this file when starting")
    w = sub.add_parser("watch")
    w.add_argument("--ns", required=True)
    w.add_argument("--prefix", required=True)
    w.add_argument("--interval", type=float, default=0.01)
    a = ap.parse_args()
    try:
        stream(a) if a.cmd == "stream" else watch(a)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Response rate limiting: a flood from one client prefix is cut down to the rate, with
every slip-th limited response sent truncated; another prefix is unaffected; TCP is never
limited; off by default."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

import dns.flags  # noqa: E402
import dns.message  # noqa: E402

lib.require_geocastd()

ZONE = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.2\n"
CONF = """server:
  listen: ["127.0.0.1@{port}"]
  workers: 1
  rrl: { rate: 20, slip: 2 }
zones:
  example.com: { file: {zone:example.com} }
"""


def flood(port, src, n, name="www.example.com"):
    """Send n queries from src as fast as possible, then collect replies for 1 s."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((src, 0))
    s.settimeout(0.2)
    wire = bytearray(lib.make_query(name, "A").to_wire())
    for i in range(n):
        wire[0:2] = (i & 0xFFFF).to_bytes(2, "big")
        s.sendto(bytes(wire), ("127.0.0.1", port))
    full = tc = 0
    deadline = time.monotonic() + 1.0 * lib.SLOW
    while time.monotonic() < deadline:
        try:
            data, _ = s.recvfrom(4096)
        except socket.timeout:
            continue
        m = dns.message.from_wire(data)
        if m.flags & dns.flags.TC:
            tc += 1
        elif m.answer:
            full += 1
    s.close()
    return full, tc


srv = lib.start_geocast(config=CONF, zones={"example.com": ZONE})
try:
    time.sleep(1.1)  # start on a fresh second
    full, tc = flood(srv.port, "127.0.1.1", 400)
    tap.ok(20 <= full <= 60, "flood of 400 from one /24: %d full answers (rate 20/s)" % full)
    limited = 400 - full
    tap.ok(abs(tc - limited / 2) <= limited * 0.1 + 5,
           "slip 2: about half of the %d limited replies sent truncated (%d)" % (limited, tc))
    # Another prefix, at the same time, is not limited.
    good = 0
    for i in range(10):
        r = lib.udp(lib.make_query("www.example.com", "A"), srv.port)  # from 127.0.0.1
        good += 1 if r is not None and r.answer and not (r.flags & dns.flags.TC) else 0
    tap.is_(good, 10, "another client prefix gets every answer")
    # TCP from the flooding prefix is never limited.
    ok_tcp = 0
    for i in range(30):
        r = lib.tcp(lib.make_query("www.example.com", "A"), srv.port)
        ok_tcp += 1 if r is not None and r.answer else 0
    tap.is_(ok_tcp, 30, "TCP is never rate limited")
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)

# Off by default.
srv = lib.start_geocast(config=CONF.replace("  rrl: { rate: 20, slip: 2 }\n", ""),
                        zones={"example.com": ZONE})
try:
    full, tc = flood(srv.port, "127.0.1.1", 300)
    tap.ok(full >= 295 and tc == 0, "without rrl every query is answered (%d of 300)" % full)
finally:
    srv.stop(timeout=2)
tap.done()

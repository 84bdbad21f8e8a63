#!/usr/bin/python3
"""Hostile TCP clients: connections that trickle bytes fill the connection cap, yet UDP is
answered throughout and TCP service returns once the idle timeout closes them (idle time
counts from the last complete query, so trickling does not keep a connection alive)."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

lib.require_geocastd()

ZONE = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.2\n"
CONF = """server:
  listen: ["127.0.0.1@{port}"]
  workers: 1
  tcp_max_clients: 40
  tcp_idle_timeout: 1s
zones:
  example.com: { file: {zone:example.com} }
"""

srv = lib.start_geocast(config=CONF, zones={"example.com": ZONE})
slow = []
try:
    q = lib.make_query("www.example.com", "A").to_wire()
    frame = len(q).to_bytes(2, "big") + q
    for i in range(60):  # more than the cap
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", srv.port))
            s.send(frame[:1])
            slow.append(s)
        except OSError:
            s.close()
    t0 = time.monotonic()
    udp_ok = 0
    sent = 0
    # Keep trickling one byte per connection every 0.2 s for 2 s, querying UDP meanwhile.
    for step in range(10):
        for s in slow:
            try:
                s.send(frame[1 + step:2 + step])
            except OSError:
                pass
        for i in range(5):
            sent += 1
            r = lib.udp(lib.make_query("www.example.com", "A"), srv.port, timeout=1.0)
            udp_ok += 1 if r is not None and r.answer else 0
        time.sleep(0.2)
    tap.is_(udp_ok, sent, "UDP answered throughout (%d of %d)" % (udp_ok, sent))
    # By now (over 2 s) the idle timeout has closed the trickling connections.
    closed = 0
    for s in slow:
        try:
            s.settimeout(0.5)
            data = s.recv(100)
            closed += 1 if data == b"" else 0
        except ConnectionResetError:
            closed += 1
        except (socket.timeout, OSError):
            pass
    tap.ok(closed >= 40, "trickling connections were closed by the server (%d of %d)"
           % (closed, len(slow)))
    r = lib.tcp(lib.make_query("www.example.com", "A"), srv.port)
    tap.ok(r is not None and r.answer, "a new TCP client is served after %.1f s"
           % (time.monotonic() - t0))
    tap.ok(srv.alive(), "the daemon is alive")
    srv.stop_and_check()
finally:
    for s in slow:
        s.close()
    srv.stop(timeout=2)
tap.done()

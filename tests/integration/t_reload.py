#!/usr/bin/python3
"""Reload (SIGHUP): new data goes live; a broken zone or config keeps the old data serving
and the error is logged with file:line; no query is lost while reloads happen."""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

lib.require_geocastd()

ZONE = """$ORIGIN example.com.
$TTL 60
@ SOA ns1 hm {serial} 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
www A {addr}
"""


def zone(serial, addr):
    return ZONE.format(serial=serial, addr=addr)


def www(srv):
    r = srv.query(lib.make_query("www.example.com", "A"), timeout=1.0)
    if r is None or r.rcode() != dns.rcode.NOERROR or not r.answer:
        return None
    return r.answer[0][0].to_text()


def wait_for(srv, want, secs=5.0):
    deadline = time.monotonic() + secs * lib.SLOW
    got = None
    while time.monotonic() < deadline:
        got = www(srv)
        if got == want:
            return got
        time.sleep(0.05)
    return got


srv = lib.start_geocast(zones={"example.com": zone(1, "192.0.2.1")})
zpath = srv.conf_path.replace("geocast.yaml", "example.com.zone")
try:
    tap.is_(www(srv), "192.0.2.1", "initial answer")

    with open(zpath, "w") as f:
        f.write(zone(2, "192.0.2.2"))
    os.kill(srv.proc.pid, signal.SIGHUP)
    tap.is_(wait_for(srv, "192.0.2.2"), "192.0.2.2", "SIGHUP: the new answer goes live")
    tap.like(srv.stderr(), "reloaded", "reload logged")

    # A broken zone: the old data keeps serving, the error names file and line.
    with open(zpath, "w") as f:
        f.write(zone(3, "192.0.2.3") + "bad A 999.1.1.1\n")
    os.kill(srv.proc.pid, signal.SIGHUP)
    time.sleep(0.5 * lib.SLOW)
    tap.is_(www(srv), "192.0.2.2", "broken zone: the previous answer still served")
    tap.like(srv.stderr(), "example.com.zone:7:", "broken zone: error has file:line")
    tap.like(srv.stderr(), "reload failed", "broken zone: reload failure logged")

    # A broken config: same.
    with open(zpath, "w") as f:
        f.write(zone(4, "192.0.2.4"))
    good_conf = open(srv.conf_path).read()
    with open(srv.conf_path, "w") as f:
        f.write(good_conf + "\nbogus_key: 1\n")
    os.kill(srv.proc.pid, signal.SIGHUP)
    time.sleep(0.5 * lib.SLOW)
    tap.is_(www(srv), "192.0.2.2", "broken config: the previous answer still served")
    tap.like(srv.stderr(), "bogus_key: unknown key", "broken config: error names the key")

    # Fixing the config brings the pending zone change in.
    with open(srv.conf_path, "w") as f:
        f.write(good_conf)
    os.kill(srv.proc.pid, signal.SIGHUP)
    tap.is_(wait_for(srv, "192.0.2.4"), "192.0.2.4", "fixed config: reload succeeds")

    # Steady queries while reloading 10 times: nothing lost, every answer from one of the
    # two generations.
    stop = threading.Event()
    stats = {"sent": 0, "lost": 0, "bad": 0}

    def load():
        q = lib.make_query("www.example.com", "A")
        while not stop.is_set() and stats["sent"] < 20000:
            stats["sent"] += 1
            r = srv.query(q, timeout=1.0)
            if r is None:
                stats["lost"] += 1
            elif r.rcode() != dns.rcode.NOERROR or not r.answer or \
                    r.answer[0][0].to_text() not in ("192.0.2.4", "192.0.2.5"):
                stats["bad"] += 1

    th = threading.Thread(target=load)
    th.start()
    for i in range(10):
        addr = "192.0.2.5" if i % 2 == 0 else "192.0.2.4"
        with open(zpath, "w") as f:
            f.write(zone(5 + i, addr))
        os.kill(srv.proc.pid, signal.SIGHUP)
        time.sleep(0.2 * lib.SLOW)
    stop.set()
    th.join(timeout=30)
    tap.ok(stats["sent"] > 100, "load ran (%d queries)" % stats["sent"])
    tap.is_(stats["lost"], 0, "no query lost during 10 reloads")
    tap.is_(stats["bad"], 0, "every answer came from a whole generation")
    tap.is_(wait_for(srv, "192.0.2.4"), "192.0.2.4", "last reload's data is live")
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)
tap.done()

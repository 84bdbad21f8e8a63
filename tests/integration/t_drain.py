#!/usr/bin/python3
"""Anycast fit: server.state_file says up only while the node serves and is not drained;
geocastctl drain/undrain; SIGTERM with server.drain withdraws first, keeps answering for
the drain time, then exits 0."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

lib.require_geocastd()
CTL = os.path.join(os.path.dirname(lib.GEOCASTD), "geocastctl")

ZONE = "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.2\n"
CONF = """server:
  listen: ["127.0.0.1@{port}"]
  workers: 1
  state_file: {dir}/state
  drain: 1500ms
control: { socket: {dir}/ctl.sock }
zones:
  example.com: { file: {zone:example.com} }
"""


def state(d):
    try:
        with open(os.path.join(d, "state")) as f:
            return f.read().strip()
    except OSError as e:
        return "missing (%s)" % e.strerror


def answers(srv):
    r = srv.query(lib.make_query("www.example.com", "A"), timeout=0.5)
    return r is not None and len(r.answer) == 1


def ctl(d, cmd):
    p = subprocess.run([CTL, "-s", os.path.join(d, "ctl.sock"), cmd], capture_output=True,
                       text=True, timeout=10)
    return p.returncode, p.stdout + p.stderr


srv = lib.start_geocast(config=CONF, zones={"example.com": ZONE})
d = srv.dir
try:
    tap.is_(state(d), "up", "state file says up once the node serves")
    rc, out = ctl(d, "drain")
    tap.ok(rc == 0 and "drained" in out, "geocastctl drain (%s)" % out.strip())
    tap.is_(state(d), "down", "drained: state file down")
    tap.ok(answers(srv), "drained: still answering")
    rc, out = ctl(d, "undrain")
    tap.is_((rc, state(d)), (0, "up"), "geocastctl undrain: up again")

    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3 * lib.SLOW)
    tap.is_(state(d), "down", "SIGTERM: state file down at once")
    tap.ok(answers(srv), "SIGTERM: still answering while draining")
    time.sleep(0.5 * lib.SLOW)
    tap.ok(answers(srv), "...0.8 s later too")
    try:
        st = srv.proc.wait(timeout=10 * lib.SLOW)
    except subprocess.TimeoutExpired:
        st = None
    took = time.monotonic() - t0
    tap.is_(st, 0, "exits 0 after the drain")
    tap.ok(1.3 <= took <= 6 * lib.SLOW, "exit came after the 1.5 s drain (%.2f s)" % took)
    tap.is_(state(d), "down", "state file stays down after exit")
    tap.ok(not srv.sanitizer_report(), "no sanitizer report")

    # A second SIGTERM cuts the drain short.
    srv2 = lib.start_geocast(config=CONF.replace("1500ms", "30s"), zones={"example.com": ZONE})
    srv2.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    t0 = time.monotonic()
    srv2.proc.send_signal(signal.SIGTERM)
    try:
        st = srv2.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        st = None
    tap.ok(st == 0 and time.monotonic() - t0 < 5, "second SIGTERM ends a 30 s drain at once")

    st, err, _, _ = lib.geocast_check(CONF.replace("1500ms", "soon"), zones={"example.com": ZONE})
    tap.ok(st != 0 and "server.drain" in err, "bad drain duration is rejected (%s)" % err.strip()[-100:])
finally:
    srv.stop(timeout=2)
tap.done()

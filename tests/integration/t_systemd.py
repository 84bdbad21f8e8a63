#!/usr/bin/python3
"""systemd integration: with $NOTIFY_SOCKET, geocastd sends MAINPID and READY=1 once it
answers, RELOADING=1 (with MONOTONIC_USEC) and READY=1 around each reload, ok or failed,
with STATUS= lines, and STOPPING=1 on SIGTERM; dist/geocast.service passes
`systemd-analyze verify`."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

lib.require_geocastd()

ZONE = """$ORIGIN example.com.
$TTL 60
@ SOA ns1 hm {serial} 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
www A 192.0.2.{serial}
"""

D = lib.tmpdir("geocast-notify-")
NPATH = os.path.join(D, "notify.sock")
ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ns.bind(NPATH)


def recv(secs=10.0):
    """The next notification as a dict, or {} after secs."""
    ns.settimeout(secs * lib.SLOW)
    try:
        data = ns.recv(4096).decode()
    except socket.timeout:
        return {}
    return dict(line.split("=", 1) for line in data.split("\n") if "=" in line)


def until(key, secs=10.0):
    """Notifications until one with key (returned), all collected in got."""
    deadline = time.monotonic() + secs * lib.SLOW
    while time.monotonic() < deadline:
        m = recv(max(0.1, deadline - time.monotonic()))
        if not m:
            break
        got.append(m)
        if key in m:
            return m
    return {}


got = []
os.environ["NOTIFY_SOCKET"] = NPATH
try:
    srv = lib.start_geocast(zones={"example.com": ZONE.format(serial=1)},
                            extra_server={"drain": "300ms"})
finally:
    del os.environ["NOTIFY_SOCKET"]
ZPATH = os.path.join(srv.dir, "example.com.zone")
try:
    ready = until("READY")
    tap.is_(ready.get("READY"), "1", "READY=1 once serving")
    tap.like(ready.get("STATUS", ""), "serving 1 zones, 4 records, 0 routes (generation 1)",
             "STATUS says what is served")
    tap.ok(any(m.get("MAINPID") == str(srv.proc.pid) for m in got), "MAINPID is geocastd's pid")

    # A good reload: RELOADING=1 with the monotonic time, then READY=1.
    with open(ZPATH, "w") as f:
        f.write(ZONE.format(serial=2))
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    os.kill(srv.proc.pid, signal.SIGHUP)
    rl = until("RELOADING")
    t1 = time.clock_gettime(time.CLOCK_MONOTONIC)
    tap.is_(rl.get("RELOADING"), "1", "SIGHUP: RELOADING=1")
    usec = int(rl.get("MONOTONIC_USEC", "0"))
    tap.ok(t0 * 1e6 <= usec <= t1 * 1e6, "MONOTONIC_USEC is CLOCK_MONOTONIC at the reload (%d)" % usec)
    tap.is_(rl.get("STATUS"), "reloading (SIGHUP)", "STATUS while reloading")
    rd = until("READY")
    tap.is_(rd.get("READY"), "1", "READY=1 after the reload")
    tap.like(rd.get("STATUS", ""), "(generation 2)", "STATUS: the new generation")

    # A failed reload: READY=1 again (the old data serves), the failure in STATUS.
    with open(ZPATH, "w") as f:
        f.write(ZONE.format(serial=3) + "bad A 999.1.1.1\n")
    os.kill(srv.proc.pid, signal.SIGHUP)
    rl = until("RELOADING")
    tap.is_(rl.get("RELOADING"), "1", "failed reload: RELOADING=1 first")
    rd = until("READY")
    tap.is_(rd.get("READY"), "1", "failed reload: READY=1 (still serving)")
    tap.like(rd.get("STATUS", ""), "serving generation 2; last reload (SIGHUP) failed: ",
             "failed reload: STATUS says so")
    tap.like(rd.get("STATUS", ""), "example.com.zone:7:", "failed reload: STATUS has file:line")

    # SIGTERM: STOPPING=1 first (the drain is still answering), then a clean exit.
    srv.proc.send_signal(signal.SIGTERM)
    st = until("STOPPING")
    tap.is_(st.get("STOPPING"), "1", "SIGTERM: STOPPING=1")
    tap.is_(st.get("STATUS"), "draining", "STATUS: draining (server.drain set)")
    tap.ok(srv.proc.poll() is None, "STOPPING=1 arrives before the drain is over")
    srv.proc.wait(timeout=20 * lib.SLOW)
    tap.is_(srv.proc.returncode, 0, "exits 0 after the drain")
    tap.ok(not srv.sanitizer_report(), "no sanitizer report")
finally:
    srv.stop(timeout=2)

# Without NOTIFY_SOCKET nothing changes (every other test runs that way); with a socket
# nobody listens on, geocastd still starts and answers.
os.environ["NOTIFY_SOCKET"] = os.path.join(D, "nobody-listens.sock")
try:
    srv = lib.start_geocast(zones={"example.com": ZONE.format(serial=1)})
finally:
    del os.environ["NOTIFY_SOCKET"]
tap.ok(srv.alive(), "a dead NOTIFY_SOCKET does not stop geocastd")
srv.stop_and_check()

# The unit file.
UNIT = os.path.join(lib.ROOT, "dist", "geocast.service")
if shutil.which("systemd-analyze") is None:
    tap.skip("systemd-analyze not installed", 2)
else:
    # Verify a copy whose commands exist here, with the man pages on MANPATH.
    u = open(UNIT).read()
    bindir = os.path.dirname(lib.GEOCASTD)
    u = u.replace("/usr/local/sbin/", bindir + "/")
    vd = lib.tmpdir("geocast-unit-")
    with open(os.path.join(vd, "geocast.service"), "w") as f:
        f.write(u)
    mp = os.path.join(vd, "man")
    for sec in ("5", "8"):
        os.makedirs(os.path.join(mp, "man" + sec))
    for page in os.listdir(os.path.join(lib.ROOT, "man")):
        os.symlink(os.path.join(lib.ROOT, "man", page), os.path.join(mp, "man" + page[-1], page))
    env = dict(os.environ, MANPATH=mp)
    r = subprocess.run(["systemd-analyze", "verify", os.path.join(vd, "geocast.service")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
                       env=env, cwd=vd)
    tap.is_(r.returncode, 0, "systemd-analyze verify dist/geocast.service")
    tap.is_(r.stdout.strip(), "", "no warnings (%s)" % r.stdout.strip()[:300])
tap.done()

#!/usr/bin/python3
"""Health checks against real targets on loopback: TCP listeners and HTTP servers started by
this test on 127.0.0.x, a dns monitor querying the daemon itself, and a file monitor.
Stopping a target moves answers within interval x threshold (+ margin), bringing it back
restores them; every answer down serves all of them (fail open); set-state overrides pairs,
addresses and monitors and survives reloads; `state` lists every pair; /metrics shows the
states and flaps; explain shows the down answers. Everything on loopback, every wait bounded."""

import http.client
import http.server
import json
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

import dns.rcode  # noqa: E402

lib.require_geocastd()

GEOCASTCTL = os.path.join(lib.ROOT, lib.BUILD, "bin", "geocastctl") if not os.path.isabs(lib.BUILD) \
    else os.path.join(lib.BUILD, "bin", "geocastctl")
if not os.access(GEOCASTCTL, os.X_OK):
    tap.skip_all("geocastctl not built")

INTERVAL, TIMEOUT, DOWN, UP = 0.2, 0.15, 2, 1
# A target that stops answering leaves after DOWN failed checks, one interval apart, the
# last one taking up to TIMEOUT; allow one more interval for phase, plus scheduling slack.
MOVE_BOUND = INTERVAL * (DOWN + 1) + TIMEOUT + 1.0
BACK_BOUND = INTERVAL * (UP + 1) + TIMEOUT + 1.0

ZONE = """$ORIGIN example.com.
$TTL 60
@ SOA ns1 hm 1 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
"""

CONFIG = """server: {{ listen: ["127.0.0.1@{{port}}"], workers: 2, identity: node-a }}
control: {{ socket: "{{dir}}/ctl.sock", http: "127.0.0.1@{mport}" }}
monitors:
  tcpmon: {{ type: tcp, port: {tport}, interval: 200ms, timeout: 150ms, up: 1, down: 2 }}
  httpmon:
    type: http
    port: {hport}
    path: /health
    host: www.example.com
    expect: 200
    body: "all ok"
    interval: 200ms
    timeout: 150ms
    up: 1
    down: 2
  dnsok: {{ type: dns, port: {{port}}, name: ns1.example.com, qtype: A, rcode: NOERROR, interval: 200ms, timeout: 150ms, up: 1, down: 3 }}
  dnsbad: {{ type: dns, port: {{port}}, name: nope.example.com, rcode: NOERROR, interval: 200ms, timeout: 150ms, up: 1, down: 1 }}
  ext: {{ type: file, file: ext.state, interval: 200ms, up: 1, down: 1 }}
zones:
  example.com:
    file: "{{zone:example.com}}"
    routes:
      tcp:
        A: {{ ttl: 5, monitor: tcpmon, answers: [127.0.0.2, 127.0.0.3] }}
      mixed:
        A: {{ ttl: 5, monitor: tcpmon, answers: [127.0.0.2, 127.0.0.3, {{ value: 127.0.0.9, monitor: false }}] }}
      web:
        A: {{ ttl: 5, monitor: httpmon, answers: [127.0.0.4, 127.0.0.5] }}
      dns:
        TXT:
          answers:
            - {{ value: good, monitor: dnsok, target: 127.0.0.1 }}
            - {{ value: bad, monitor: dnsbad, target: 127.0.0.1 }}
      ext:
        A: {{ ttl: 5, monitor: ext, answers: [127.0.0.7, 127.0.0.8] }}
"""


# ---- targets -------------------------------------------------------------------------------

class TcpTarget:
    """A listener that accepts and closes connections; stop() makes connects fail."""

    def __init__(self, addr, port):
        self.addr, self.port = addr, port
        self.sock = None
        self.start()

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.addr, self.port))
        s.listen(64)
        s.settimeout(0.1)
        self.sock = s
        self.alive = True
        threading.Thread(target=self._loop, args=(s,), daemon=True).start()

    def _loop(self, s):
        while self.alive and self.sock is s:
            try:
                c, _ = s.accept()
                c.close()
            except socket.timeout:
                continue
            except OSError:
                break

    def stop(self):
        self.alive = False
        s, self.sock = self.sock, None
        if s:
            s.close()


HTTP_STATE = {}     # address -> {"status": int, "body": bytes, "hosts": [Host headers]}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        st = HTTP_STATE[self.server.server_address[0]]
        st["hosts"].append(self.headers.get("Host"))
        body = st["body"] if self.path == "/health" else b"wrong path"
        status = st["status"] if self.path == "/health" else 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def bind_ok(addrs, port):
    socks = []
    try:
        for a in addrs:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((a, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def common_port(addrs):
    import random
    for _ in range(200):
        p = random.randint(20000, 60000)
        if bind_ok(addrs, p):
            return p
    tap.bail("no free port on %s" % (addrs,))


# ---- helpers ------------------------------------------------------------------------------

def ctl(*args, timeout=30):
    return lib.run_cmd([GEOCASTCTL, "-s", SOCK] + list(args), timeout=timeout)


def answers(name, qtype="A"):
    r = SRV.query(lib.make_query(name + ".example.com", qtype), timeout=1.0)
    if r is None or r.rcode() != dns.rcode.NOERROR:
        return None
    return sorted(rd.to_text().strip('"') for rr in r.answer for rd in rr)


def wait_for(name, want, bound, qtype="A"):
    """Poll until name answers exactly want (a list); returns (ok, seconds, last)."""
    t0 = time.monotonic()
    deadline = t0 + max(bound, 5.0) * lib.SLOW
    got = None
    while time.monotonic() < deadline:
        got = answers(name, qtype)
        if got == sorted(want):
            return True, time.monotonic() - t0, got
        time.sleep(0.02)
    return False, time.monotonic() - t0, got


def check_move(name, want, bound, what, qtype="A"):
    ok, secs, got = wait_for(name, want, bound, qtype)
    tap.ok(ok, "%s: %s answers %s (after %.2fs)" % (what, name, want, secs))
    if not ok:
        tap.diag("last answer: %r" % (got,))
        tap.diag(ctl("state")[1])
    else:
        tap.ok(secs <= bound * lib.SLOW, "%s: within %.2fs (took %.2fs)" % (what, bound, secs))


def state():
    rc, out, err = ctl("-j", "state")
    try:
        return json.loads(out)
    except ValueError:
        return None


def pair(st, mon, target):
    for t in st["targets"] if st else []:
        if t["monitor"] == mon and t["target"] == target:
            return t
    return None


def wait_state(mon, target, want, bound=5.0):
    deadline = time.monotonic() + bound * lib.SLOW
    while time.monotonic() < deadline:
        p = pair(state(), mon, target)
        if p and p["checked"] == want:
            return True
        time.sleep(0.05)
    return False


def metrics():
    c = http.client.HTTPConnection("127.0.0.1", MPORT, timeout=5 * lib.SLOW)
    try:
        c.request("GET", "/metrics")
        return c.getresponse().read().decode()
    except (OSError, http.client.HTTPException):
        return ""
    finally:
        c.close()


def metric(text, name, **labels):
    lab = ",".join('%s="%s"' % kv for kv in labels.items())
    lab = "\\{%s\\}" % re.escape(lab) if labels else ""
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), lab), text, re.M)
    return float(m.group(1)) if m else None


def write_ext(text):
    p = os.path.join(SRV.dir, "ext.state")
    with open(p + ".tmp", "w") as f:
        f.write(text)
    os.rename(p + ".tmp", p)


# ---- config errors ------------------------------------------------------------------------

BAD = [
    ("monitors: {m: {type: tcp}}\n", "monitors.m: a tcp monitor needs 'port'"),
    ("monitors: {m: {type: tcp, port: 1, path: /x}}\n", "monitors.m.path: does not apply to tcp monitors"),
    ("monitors: {m: {type: smtp}}\n", "monitors.m.type: expected tcp, http, dns or file"),
    ("monitors: {m: {port: 1}}\n", "monitors.m: missing key 'type'"),
    ("monitors: {m: {type: http, bogus: 1}}\n", "monitors.m.bogus: unknown key"),
    ("monitors: {m: {type: http, interval: 1s, timeout: 2s}}\n", "timeout (2000ms) is longer than interval"),
    ("monitors: {m: {type: dns}}\n", "a dns monitor needs 'name'"),
    ("monitors: {m: {type: file}}\n", "a file monitor needs 'file'"),
    ("monitors: {m: {type: file, file: x, timeout: 1s}}\n", "monitors.m.timeout: does not apply to file monitors"),
    ("monitors: {m: {type: dns, name: x., rcode: WHAT}}\n", "monitors.m.rcode: expected NOERROR"),
    ("monitors: {\"a:b\": {type: tcp, port: 1}}\n", "bad monitor name"),
]
ROUTE_BAD = [
    ("{ A: { monitor: nope, answers: [192.0.2.1] } }", "w.A.monitor: unknown monitor 'nope'"),
    ("{ A: { answers: [ {value: 192.0.2.1, monitor: nope} ] } }", "w.A.answers[0].monitor: unknown monitor 'nope'"),
    ("{ MX: { monitor: m, answers: [\"10 mx\"] } }", "w.MX.answers[0].monitor: needs 'target: ADDRESS'"),
    ("{ MX: { monitor: m, answers: [ {value: \"10 mx\", target: mx.example.com} ] } }", "w.MX.answers[0].target: not an IP address"),
    ("{ A: { answers: [ {value: 192.0.2.1, target: 192.0.2.2} ] } }", "w.A.answers[0].target: the answer has no monitor"),
]


def config_errors():
    for text, want in BAD:
        conf = text + 'zones: {example.com: {file: "{zone:example.com}"}}\n'
        rc, out, _, _ = lib.geocast_check(conf, {"example.com.": ZONE})
        tap.ok(rc == 1 and want in out, "config error: %s" % want)
        if not (rc == 1 and want in out):
            tap.diag(out)
    for route, want in ROUTE_BAD:
        conf = ("monitors: {m: {type: tcp, port: 1}}\nzones:\n  example.com:\n"
                "    file: \"{zone:example.com}\"\n    routes:\n      w: %s\n" % route)
        rc, out, _, _ = lib.geocast_check(conf, {"example.com.": ZONE})
        tap.ok(rc == 1 and want in out, "config error: %s" % want)
        if not (rc == 1 and want in out):
            tap.diag(out)
    ok_conf = ("monitors: {m: {type: tcp, port: 1}, f: {type: file, file: st}}\nzones:\n  example.com:\n"
               "    file: \"{zone:example.com}\"\n    routes:\n"
               "      w: { MX: { monitor: m, answers: [ {value: \"10 mx\", target: \"2001:db8::1\"},"
               " {value: \"20 mx2\", monitor: f, target: mx2-site}, {value: \"30 mx3\", monitor: false} ] } }\n")
    rc, out, _, _ = lib.geocast_check(ok_conf, {"example.com.": ZONE})
    tap.is_(rc, 0, "targets on MX answers, a file monitor token, monitor: false are valid")
    if rc:
        tap.diag(out)


# ---- main ---------------------------------------------------------------------------------

config_errors()

TPORT = common_port(["127.0.0.2", "127.0.0.3"])
TCP = {a: TcpTarget(a, TPORT) for a in ("127.0.0.2", "127.0.0.3")}
HPORT = common_port(["127.0.0.4", "127.0.0.5"])
HTTPD = {}
for a in ("127.0.0.4", "127.0.0.5"):
    HTTP_STATE[a] = {"status": 200, "body": b"all ok here", "hosts": []}
    h = http.server.ThreadingHTTPServer((a, HPORT), Handler)
    h.daemon_threads = True
    threading.Thread(target=h.serve_forever, daemon=True).start()
    HTTPD[a] = h
MPORT = lib.free_port()

SRV = lib.start_geocast(CONFIG.format(tport=TPORT, hport=HPORT, mport=MPORT),
                        {"example.com.": ZONE})
SOCK = os.path.join(SRV.dir, "ctl.sock")

# First results: every pair checked once.
deadline = time.monotonic() + 5 * lib.SLOW
st = None
while time.monotonic() < deadline:
    st = state()
    if st and len(st["targets"]) == 8 and all(t["last_result"] for t in st["targets"]):
        break
    time.sleep(0.05)
tap.ok(st and len(st["targets"]) == 8 and all(t["last_result"] for t in st["targets"]),
       "state lists the 8 checked (monitor, target) pairs, each checked")
tap.ok(pair(st, "tcpmon", "127.0.0.2") and pair(st, "tcpmon", "127.0.0.3"),
       "an address shared by two routes is one pair (tcpmon 127.0.0.2 / .3)")

check_move("tcp", ["127.0.0.2", "127.0.0.3"], 2.0, "all tcp targets up")
check_move("web", ["127.0.0.4", "127.0.0.5"], 2.0, "both http targets up")
check_move("dns", ["good"], 2.0, "dns: the NXDOMAIN-checked answer is down", qtype="TXT")
check_move("ext", ["127.0.0.7", "127.0.0.8"], 2.0, "no state file: both down, fail open")
tap.ok(pair(state(), "ext", "127.0.0.7")["state"] == "down", "...the file monitor says down")
tap.ok(all(h == "www.example.com:%d" % HPORT for a in HTTP_STATE for h in HTTP_STATE[a]["hosts"])
       and HTTP_STATE["127.0.0.4"]["hosts"], "http checks send the configured Host header")

# TCP: stop one, bring it back.
TCP["127.0.0.2"].stop()
check_move("tcp", ["127.0.0.3"], MOVE_BOUND, "tcp target 127.0.0.2 stopped")
check_move("mixed", ["127.0.0.3", "127.0.0.9"], 1.0, "...the other route using the pair follows")
TCP["127.0.0.2"].start()
check_move("tcp", ["127.0.0.2", "127.0.0.3"], BACK_BOUND, "tcp target 127.0.0.2 back")

# All down: fail open.
TCP["127.0.0.2"].stop()
TCP["127.0.0.3"].stop()
tap.ok(wait_state("tcpmon", "127.0.0.2", "down") and wait_state("tcpmon", "127.0.0.3", "down"),
       "both tcp targets stopped: both checked down")
tap.is_(answers("tcp"), ["127.0.0.2", "127.0.0.3"], "every answer down: all served (fail open)")
tap.is_(answers("mixed"), ["127.0.0.9"], "...while a route with an unchecked answer serves it")
tap.is_(metric(metrics() + "\n", "geocast_routes_fail_open"), 2.0,
        "geocast_routes_fail_open counts the fail-open routes (tcp, and ext with no file yet)")
TCP["127.0.0.2"].start()
TCP["127.0.0.3"].start()
check_move("mixed", ["127.0.0.2", "127.0.0.3", "127.0.0.9"], BACK_BOUND, "both tcp targets back")

# HTTP: a bad status, then a body without the expected text.
HTTP_STATE["127.0.0.5"]["status"] = 503
check_move("web", ["127.0.0.4"], MOVE_BOUND, "http target answers 503")
HTTP_STATE["127.0.0.5"]["status"] = 200
check_move("web", ["127.0.0.4", "127.0.0.5"], BACK_BOUND, "http target answers 200 again")
HTTP_STATE["127.0.0.4"]["body"] = b"degraded"
check_move("web", ["127.0.0.5"], MOVE_BOUND, "http body lacks the expected text")
p = pair(state(), "httpmon", "127.0.0.4")
tap.like(p and p["last_result"]["detail"], "lacks 'all ok'", "state gives the reason")
HTTP_STATE["127.0.0.4"]["body"] = b"all ok again"
check_move("web", ["127.0.0.4", "127.0.0.5"], BACK_BOUND, "http body fine again")
HTTPD["127.0.0.5"].shutdown()
HTTPD["127.0.0.5"].server_close()
check_move("web", ["127.0.0.4"], MOVE_BOUND, "http server stopped")

# The file monitor.
write_ext("# written by an external checker\n127.0.0.7 down\n127.0.0.8 up\n")
check_move("ext", ["127.0.0.8"], 1.5, "file: 127.0.0.7 down, 127.0.0.8 up")
write_ext("up\n")
check_move("ext", ["127.0.0.7", "127.0.0.8"], 1.5, "file: a bare 'up' line")
write_ext("down\n127.0.0.7 up\n")
check_move("ext", ["127.0.0.7"], 1.5, "file: an address line beats the bare line")

# Overrides.
rc, out, err = ctl("set-state", "127.0.0.3", "down")
tap.ok(rc == 0 and "override down" in out, "set-state ADDRESS down")
tap.is_(answers("tcp"), ["127.0.0.2"], "...takes it out at once")
tap.is_(answers("mixed"), ["127.0.0.2", "127.0.0.9"], "...in every route checking it")
rc, out, err = ctl("reload")
tap.is_(rc, 0, "reload")
tap.is_(answers("tcp"), ["127.0.0.2"], "the override survives the reload")
rc, out, err = ctl("state")
tap.like(out, "override 127.0.0.3 down", "state lists the override")
tap.ok(re.search(r"^tcpmon\s+tcp\s+127\.0\.0\.3\s+down\s+up\s+down\(127\.0\.0\.3\)", out, re.M),
       "state: pair down, checked up, overridden")
rc, out, err = ctl("set-state", "127.0.0.3", "auto")
tap.ok(rc == 0 and "override removed" in out, "set-state ADDRESS auto")
tap.is_(answers("tcp"), ["127.0.0.2", "127.0.0.3"], "...back to the checked state")

rc, out, err = ctl("set-state", "tcpmon", "down")
tap.is_(rc, 0, "set-state MONITOR down")
tap.is_(answers("mixed"), ["127.0.0.9"], "...every pair of the monitor down")
tap.is_(answers("tcp"), ["127.0.0.2", "127.0.0.3"], "...a route left with none: fail open")
rc, out, err = ctl("set-state", "tcpmon:127.0.0.2", "up")
tap.is_(rc, 0, "set-state MONITOR:ADDRESS up")
tap.is_(answers("mixed"), ["127.0.0.2", "127.0.0.9"], "...the pair override beats the monitor one")
os.kill(SRV.proc.pid, 1)    # SIGHUP reloads as well
time.sleep(0.5 * lib.SLOW)
tap.is_(answers("mixed"), ["127.0.0.2", "127.0.0.9"], "both overrides survive a SIGHUP reload")
ctl("set-state", "tcpmon", "auto")
ctl("set-state", "tcpmon:127.0.0.2", "auto")
tap.is_(answers("mixed"), ["127.0.0.2", "127.0.0.3", "127.0.0.9"], "overrides removed")

rc, out, err = ctl("set-state", "nothing-checks-this", "down")
tap.ok(rc == 1 and "nothing checks" in err, "set-state on an unknown name fails")
rc, out, err = ctl("set-state", "127.0.0.2", "maybe")
tap.ok(rc == 1 and "up, down or auto" in err, "set-state with a bad state fails")

# A down target stays down across a reload (the state lives outside the snapshot).
TCP["127.0.0.2"].stop()
check_move("tcp", ["127.0.0.3"], MOVE_BOUND, "tcp target stopped again")
f0 = pair(state(), "tcpmon", "127.0.0.2")["flaps"]
rc, _, _ = ctl("reload")
tap.is_(answers("tcp"), ["127.0.0.3"], "right after a reload the down answer is still out")
tap.is_(pair(state(), "tcpmon", "127.0.0.2")["flaps"], f0, "...and its flap count is kept")

# explain shows the health.
rc, out, err = ctl("explain", "tcp.example.com", "A", "192.0.2.1")
tap.like(out, "health     down: [0]", "explain shows the down answer")

# Metrics.
text = metrics()
tap.is_(metric(text, "geocast_monitor_up", monitor="tcpmon", target="127.0.0.2"), 0.0,
        "geocast_monitor_up 0 for the stopped target")
tap.is_(metric(text, "geocast_monitor_up", monitor="tcpmon", target="127.0.0.3"), 1.0,
        "geocast_monitor_up 1 for a live one")
fl = metric(text, "geocast_monitor_flaps_total", monitor="tcpmon", target="127.0.0.2")
tap.ok(fl is not None and fl >= 5, "geocast_monitor_flaps_total counts the flaps (%r)" % fl)
tap.is_(metric(text, "geocast_monitor_flaps_total", monitor="dnsok", target="127.0.0.1"), 0.0,
        "a steady target has no flaps")
tap.like(text, "# TYPE geocast_monitor_flaps_total counter", "flaps typed as a counter")

# A reload that drops a route stops checking its pairs.
conf = open(SRV.conf_path).read()
conf = re.sub(r"      ext:\n        A: .*\n", "", conf)
with open(SRV.conf_path, "w") as f:
    f.write(conf)
rc, _, _ = ctl("reload")
tap.is_(rc, 0, "reload without the ext route")
st = state()
tap.ok(st and not pair(st, "ext", "127.0.0.7") and pair(st, "tcpmon", "127.0.0.2"),
       "its pairs are no longer checked; the others are")

SRV.stop_and_check()
for t in TCP.values():
    t.stop()
tap.done()

#!/usr/bin/python3
"""Query logs: dnstap to a file and to a Unix socket (read by fstrm_capture), decoded by a
small reader below (Frame Streams + protobuf) and cross-checked with `kdig -G`; message
types, addresses, ports, protocol, identity, the exact query and response bytes, and the
geo decision in the extra field. The text query log (logging.query_log). Config errors."""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

import dns.edns  # noqa: E402
import dns.message  # noqa: E402

lib.require_geocastd()
if shutil.which("perl") is None or subprocess.run(
        ["perl", "-MMaxMind::DB::Writer::Tree", "-e", "1"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode != 0:
    tap.skip_all("perl MaxMind::DB::Writer::Tree (libmaxmind-db-writer-perl) not installed")

CONTENT_TYPE = b"protobuf:dnstap.Dnstap"


# ---- a Frame Streams + dnstap reader ---------------------------------------------------
def read_frames(data):
    """Data frames of a Frame Streams file (uni-directional): [START, data..., STOP].
    Returns (content types of the START frame, [frames]); raises ValueError on bad input."""
    pos, frames, ctypes, started = 0, [], [], False
    while pos < len(data):
        (n,) = struct.unpack_from("!I", data, pos)
        pos += 4
        if n:
            frames.append(data[pos:pos + n])
            pos += n
            continue
        (clen,) = struct.unpack_from("!I", data, pos)
        ctrl = data[pos + 4:pos + 4 + clen]
        pos += 4 + clen
        (ctype,) = struct.unpack_from("!I", ctrl, 0)
        if ctype == 2:      # START
            started = True
            p = 4
            while p < len(ctrl):
                f, ln = struct.unpack_from("!II", ctrl, p)
                if f == 1:
                    ctypes.append(ctrl[p + 8:p + 8 + ln])
                p += 8 + ln
        elif ctype == 3:    # STOP
            break
    if not started:
        raise ValueError("no START frame")
    return ctypes, frames


def pb_fields(buf):
    """{field number: [values]}: ints for varint and fixed32, bytes for length-delimited."""
    out, pos = {}, 0

    def varint():
        nonlocal pos
        v, shift = 0, 0
        while True:
            b = buf[pos]
            pos += 1
            v |= (b & 0x7f) << shift
            shift += 7
            if not b & 0x80:
                return v
    while pos < len(buf):
        key = varint()
        field, wt = key >> 3, key & 7
        if wt == 0:
            v = varint()
        elif wt == 2:
            n = varint()
            v = bytes(buf[pos:pos + n])
            pos += n
        elif wt == 5:
            (v,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        elif wt == 1:
            (v,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(field, []).append(v)
    return out


def decode(frame):
    top = pb_fields(frame)
    m = pb_fields(top[14][0])
    one = lambda d, k: d.get(k, [None])[0]  # noqa: E731
    return {
        "identity": one(top, 1), "version": one(top, 2),
        "extra": (one(top, 3) or b"").decode(), "dtype": one(top, 15),
        "type": one(m, 1), "family": one(m, 2), "protocol": one(m, 3),
        "qaddr": one(m, 4), "raddr": one(m, 5), "qport": one(m, 6), "rport": one(m, 7),
        "qsec": one(m, 8), "qnsec": one(m, 9), "query": one(m, 10),
        "rsec": one(m, 12), "rnsec": one(m, 13), "response": one(m, 14),
    }


def read_dnstap(path):
    with open(path, "rb") as f:
        ctypes, frames = read_frames(f.read())
    return ctypes, [decode(fr) for fr in frames]


# ---- setup ---------------------------------------------------------------------------------
WORK = lib.tmpdir("geocast-dnstap-")
MMDB = os.path.join(WORK, "route.mmdb")
r = subprocess.run(["perl", os.path.join(lib.ROOT, "tests", "data", "route", "gen-route-mmdb.pl"),
                    MMDB], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
if r.returncode != 0:
    tap.bail("gen-route-mmdb.pl failed: %s" % r.stderr)

ZONE = lib.EXAMPLE_ZONE


def config(logging):
    return """server: { listen: ["127.0.0.1@{port}"], workers: 2, identity: node-a, version: "geocast test" }
geoip: { mmdb: "%s" }
boundaries:
  Japan: [JP]
logging:
%s
zones:
  example.com:
    file: "{zone:example.com}"
    routes:
      geo:
        A:
          answers:
            - { value: 192.0.2.10, boundary: Japan }
            - { value: 192.0.2.12 }
""" % (MMDB, logging)


def send_from(port, msg, tcp=False):
    """Send msg from a socket with a known port; returns (client port, wire query, reply)."""
    wire = msg.to_wire()
    if tcp:
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.sendall(struct.pack("!H", len(wire)) + wire)
        n = struct.unpack("!H", s.recv(2))[0]
        data = b""
        while len(data) < n:
            data += s.recv(n - len(data))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.bind(("127.0.0.1", 0))
        s.sendto(wire, ("127.0.0.1", port))
        data = s.recv(65535)
    cport = s.getsockname()[1]
    s.close()
    return cport, wire, data


def traffic(srv):
    """Three queries: static UDP, routed UDP with a JP ECS address, routed TCP."""
    sent = []
    sent.append(send_from(srv.port, lib.make_query("www.example.com", "A")) + ("udp",))
    q = lib.make_query("geo.example.com", "A", options=[dns.edns.ECSOption("1.0.0.0", 24)])
    sent.append(send_from(srv.port, q) + ("udp",))
    sent.append(send_from(srv.port, lib.make_query("geo.example.com", "A"), tcp=True) + ("tcp",))
    return sent


LO = socket.inet_aton("127.0.0.1")

# ---- 1. dnstap to a file, with the text query log ------------------------------------------
out = os.path.join(WORK, "out.dnstap")
qlog = os.path.join(WORK, "query.log")
srv = lib.start_geocast(config=config("  dnstap: { file: %s, identity: tap-node }\n"
                                      "  query_log: %s" % (out, qlog)),
                        zones={"example.com": ZONE})
try:
    sent = traffic(srv)       # the readiness probe is in the log too
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)
ctypes, msgs = read_dnstap(out)
tap.is_(ctypes, [CONTENT_TYPE], "file: the START frame names protobuf:dnstap.Dnstap")
tap.ok(len(msgs) >= 6 and len(msgs) % 2 == 0,
       "file: two messages per query (%d messages)" % len(msgs))
tap.is_(sorted(m["type"] for m in msgs), [1] * (len(msgs) // 2) + [2] * (len(msgs) // 2),
        "as many AUTH_QUERY as AUTH_RESPONSE messages")
# Threads have their own queues: messages of different threads may come in any order.
# Pair them with what was sent by the exact bytes.
pairs = []
for cport, wire, data, proto in sent:
    qm = [m for m in msgs if m["type"] == 1 and m["query"] == wire]
    rm = [m for m in msgs if m["type"] == 2 and m["response"] == data]
    pairs.append((qm, rm))
tap.is_([(len(q), len(r)) for q, r in pairs], [(1, 1)] * 3,
        "each query has one AUTH_QUERY with its exact bytes and one AUTH_RESPONSE with the reply's")
if any(len(q) != 1 or len(r) != 1 for q, r in pairs):
    tap.bail("dnstap messages missing: %r" % msgs)
ours = [m for q, r in pairs for m in (q[0], r[0])]
tap.is_({m["dtype"] for m in msgs}, {1}, "Dnstap.type is MESSAGE")
tap.is_({m["identity"] for m in msgs}, {b"tap-node"}, "identity from logging.dnstap.identity")
tap.is_({m["version"] for m in msgs}, {b"geocast test"}, "version from server.version")
tap.is_([m["protocol"] for m in ours], [1, 1, 1, 1, 2, 2], "socket protocol UDP, UDP, TCP")
tap.is_({m["family"] for m in ours}, {1}, "socket family INET")
tap.ok(all(m["qaddr"] == LO and m["raddr"] == LO for m in ours),
       "query and response addresses are 127.0.0.1")
tap.is_([m["qport"] for m in ours], [p for p, _, _, _ in sent for _ in range(2)],
        "query port is the client's port")
tap.is_({m["rport"] for m in ours}, {srv.port}, "response port is the server's port")
now = time.time()
tap.ok(all(abs(m["qsec"] - now) < 120 and m["qnsec"] < 10**9 for m in ours) and
       all(m["rsec"] is not None and (m["rsec"], m["rnsec"]) >= (m["qsec"], m["qnsec"])
           for m in ours[1::2]), "query and response times are sane and ordered")
tap.ok(all(m["query"] is None for m in ours[1::2]) and all(m["response"] is None for m in ours[0::2]),
       "each message carries only its own DNS message")
tap.ok(all((m["qsec"], m["qnsec"]) == (n["qsec"], n["qnsec"]) for m, n in zip(ours[0::2], ours[1::2])),
       "a query and its response carry the same query time")
ex = [m["extra"] for m in ours[1::2]]
tap.is_(ex[0], "loc=- zone=example.com. scope=0", "extra: a static answer from loopback")
tap.is_(ex[1], "loc=JP/JP-13/Tokyo zone=example.com. route=geo.example.com/A answer=192.0.2.10 "
        "boundary=Japan ecs=1.0.0.0/24 scope=%d" % dns.message.from_wire(sent[1][2]).options[0].scopelen,
        "extra: location, route, answer, boundary, ECS source and scope")
tap.is_(ex[2], "loc=- zone=example.com. route=geo.example.com/A answer=192.0.2.12 boundary=- scope=0",
        "extra: the fallback answer for a client with no location")
tap.ok(all(m["extra"] == "" for m in msgs if m["type"] == 1),
       "with both messages, the decision is carried once: in the response, not the query")

kd = lib.run_cmd(["kdig", "-G", out]) if shutil.which("kdig") else None
if kd is None:
    tap.skip("kdig not installed")
else:
    rc, kout, kerr = kd[0], kd[1], kd[2]
    tap.ok(rc == 0 and "geo.example.com." in kout and "192.0.2.10" in kout and "(TCP)" in kout,
           "kdig -G decodes the file (an independent reader)")

with open(qlog) as f:
    lines = f.read().splitlines()
tap.ok(len(lines) >= 3, "text log: one line per query (%d)" % len(lines))
last = lines[-3:]
tap.like(last[0], "127.0.0.1@%d udp www.example.com. A NOERROR loc=- zone=example.com. scope=0"
         % sent[0][0], "text log: client, transport, qname, qtype, rcode, decision")
tap.like(last[1], "udp geo.example.com. A NOERROR loc=JP/JP-13/Tokyo", "text log: location")
tap.like(last[1], "answer=192.0.2.10 boundary=Japan ecs=1.0.0.0/24", "text log: decision")
tap.like(last[2], "tcp geo.example.com. A NOERROR", "text log: TCP")

def stop_capture(p):
    """Stop fstrm_capture (SIGINT: it closes its file), killing it if it hangs."""
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=5 * lib.SLOW)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


# ---- 2. dnstap to a Unix socket read by fstrm_capture; queries only ------------------------
if shutil.which("fstrm_capture") is None:
    tap.skip("fstrm_capture (fstrm-bin) not installed", 4)
else:
    sock = os.path.join(WORK, "tap.sock")
    cap_out = os.path.join(WORK, "captured.dnstap")
    cap = lib.spawn(["fstrm_capture", "-t", CONTENT_TYPE.decode(), "-u", sock, "-w", cap_out],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5 * lib.SLOW
    while not os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.02)
    srv = lib.start_geocast(config=config("  dnstap: { socket: %s, responses: false }" % sock),
                            zones={"example.com": ZONE})
    try:
        sent = traffic(srv)
        time.sleep(0.3 * lib.SLOW)
        srv.stop_and_check()
    finally:
        srv.stop(timeout=2)
    time.sleep(0.3 * lib.SLOW)
    stop_capture(cap)
    try:
        ctypes, msgs = read_dnstap(cap_out)
    except (OSError, ValueError) as e:
        ctypes, msgs = None, []
        tap.diag("cannot read %s: %s" % (cap_out, e))
    tap.is_(ctypes, [CONTENT_TYPE], "socket: fstrm_capture accepted the stream")
    tap.is_({m["type"] for m in msgs}, {1}, "responses: false: only AUTH_QUERY messages")
    got = [m["query"] for m in msgs]
    tap.ok(all(got.count(w) == 1 for _, w, _, _ in sent),
           "socket: the three queries, byte for byte")
    geo = [m["extra"] for m in msgs if m["query"] == sent[1][1]]
    tap.ok(len(geo) == 1 and geo[0].startswith("loc=JP/JP-13/Tokyo zone=example.com. route=geo.example.com/A "
                                               "answer=192.0.2.10 boundary=Japan ecs=1.0.0.0/24 scope="),
           "responses: false: the query carries the decision (%r)" % geo)

# ---- 3. no collector on the socket: queries are answered, messages dropped and counted --
GEOCASTCTL = os.path.join(lib.ROOT, lib.BUILD, "bin", "geocastctl") if not os.path.isabs(lib.BUILD) \
    else os.path.join(lib.BUILD, "bin", "geocastctl")
ctl = os.path.join(WORK, "ctl.sock")
http_port = lib.free_port()
srv = lib.start_geocast(config=config("  dnstap: { socket: %s, queue: 4 }" % os.path.join(WORK, "none.sock"))
                        .replace("zones:", 'control: { socket: %s, http: "127.0.0.1@%d" }\nzones:'
                                 % (ctl, http_port), 1),
                        zones={"example.com": ZONE})
try:
    answered = sum(send_from(srv.port, lib.make_query("www.example.com", "A"))[2] != b""
                   for _ in range(20))
    # The writer thread takes the frames and, with no collector, throws them away and
    # counts them: poll until it has caught up.
    deadline = time.monotonic() + 3 * lib.SLOW
    while True:
        rc, out, _ = lib.run_cmd([GEOCASTCTL, "-s", ctl, "-j", "stats"])
        st = json.loads(out) if rc == 0 else {}
        if st.get("dnstap_discarded", 0) >= st.get("dnstap_sent", 1) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    tap.is_(answered, 20, "no collector: every query answered")
    tap.ok(st.get("dnstap_sent", 0) == 2 * st.get("udp_queries", -1) and
           st.get("dnstap_dropped", -1) == 0 and
           st.get("dnstap_discarded", 0) == st.get("dnstap_sent", -1),
           "no collector: messages are thrown away by the writer and counted (%r)" % st)
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http_port, timeout=5) as r:
            out = r.read().decode()
    except OSError as e:
        out = "error: %s" % e
    tap.like(out, "\ngeocast_dnstap_discarded_total %d\n" % st.get("dnstap_sent", -1),
             "no collector: geocast_dnstap_discarded_total in /metrics")
    t0 = time.monotonic()
    srv.stop_and_check()
    tap.ok(time.monotonic() - t0 < 5 * lib.SLOW, "no collector: stops promptly")
finally:
    srv.stop(timeout=2)

# ---- 4. a reload that changes logging: kept as started, with a warning -------------------
qlog2 = os.path.join(WORK, "query2.log")
srv = lib.start_geocast(config=config("  query_log: %s" % qlog), zones={"example.com": ZONE})
jp = lib.make_query("geo.example.com", "A", options=[dns.edns.ECSOption("1.0.0.0", 24)])
try:
    send_from(srv.port, jp)     # its decision text is now cached by the I/O thread
    with open(srv.conf_path) as f:
        text = f.read()
    with open(srv.conf_path, "w") as f:
        # The boundary renamed too: the reloaded routes must show in the decision text.
        f.write(text.replace(qlog, qlog2).replace("Japan", "Nippon"))
    os.kill(srv.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5 * lib.SLOW
    while "logging changed" not in srv.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    tap.like(srv.stderr(), "logging changed: restart geocastd to apply",
             "reload: a logging change is reported as needing a restart")
    # The warning comes before the new data is published: wait until an answer shows
    # it (each line is written before its reply leaves).
    while time.monotonic() < deadline:
        send_from(srv.port, jp)
        if "boundary=Nippon" in open(qlog).read().splitlines()[-1]:
            break
        time.sleep(0.01)
    n0 = len(open(qlog).read().splitlines())
    for _ in range(3):  # whichever I/O thread gets it
        send_from(srv.port, jp)
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)
lines = open(qlog).read().splitlines()
tap.ok(len(lines) == n0 + 3 and not os.path.exists(qlog2),
       "reload: the query log keeps going to the file opened at start")
tap.ok(any("boundary=Japan" in ln for ln in lines[:n0]) and
       all("answer=192.0.2.10 boundary=Nippon" in ln for ln in lines[n0:]),
       "reload: the decision text follows the reloaded routes (no stale cached text)") or \
    tap.diag("\n".join(lines))

# ---- 4b. many frames through the smallest ring (it wraps), and a late collector --------
# queue: 2 gives the smallest ring (512 KiB); 4,000 queries of varied length write
# ~1.5 MB of frames into it, so frames are split at its end several times: each must
# come out whole.
wrap_file = os.path.join(WORK, "wrap.dnstap")
srv = lib.start_geocast(config=config("  dnstap: { file: %s, queue: 2 }" % wrap_file),
                        zones={"example.com": ZONE})
N_WRAP = 4000
sent_wire = []
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    for i in range(N_WRAP):
        q = lib.make_query("%s.example.com" % ("x" * (1 + i % 60)), "A")
        q.id = i & 0xFFFF
        w = q.to_wire()
        s.sendto(w, ("127.0.0.1", srv.port))
        try:
            s.recv(65535)
            sent_wire.append(w)
        except socket.timeout:
            pass
    s.close()
    # While geocastd runs, the writer thread catches up by itself (within its sleep of
    # at most 100 ms): every message is in the file before it stops.
    deadline, n_live = time.monotonic() + 3 * lib.SLOW, 0
    while time.monotonic() < deadline:
        try:
            with open(wrap_file, "rb") as f:
                n_live = len(read_frames(f.read())[1])
        except (OSError, ValueError, struct.error):
            n_live = 0
        if n_live >= 2 * len(sent_wire):
            break
        time.sleep(0.05)
    tap.ok(n_live >= 2 * len(sent_wire),
           "small ring: the file holds every message while geocastd still runs (%d)" % n_live)
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)
try:
    ctypes, msgs = read_dnstap(wrap_file)
except (OSError, ValueError) as e:
    ctypes, msgs = None, []
    tap.diag("cannot read %s: %s" % (wrap_file, e))
queries = [m["query"] for m in msgs if m["type"] == 1]
# Two workers, two rings: each ring keeps its own order, not the order across them.
rest = sorted(queries)
for w in sent_wire:
    if w in rest:
        rest.remove(w)
tap.ok(len(sent_wire) == N_WRAP and len(queries) - len(rest) == N_WRAP and len(rest) <= 50,
       "small ring: every one of the %d queries read back byte for byte (%d of %d messages "
       "left over: readiness probes)" % (len(sent_wire), len(rest), len(msgs)))
tap.is_(len([m for m in msgs if m["type"] == 2]), len(queries),
        "small ring: a response for every query")

if shutil.which("fstrm_capture") is None:
    tap.skip("fstrm_capture (fstrm-bin) not installed", 3)
else:
    late_sock = os.path.join(WORK, "late.sock")
    late_out = os.path.join(WORK, "late.dnstap")
    back_out = os.path.join(WORK, "back.dnstap")

    srv = lib.start_geocast(config=config("  dnstap: { socket: %s, responses: false }" % late_sock),
                            zones={"example.com": ZONE})
    cap = None
    try:
        early = [send_from(srv.port, lib.make_query("early%d.example.com" % i, "A"))[1]
                 for i in range(3)]
        cap = lib.spawn(["fstrm_capture", "-t", CONTENT_TYPE.decode(), "-u", late_sock, "-w",
                         late_out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2.0 * lib.SLOW)  # geocastd retries the collector every second
        late = [send_from(srv.port, lib.make_query("late%d.example.com" % i, "A"))[1]
                for i in range(3)]
        # The collector goes away, then another one comes back on the same path.
        time.sleep(0.3 * lib.SLOW)
        stop_capture(cap)
        cap = None
        for i in range(3):
            send_from(srv.port, lib.make_query("gone%d.example.com" % i, "A"))
            time.sleep(0.05)
        if os.path.exists(late_sock):
            os.unlink(late_sock)
        cap = lib.spawn(["fstrm_capture", "-t", CONTENT_TYPE.decode(), "-u", late_sock, "-w",
                         back_out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2.0 * lib.SLOW)
        back = [send_from(srv.port, lib.make_query("back%d.example.com" % i, "A"))[1]
                for i in range(3)]
        srv.stop_and_check()
    finally:
        srv.stop(timeout=2)
        if cap:
            time.sleep(0.3 * lib.SLOW)
            stop_capture(cap)
    try:
        ctypes, msgs = read_dnstap(late_out)
    except (OSError, ValueError) as e:
        ctypes, msgs = None, []
        tap.diag("cannot read %s: %s" % (late_out, e))
    got = [m["query"] for m in msgs]
    tap.ok(all(w in got for w in late),
           "late collector: geocastd connects to it and sends what comes next")
    tap.ok(not any(w in got for w in early),
           "late collector: what came before it was discarded, not held back")
    try:
        ctypes, msgs = read_dnstap(back_out)
    except (OSError, ValueError) as e:
        ctypes, msgs = None, []
        tap.diag("cannot read %s: %s" % (back_out, e))
    got = [m["query"] for m in msgs]
    tap.ok(all(w in got for w in back) and ctypes == [CONTENT_TYPE],
           "a collector that went away and came back gets a new stream (%d messages)" % len(msgs))

# ---- 4b. IPv6 clients: location (through the thread's cache) and the ECS address text ------
out6 = os.path.join(WORK, "out6.dnstap")
srv = lib.start_geocast(config=config("  dnstap: { file: %s, queries: false }" % out6),
                        zones={"example.com": ZONE})
six = [("2a00:1001::", 48), ("2a00:1001::", 48), ("2a00:1000:0:1::", 64), ("2a00:1001:0:ab00::", 56)]
try:
    sent6 = [send_from(srv.port, lib.make_query("geo.example.com", "A",
                                                options=[dns.edns.ECSOption(a, n)]))
             for a, n in six]
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)
_, msgs6 = read_dnstap(out6)
ex6 = []
for _, _, data in sent6:
    m = [x for x in msgs6 if x["response"] == data]
    ex6.append(m[0]["extra"] if m else None)
scopes = [dns.message.from_wire(d).options[0].scopelen for _, _, d in sent6]
want6 = ["loc=JP/JP-27/Osaka zone=example.com. route=geo.example.com/A answer=192.0.2.10 "
         "boundary=Japan ecs=2a00:1001::/48 scope=%d" % scopes[0]] * 2 + [
         "loc=DE/DE-BE/Berlin zone=example.com. route=geo.example.com/A answer=192.0.2.12 "
         "boundary=- ecs=2a00:1000:0:1::/64 scope=%d" % scopes[2],
         "loc=JP/JP-27/Osaka zone=example.com. route=geo.example.com/A answer=192.0.2.10 "
         "boundary=Japan ecs=2a00:1001:0:ab00::/56 scope=%d" % scopes[3]]
tap.is_(ex6, want6, "IPv6 ECS: location, answer and the address as text, the same when cached")

# ---- 4c. a full disk: answers go on, lost messages are counted, logging resumes ----------
# The dnstap file on a 1 MiB tmpfs, 612 KiB of it taken by a filler file: the log fills the
# rest, writes fail (ENOSPC), the file is closed and reopened every second; frames staged
# or queued meanwhile are thrown away and counted. Then the filler goes, and the writer
# appends a new stream (START ... STOP) to the file. Every message sent must be either in
# the file, whole, or counted as discarded.
small = os.path.join(WORK, "small")
os.makedirs(small, exist_ok=True)
mounted = os.geteuid() == 0 and subprocess.run(
    ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
if not mounted:
    tap.skip("needs root to mount a small tmpfs", 6)
else:
    try:
        filler = os.path.join(small, "filler")
        with open(filler, "wb") as f:
            # not a multiple of the direct writes' size: the write that meets the end of
            # the room is cut short inside what is staged, not at its start
            f.write(b"\0" * (612 * 1024))
        full_file = os.path.join(small, "full.dnstap")
        ctl_full = os.path.join(WORK, "ctl-full.sock")
        srv = lib.start_geocast(config=config("  dnstap: { file: %s }" % full_file)
                                .replace("zones:", "control: { socket: %s }\nzones:" % ctl_full, 1),
                                zones={"example.com": ZONE})
        direct = False
        st = {}
        try:
            fdir = "/proc/%d/fd" % srv.proc.pid
            for fd in os.listdir(fdir):
                if os.readlink(os.path.join(fdir, fd)) == full_file:
                    with open("/proc/%d/fdinfo/%s" % (srv.proc.pid, fd)) as f:
                        flags = int(f.read().split("flags:")[1].split()[0], 8)
                    direct |= bool(flags & os.O_DIRECT)

            def burst(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(3)
                got = 0
                for i in range(n):
                    q = lib.make_query("%s.example.com" % ("y" * (1 + i % 50)), "A")
                    s.sendto(q.to_wire(), ("127.0.0.1", srv.port))
                    try:
                        got += bool(s.recv(65535))
                    except socket.timeout:
                        pass
                s.close()
                return got

            N_FULL = 5000  # ~1.5 MB of frames for 0.4 MB of room
            tap.is_(burst(N_FULL), N_FULL, "full disk: every query answered while the log cannot be written")
            deadline = time.monotonic() + 3 * lib.SLOW
            while time.monotonic() < deadline:
                rc, out_, _ = lib.run_cmd([GEOCASTCTL, "-s", ctl_full, "-j", "stats"])
                st = json.loads(out_) if rc == 0 else {}
                if st.get("dnstap_discarded", 0) > 0:
                    break
                time.sleep(0.1)
            tap.ok(st.get("dnstap_discarded", 0) > 0,
                   "full disk: the messages that could not be written are counted (%d of %d)"
                   % (st.get("dnstap_discarded", 0), st.get("dnstap_sent", 0)))
            # and at full speed (bench/dnsload, bounded by count and time): the writer is
            # busy, so frames pile up in its staging buffer between writes, not only in
            # the rings
            dnsload = os.path.join(lib.ROOT if not os.path.isabs(lib.BUILD) else "", lib.BUILD,
                                   "bench", "dnsload")
            if os.access(dnsload, os.X_OK):
                rc, out_, err_ = lib.run_cmd([dnsload, "-s", "127.0.0.1", "-p", str(srv.port),
                                              "-N", "200000", "-d", "3", "-w", "64",
                                              "-n", "www.example.com", "-t", "A", "-j"], timeout=30)
                res = json.loads(out_) if rc == 0 else {}
                tap.ok(res.get("answered", 0) > 0 and res.get("lost", 1) == 0,
                       "full disk: a full-speed burst is answered too (%s q/s, %s lost)"
                       % (res.get("qps"), res.get("lost")))
            else:
                tap.skip("bench/dnsload not built")
            os.unlink(filler)
            time.sleep(1.5)  # the writer retries the file every second
            N_AFTER = 300
            burst(N_AFTER)
            deadline, n2 = time.monotonic() + 5 * lib.SLOW, 0
            while time.monotonic() < deadline:
                with open(full_file, "rb") as f:
                    data = f.read()
                start_len = 8 + struct.unpack_from("!I", data, 4)[0]
                i2 = data.rfind(data[:start_len], 1)
                n2 = 0
                if i2 > 0:
                    pos = i2 + start_len
                    while pos + 4 <= len(data):
                        (n,) = struct.unpack_from("!I", data, pos)
                        if n == 0 or pos + 4 + n > len(data):
                            break
                        pos += 4 + n
                        n2 += 1
                if n2 >= 2 * N_AFTER:
                    break
                time.sleep(0.1)
            tap.ok(n2 >= 2 * N_AFTER,
                   "space back: a new stream is appended and takes the new messages (%d)" % n2)
            rc, out_, _ = lib.run_cmd([GEOCASTCTL, "-s", ctl_full, "-j", "stats"])
            st = json.loads(out_) if rc == 0 else {}
            srv.stop_and_check()
        finally:
            srv.stop(timeout=2)
        with open(full_file, "rb") as f:
            data = f.read()
        start = data[:8 + struct.unpack_from("!I", data, 4)[0]]
        # the streams: each starts with the same START frame; all but the last are cut where
        # a write failed, so only their whole frames count
        bounds = [0]
        while True:
            j = data.find(start, bounds[-1] + 1)
            if j < 0:
                break
            bounds.append(j)
        bounds.append(len(data))
        whole = 0
        for a, b in zip(bounds, bounds[1:]):
            pos = a + len(start)
            while pos + 4 <= b:
                (n,) = struct.unpack_from("!I", data, pos)
                if n == 0 or pos + 4 + n > b:
                    break
                pos += 4 + n
                whole += 1
        try:
            read_frames(data[bounds[-2]:])
            last_ok = True
        except (ValueError, struct.error):
            last_ok = False
        tap.ok(last_ok and data.endswith(b"\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x03"),
               "space back: the last stream reads whole, START to STOP (%d streams in the file)" % (len(bounds) - 1))
        accounted = whole + st.get("dnstap_discarded", -1) + st.get("dnstap_dropped", 0)
        if direct:
            tap.is_(accounted, st.get("dnstap_sent", -2),
                    "full disk: every message is in the file or counted as discarded, exactly "
                    "(%d in the file, written with O_DIRECT)" % whole)
        else:
            tap.ok(accounted >= st.get("dnstap_sent", -2),
                   "full disk: every message is in the file or counted as discarded "
                   "(%d in the file; no O_DIRECT here, so a failed write may count a few twice)"
                   % whole)
    finally:
        subprocess.run(["umount", "-l", small], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

# ---- 4d. a file system without O_DIRECT (ramfs): the file is written the ordinary way ----
rdir = os.path.join(WORK, "ramfs")
os.makedirs(rdir, exist_ok=True)
if os.geteuid() != 0 or subprocess.run(["mount", "-t", "ramfs", "ramfs", rdir],
                                       stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL).returncode != 0:
    tap.skip("needs root to mount a ramfs", 2)
else:
    try:
        rfile = os.path.join(rdir, "out.dnstap")
        srv = lib.start_geocast(config=config("  dnstap: { file: %s }" % rfile),
                                zones={"example.com": ZONE})
        flags = []
        try:
            fdir = "/proc/%d/fd" % srv.proc.pid
            for fd in os.listdir(fdir):
                if os.readlink(os.path.join(fdir, fd)) == rfile:
                    with open("/proc/%d/fdinfo/%s" % (srv.proc.pid, fd)) as f:
                        flags.append(int(f.read().split("flags:")[1].split()[0], 8))
            sent_r = traffic(srv)
            srv.stop_and_check()
        finally:
            srv.stop(timeout=2)
        try:
            _, msgs_r = read_dnstap(rfile)
        except (OSError, ValueError, struct.error):
            msgs_r = []
        tap.ok(len(flags) == 1 and not flags[0] & os.O_DIRECT,
               "ramfs: O_DIRECT refused, one ordinary descriptor (flags %s)"
               % [oct(f) for f in flags])
        tap.ok(len(msgs_r) >= 2 * len(sent_r) and
               sum(m["type"] == 1 and m["query"] == w for m in msgs_r for _, w, _, _ in sent_r)
               == len(sent_r),
               "ramfs: every query and response in the file (%d messages)" % len(msgs_r))
    finally:
        subprocess.run(["umount", "-l", rdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

# ---- 5. config errors --------------------------------------------------------------------
for logging, want, name in [
        ("  dnstap: { queries: true }", "needs file or socket", "dnstap without an output"),
        ("  dnstap: { file: a, socket: b }", "not both", "dnstap with two outputs"),
        ("  dnstap: { file: x, queue: 1000 }", "power of 2", "a queue size that is not a power of 2"),
        ("  dnstap: { file: x, queue: 32768 }", "16384", "a queue bigger than 16384"),
        ("  dnstap: { file: x, queries: false, responses: false }", "both false", "nothing to log"),
        ("  dnstap: { file: x, bogus: 1 }", "unknown key", "an unknown key"),
]:
    rc, err, _, _ = lib.geocast_check(config(logging), {"example.com": ZONE})
    tap.ok(rc == 1 and want in err and "logging.dnstap" in err,
           "--check rejects %s, naming the key (%s)" % (name, err.strip()[:120]))
bad = os.path.join(WORK, "no-such-dir", "out.dnstap")
try:
    srv = lib.start_geocast(config=config("  dnstap: { file: %s }" % bad), zones={"example.com": ZONE})
    srv.stop(timeout=2)
    tap.ok(False, "an unwritable dnstap file stops the start")
except RuntimeError as e:
    tap.ok("cannot open" in str(e) and "logging.dnstap.file" in str(e),
           "an unwritable dnstap file: a clear error, no start")
tap.done()

#!/usr/bin/python3
"""The control socket and geocastctl's online commands: status, reload (ok and failed, the
old data serving), stats deltas, explain and lookup on the running snapshot matching the
offline tool, clear errors without a daemon, one daemon per socket, stale sockets replaced,
hostile requests, slow clients, and the socket removed on SIGTERM."""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
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

ZONE = """$ORIGIN example.com.
$TTL 60
@ SOA ns1 hm {serial} 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
www A {addr}
"""

# An IP boundary needs no GeoIP data; the geo part runs when the test MMDB can be built.
CONFIG = """server: {{ listen: ["127.0.0.1@{{port}}"], workers: 2, identity: node-a }}
control: {{ socket: "{sock}" }}
{geoip}boundaries:
  office: [10.1.0.0/16, "2001:db8:1::/48"]
{geob}zones:
  example.com:
    file: "{{zone:example.com}}"
    routes:
      geo:
        A:
          ttl: 30
          answers:
            - {{ value: 192.0.2.10, boundary: office }}
{geoa}            - {{ value: 192.0.2.19 }}
"""


def zone(serial, addr):
    return ZONE.format(serial=serial, addr=addr)


def ctl(*args, timeout=30):
    """Run geocastctl; returns (exit status, stdout, stderr)."""
    return lib.run_cmd([GEOCASTCTL] + list(args), timeout=timeout)


def www(srv):
    r = srv.query(lib.make_query("www.example.com", "A"), timeout=1.0)
    if r is None or r.rcode() != dns.rcode.NOERROR or not r.answer:
        return None
    return r.answer[0][0].to_text()


def field(out, name):
    m = re.search(r"^%s\s+(\S+)" % re.escape(name), out, re.M)
    return m.group(1) if m else None


def raw_session(path, data, timeout=3.0, shut=False):
    """Send raw bytes on one control connection; return everything read until EOF/timeout."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout * lib.SLOW)
    out = b""
    try:
        s.connect(path)
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, OSError):
        pass
    finally:
        s.close()
    return out.decode("latin-1")


def responses(text):
    """Split a raw control-protocol stream into (status, body) pairs."""
    out = []
    cur = None
    for line in text.split("\n"):
        if cur is None:
            if line == "":
                continue
            cur = [line, []]
        elif line == ".":
            out.append((cur[0], "\n".join(cur[1])))
            cur = None
        else:
            cur[1].append(line[1:] if line.startswith(".") else line)
    return out


def gen_mmdb():
    d = lib.tmpdir("geocast-mmdb-")
    gen = os.path.join(lib.ROOT, "tests", "data", "geo", "gen-mmdb.pl")
    rc, out, err = lib.run_cmd(["perl", gen, d], timeout=120)
    p = os.path.join(d, "geo-city.mmdb")
    return p if rc == 0 and os.path.isfile(p) else None


def start_daemon(config_text, zones, extra_args=()):
    """Like lib.start_geocast, with extra daemon arguments."""
    d = lib.tmpdir("geocast-")
    port = lib.free_port()
    paths = lib.write_zones(d, zones)
    conf = config_text.replace("{port}", str(port)).replace("{dir}", d)
    for o, p in paths.items():
        conf = conf.replace("{zone:%s}" % o.strip("."), p)
    conf_path = os.path.join(d, "geocast.yaml")
    with open(conf_path, "w") as f:
        f.write(conf)
    err_path = os.path.join(d, "geocastd.stderr")
    errf = open(err_path, "w")
    proc = lib.spawn(lib.TEST_RUNNER + [lib.GEOCASTD, "-c", conf_path] + list(extra_args),
                     stderr=errf, stdout=errf, cwd=d)
    errf.close()
    srv = lib.Server("geocastd", proc, port, d, err_path, conf_path, zones)
    return srv


sockdir = lib.tmpdir("geocast-ctl-")
SOCK = os.path.join(sockdir, "run", "geocast", "control.sock")   # run/geocast/ does not exist yet
mmdb = gen_mmdb()
if mmdb:
    config = CONFIG.format(sock=SOCK, geoip='geoip: {{ mmdb: "%s" }}\n' % mmdb,
                           geob="  USA: [US]\n  Europe: [EU]\n",
                           geoa="            - {{ value: 192.0.2.11, boundary: USA }}\n"
                                "            - {{ value: 192.0.2.12, boundary: Europe }}\n")
else:
    config = CONFIG.format(sock=SOCK, geoip="", geob="", geoa="")
config = config.replace("{{", "{").replace("}}", "}")

srv = lib.start_geocast(config=config, zones={"example.com": zone(1, "192.0.2.1")})
zpath = os.path.join(srv.dir, "example.com.zone")
try:
    # ---- the socket ------------------------------------------------------------------
    st = os.stat(SOCK) if os.path.exists(SOCK) else None
    tap.ok(st is not None and stat.S_ISSOCK(st.st_mode), "control socket created (directory made)")
    tap.is_(st and oct(st.st_mode & 0o777), oct(0o660), "control socket has mode 0660")

    # ---- status -----------------------------------------------------------------------
    rc, out, err = ctl("-s", SOCK, "status")
    tap.is_(rc, 0, "status exits 0")
    tap.is_(field(out, "generation"), "1", "status: generation 1")
    tap.is_(field(out, "pid"), str(srv.proc.pid), "status: pid of the daemon")
    tap.is_(field(out, "zones"), "1", "status: 1 zone")
    tap.is_(field(out, "routes"), "1", "status: 1 route")
    tap.is_(field(out, "last_reload"), "none", "status: no reload yet")
    rc, out, err = ctl("-s", SOCK, "-j", "status")
    try:
        js = json.loads(out)
    except ValueError:
        js = {}
    tap.is_((rc, js.get("generation"), js.get("version")), (0, 1, "0.1.0"), "status json")

    # ---- explain and lookup: the running snapshot matches the offline tool ------------
    clients = ["10.1.2.3", "10.9.9.9", "2001:db8:1::5", "192.0.2.0/24"]
    if mmdb:
        clients += ["1.2.3.4", "1.2.3.200", "5.8.0.1", "2a00:1000:1::1/48"]
    for c in clients:
        for js_flag in ([], ["-j"]):
            r1 = ctl("-s", SOCK, *js_flag, "explain", "geo.example.com", "A", c)
            r2 = ctl("-c", srv.conf_path, *js_flag, "explain", "geo.example.com", "A", c)
            ok = r1[0] == 0 and r2[0] == 0 and r1[1] == r2[1] and r1[1].strip() != ""
            tap.ok(ok, "explain %s%s: online output equals offline" % (c, " (json)" if js_flag else ""))
            if not ok:
                tap.diag("online  rc=%r\n%s%s\noffline rc=%r\n%s%s" % (r1[0], r1[1], r1[2],
                                                                     r2[0], r2[1], r2[2]))
    r1 = ctl("-s", SOCK, "explain", "www.example.com", "A", "10.1.2.3")
    r2 = ctl("-c", srv.conf_path, "explain", "www.example.com", "A", "10.1.2.3")
    tap.is_((r1[0], r2[0]), (1, 1), "explain of a name that is not routed: exit 1 online and offline")
    tap.like(r1[2], "is not a routed name", "explain of a name that is not routed: the reason")
    r1 = ctl("-s", SOCK, "explain", "geo.example.com", "A", "not-an-address")
    tap.ok(r1[0] != 0 and "bad client" in r1[2], "explain with a bad client: an error")
    if mmdb:
        for a in ("1.2.3.4", "2a00:1000:1::1", "9.9.9.9"):
            for js_flag in ([], ["-j"]):
                r1 = ctl("-s", SOCK, *js_flag, "lookup", a)
                r2 = ctl("-c", srv.conf_path, *js_flag, "lookup", a)
                tap.ok(r1[0] == 0 and r1[1] == r2[1] and r1[1],
                       "lookup %s%s: online output equals offline" % (a, " (json)" if js_flag else ""))
        # offline lookup reads the GeoIP sources only: a zone file that is missing stops
        # `check`, not `lookup`
        broken = os.path.join(srv.dir, "zone-missing.yaml")
        with open(srv.conf_path) as f:
            text = f.read()
        tap.ok(zpath in text, "the config names the zone file")
        with open(broken, "w") as f:
            f.write(text.replace(zpath, zpath + ".missing"))
        rc, out, err = ctl("-c", broken, "check")
        tap.ok(rc == 1 and "missing" in err, "check with a missing zone file fails: %s" % err.strip())
        r1 = ctl("-c", srv.conf_path, "lookup", "2a00:1000:1::1")
        r2 = ctl("-c", broken, "lookup", "2a00:1000:1::1")
        tap.ok(r2[0] == 0 and r2[1] == r1[1] and r1[1],
               "lookup with a missing zone file: the same output (exit %d)" % r2[0])
    else:
        tap.skip("no test MMDB (perl MaxMind::DB::Writer missing)", 9)
        r1 = ctl("-s", SOCK, "lookup", "1.2.3.4")
        tap.ok(r1[0] == 1 and "no geoip" in r1[2], "lookup without GeoIP data: an error")

    # ---- reload ----------------------------------------------------------------------
    tap.is_(www(srv), "192.0.2.1", "initial answer")
    with open(zpath, "w") as f:
        f.write(zone(2, "192.0.2.2"))
    rc, out, err = ctl("-s", SOCK, "reload", timeout=60)
    tap.is_(rc, 0, "reload exits 0")
    tap.like(out, "generation 2", "reload reports the new generation")
    tap.is_(www(srv), "192.0.2.2", "reload: the new answer is served")
    rc, out, err = ctl("-s", SOCK, "status")
    tap.is_(field(out, "generation"), "2", "status: generation 2 after reload")
    tap.like(out, "ok at", "status: last reload ok")

    # A broken zone: reload exits 1 with file:line; the old answer keeps coming.
    with open(zpath, "w") as f:
        f.write(zone(3, "192.0.2.3") + "bad A 999.1.1.1\n")
    rc, out, err = ctl("-s", SOCK, "reload", timeout=60)
    tap.is_(rc, 1, "broken zone: reload exits 1")
    tap.like(out + err, "example.com.zone:7:", "broken zone: the error has file:line")
    tap.like(err, "reload failed", "broken zone: says the reload failed")
    tap.is_(www(srv), "192.0.2.2", "broken zone: the previous answer is still served")
    rc, out, err = ctl("-s", SOCK, "status")
    tap.is_(field(out, "generation"), "2", "broken zone: still generation 2")
    tap.like(out, "example.com.zone:7:", "status: shows the last reload's error")
    tap.like(srv.stderr(), "reload failed (control socket)", "broken zone: failure logged")

    # A broken config: same.
    good_conf = open(srv.conf_path).read()
    with open(zpath, "w") as f:
        f.write(zone(4, "192.0.2.4"))
    with open(srv.conf_path, "w") as f:
        f.write(good_conf + "\nbogus_key: 1\n")
    rc, out, err = ctl("-s", SOCK, "reload", timeout=60)
    tap.ok(rc == 1 and "bogus_key: unknown key" in err, "broken config: reload exits 1 naming the key")
    tap.is_(www(srv), "192.0.2.2", "broken config: the previous answer is still served")
    with open(srv.conf_path, "w") as f:
        f.write(good_conf)
    rc, out, err = ctl("-s", SOCK, "reload", timeout=60)
    tap.ok(rc == 0 and "generation 3" in out, "fixed: reload ok, generation 3")
    tap.is_(www(srv), "192.0.2.4", "fixed: the pending zone change is served")

    # SIGHUP still reloads, through the same path.
    with open(zpath, "w") as f:
        f.write(zone(5, "192.0.2.5"))
    os.kill(srv.proc.pid, signal.SIGHUP)
    got = None
    deadline = time.monotonic() + 5 * lib.SLOW
    while time.monotonic() < deadline:
        got = www(srv)
        if got == "192.0.2.5":
            break
        time.sleep(0.05)
    tap.is_(got, "192.0.2.5", "SIGHUP: the new answer is served")
    deadline = time.monotonic() + 5 * lib.SLOW
    while True:
        rc, out, err = ctl("-s", SOCK, "status")
        if field(out, "generation") == "4" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    tap.ok(field(out, "generation") == "4" and "(SIGHUP)" in out, "status: generation 4 by SIGHUP")
    tap.like(out, "reloads          5 (2 failed)", "status: reload counts")

    # ---- stats: exactly the queries sent are counted -----------------------------------
    def stats():
        rc_, out_, _ = ctl("-s", SOCK, "-j", "stats")
        try:
            return json.loads(out_) if rc_ == 0 else None
        except ValueError:
            return None

    s0 = stats()
    N_UDP, N_TCP, N_NX = 25, 5, 3
    answered = 0
    for _ in range(N_UDP):
        answered += www(srv) is not None
    for _ in range(N_TCP):
        r = srv.query(lib.make_query("www.example.com", "A"), tcp_=True)
        answered += r is not None
    for _ in range(N_NX):
        r = srv.query(lib.make_query("nope.example.com", "A"))
        answered += r is not None and r.rcode() == dns.rcode.NXDOMAIN
    s1 = stats()
    tap.is_(answered, N_UDP + N_TCP + N_NX, "stats: every query answered")
    if s0 and s1:
        tap.is_(s1["udp_queries"] - s0["udp_queries"], N_UDP + N_NX, "stats: UDP queries counted exactly")
        tap.is_(s1["tcp_queries"] - s0["tcp_queries"], N_TCP, "stats: TCP queries counted exactly")
        tap.is_(s1["responses"]["NOERROR"] - s0["responses"]["NOERROR"], N_UDP + N_TCP,
                "stats: NOERROR responses counted exactly")
        tap.is_(s1["responses"]["NXDOMAIN"] - s0["responses"]["NXDOMAIN"], N_NX,
                "stats: NXDOMAIN responses counted exactly")
        tap.is_(s1["tcp_conns_accepted"] - s0["tcp_conns_accepted"], N_TCP,
                "stats: TCP connections counted")
    else:
        tap.ok(False, "stats json parses")
    rc, out, err = ctl("-s", SOCK, "stats")
    tap.ok(rc == 0 and field(out, "udp_queries") is not None and field(out, "responses.REFUSED"),
           "stats text lists the counters")

    # ---- hostile requests ----------------------------------------------------------------
    got = responses(raw_session(SOCK, b"bogus\n", shut=True))
    tap.ok(len(got) == 1 and got[0][0].startswith("error unknown command"), "unknown command: error")
    got = responses(raw_session(SOCK, b"\x00\xff\x01status\n", shut=True))
    tap.ok(len(got) == 1 and got[0][0].startswith("error"), "binary garbage: error")
    got = responses(raw_session(SOCK, b"\n   \nstatus extra\nexplain a\n", shut=True))
    tap.ok(len(got) == 4 and all(g[0].startswith("error") for g in got),
           "empty lines and wrong argument counts: one error each")
    got = responses(raw_session(SOCK, b"A" * 5000, shut=True))
    tap.ok(len(got) == 1 and got[0][0].startswith("error request too long"), "huge request: error")
    got = responses(raw_session(SOCK, b"status\r\nstats\nhelp\n", shut=True))
    tap.ok(len(got) == 3 and all(g[0] == "ok" for g in got) and "generation" in got[0][1]
           and "explain NAME TYPE CLIENT" in got[2][1], "pipelined requests (CRLF too): three answers")
    # A client that sends nothing is dropped after the idle timeout (5 s).
    t0 = time.monotonic()
    rest = raw_session(SOCK, b"", timeout=15)
    took = time.monotonic() - t0
    tap.ok(rest == "" and 3 <= took < 12 * lib.SLOW, "a silent client is disconnected (%.1fs)" % took)
    # A client that leaves mid-line does not hurt either.
    raw_session(SOCK, b"stat", timeout=0.2)
    rc, out, err = ctl("-s", SOCK, "status")
    tap.ok(rc == 0 and field(out, "generation") == "4", "the control socket still serves")
    lib.alive_check(srv, label="hostile control requests")

    # ---- usage errors --------------------------------------------------------------------
    missing = os.path.join(sockdir, "nope.sock")
    rc, out, err = ctl("-s", missing, "status")
    tap.is_(rc, 1, "no daemon: exit 1")
    tap.like(err, "cannot connect to %s: No such file or directory" % missing, "no daemon: says why")
    tap.like(err, "is geocastd running?", "no daemon: the hint")
    rc, out, err = ctl("-s", missing, "reload")
    tap.is_(rc, 1, "no daemon: reload exits 1")

    # ---- one daemon per socket -----------------------------------------------------------
    other = start_daemon(config, {"example.com": zone(1, "192.0.2.1")})
    try:
        st2 = other.proc.wait(timeout=20 * lib.SLOW)
    except subprocess.TimeoutExpired:
        st2 = None
    tap.ok(st2 not in (None, 0), "a second geocastd on the same socket refuses to start")
    tap.like(other.stderr(), "another geocastd is running", "the second daemon says why")
    other.stop(timeout=2)
    rc, out, err = ctl("-s", SOCK, "status")
    tap.ok(rc == 0 and field(out, "pid") == str(srv.proc.pid), "the first daemon keeps its socket")

    # ---- SIGTERM removes the socket --------------------------------------------------------
    srv.stop_and_check()
    tap.ok(not os.path.exists(SOCK), "SIGTERM removes the socket file")

    # ---- a stale socket is replaced; --control overrides the config -------------------------
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(SOCK)
    stale.close()      # the file stays, nobody listens: what a killed daemon leaves
    alt = os.path.join(sockdir, "alt.sock")
    s2 = start_daemon(config, {"example.com": zone(1, "192.0.2.1")})
    tap.ok(s2.wait_ready("example.com"), "daemon starts over a stale socket file")
    rc, out, err = ctl("-s", SOCK, "status")
    tap.ok(rc == 0 and field(out, "pid") == str(s2.proc.pid), "the stale socket was replaced")
    s2.stop_and_check()
    s3 = start_daemon(config, {"example.com": zone(1, "192.0.2.1")}, ["--control", alt])
    tap.ok(s3.wait_ready("example.com"), "daemon with --control starts")
    rc, out, err = ctl("-s", alt, "status")
    tap.ok(rc == 0 and field(out, "pid") == str(s3.proc.pid), "--control PATH overrides control.socket")
    tap.ok(not os.path.exists(SOCK), "control.socket not used when --control is given")
    s3.stop_and_check()
finally:
    srv.stop(timeout=2)
tap.done()

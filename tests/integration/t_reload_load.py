#!/usr/bin/python3
"""Reload under steady load (issue 6, item 1): dnsload keeps a window of queries outstanding
while 20 reloads (geocastctl reload and SIGHUP, alternating) each change a zone record and a
geo-routed answer. Zero queries lost; after each reload the new answers are served, and a
checker thread never sees an older generation after a newer one. Then a broken zone, a
broken YAML file and a corrupt GeoIP file in turn: the old answers keep coming and the
failure is reported (geocastctl exit 1 with the reason, the log, the reload metrics)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

import dns.edns  # noqa: E402
import dns.rcode  # noqa: E402

lib.require_geocastd()


def build_path(*p):
    b = lib.BUILD if os.path.isabs(lib.BUILD) else os.path.join(lib.ROOT, lib.BUILD)
    return os.path.join(b, *p)


GEOCASTCTL = build_path("bin", "geocastctl")
DNSLOAD = build_path("bench", "dnsload")
GEN = os.path.join(lib.ROOT, "tests", "data", "route", "gen-route-mmdb.pl")
if not os.access(GEOCASTCTL, os.X_OK) or not os.access(DNSLOAD, os.X_OK):
    tap.skip_all("geocastctl or bench/dnsload not built")
if shutil.which("perl") is None or subprocess.run(
        ["perl", "-MMaxMind::DB::Writer::Tree", "-e", "1"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode != 0:
    tap.skip_all("perl MaxMind::DB::Writer::Tree (libmaxmind-db-writer-perl) not installed")

WORK = lib.tmpdir("geocast-reload-load-")
MMDB = os.path.join(WORK, "route.mmdb")
r = subprocess.run(["perl", GEN, MMDB], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   text=True, timeout=60)
if r.returncode != 0:
    tap.bail("gen-route-mmdb.pl failed: %s" % r.stderr)

ZONE = """$ORIGIN example.com.
$TTL 60
@ SOA ns1 hm {gen} 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
www A 10.0.0.{gen}
"""

# 3.0.0.0/16 is Frankfurt (Europe) in the generated database; 2.2.0.0/16 New York.
CONFIG = """server: {{ listen: ["127.0.0.1@{{port}}"], workers: 2 }}
control: {{ socket: "{{dir}}/control.sock", http: "127.0.0.1@{http}" }}
geoip: {{ mmdb: "{mmdb}" }}
boundaries:
  Europe: [eur]
zones:
  example.com:
    file: "{{zone:example.com}}"
    routes:
      geo:
        A:
          ttl: 30
          answers:
            - {{ value: 10.1.0.{gen}, boundary: Europe }}
            - {{ value: 10.2.0.{gen} }}
"""

HTTP_PORT = lib.free_port()


def config(gen):
    return CONFIG.format(http=HTTP_PORT, mmdb=MMDB, gen=gen)


def ctl(*args, timeout=60):
    return lib.run_cmd([GEOCASTCTL, "-s", SOCK] + list(args), timeout=timeout * lib.SLOW)


def ask(name, ecs=None):
    """First A answer (text) for name, or None (lost or not NOERROR)."""
    opts = [dns.edns.ECSOption(ecs, 24)] if ecs else None
    q = lib.make_query(name, "A", edns=0 if ecs else None, options=opts)
    r = srv.query(q, timeout=2.0 * lib.SLOW)
    if r is None or r.rcode() != dns.rcode.NOERROR or not r.answer:
        return None
    return r.answer[0][0].to_text()


def answers():
    return (ask("www.example.com"), ask("geo.example.com", "3.0.0.1"),
            ask("geo.example.com", "2.2.0.1"))


def expect(gen):
    return ("10.0.0.%d" % gen, "10.1.0.%d" % gen, "10.2.0.%d" % gen)


def metric(name):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % HTTP_PORT,
                                    timeout=10 * lib.SLOW) as f:
            text = f.read().decode()
    except OSError:
        return None
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def write(path, text):
    """Replace a file the way an operator's tooling should: write aside, rename in place."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


srv = lib.start_geocast(config=config(1), zones={"example.com": ZONE.format(gen=1)})
SOCK = os.path.join(srv.dir, "control.sock")
ZPATH = os.path.join(srv.dir, "example.com.zone")
load = None
try:
    tap.is_(answers(), expect(1), "generation 1: zone record and both routed answers")

    # Steady load: dnsload, closed loop (a small window: the daemon must keep up on a busy
    # machine), stopped with SIGINT after the reloads; it waits for the outstanding replies.
    load = subprocess.Popen([DNSLOAD, "-p", str(srv.port), "-n", "www.example.com", "-t", "A",
                             "-w", "8", "-S", "2", "-d", "110", "-N", "50000000",
                             "-T", str(int(3000 * lib.SLOW)), "-j"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # A checker thread: answers carry the generation; it must never go backwards.
    stop = threading.Event()
    seen = {"n": 0, "lost": 0, "back": 0, "bad": 0, "last": 1}

    def checker():
        while not stop.is_set():
            a = ask("geo.example.com", "3.0.0.1")
            seen["n"] += 1
            if a is None:
                seen["lost"] += 1
                continue
            m = re.fullmatch(r"10\.1\.0\.(\d+)", a)
            if not m:
                seen["bad"] += 1
                continue
            g = int(m.group(1))
            if g < seen["last"]:
                seen["back"] += 1
            seen["last"] = max(seen["last"], g)

    th = threading.Thread(target=checker)
    th.start()
    time.sleep(0.3)

    switched = 0
    for gen in range(2, 22):
        write(ZPATH, ZONE.format(gen=gen))
        write(srv.conf_path, config(gen).replace("{port}", str(srv.port))
              .replace("{dir}", srv.dir).replace("{zone:example.com}", ZPATH))
        if gen % 2 == 0:
            rc, out, err = ctl("reload")
            ok = rc == 0
            got = answers()  # geocastctl reload returns once the new data is published
        else:
            os.kill(srv.proc.pid, signal.SIGHUP)
            deadline = time.monotonic() + 10 * lib.SLOW
            got = answers()
            while got != expect(gen) and time.monotonic() < deadline:
                time.sleep(0.02)
                got = answers()
            ok = True
        if ok and got == expect(gen):
            switched += 1
        else:
            tap.diag("reload %d: rc ok=%s, answers %r" % (gen - 1, ok, got))
        time.sleep(0.1)  # let the load run between reloads
    tap.is_(switched, 20, "20 reloads: each one's zone record and routed answers went live")

    stop.set()
    th.join(timeout=30)
    load.send_signal(signal.SIGINT)
    out, err = load.communicate(timeout=60 * lib.SLOW)
    try:
        res = json.loads(out)
    except ValueError:
        res = {}
        tap.diag("dnsload: %r %r" % (out, err))
    tap.ok(res.get("sent", 0) > 1000, "dnsload kept the load up (%s queries)" % res.get("sent"))
    tap.is_(res.get("lost"), 0, "dnsload: zero lost queries across 20 reloads")
    tap.is_(res.get("answered"), res.get("sent"), "dnsload: every query sent was answered")
    tap.is_(list(res.get("rcodes", {}).keys()), ["NOERROR"], "dnsload: only NOERROR")
    # dnsload tallies the first 8 distinct addresses by name, the rest as "other".
    tap.ok(set(res.get("answers_a", {})) <= {"10.0.0.%d" % g for g in range(1, 22)}
           and res.get("answers_empty") == 0,
           "dnsload: every answer has a generation's record (%s)" % sorted(res.get("answers_a", {})))
    tap.diag("dnsload: %s queries, %.0f q/s, p99 %s us" %
             (res.get("sent"), res.get("qps", 0), res.get("lat_us", {}).get("p99")))
    tap.ok(seen["n"] > 100, "checker ran (%d routed queries)" % seen["n"])
    tap.is_((seen["lost"], seen["bad"], seen["back"]), (0, 0, 0),
            "checker: none lost, none foreign, never an older generation after a newer one")
    tap.is_(seen["last"], 21, "checker saw the last generation")
    tap.is_(len(re.findall(r"reloaded \(SIGHUP\)", srv.stderr())), 10, "10 SIGHUP reloads logged")
    tap.is_(len(re.findall(r"reloaded \(control socket\)", srv.stderr())), 10,
            "10 geocastctl reloads logged")
    tap.is_(metric("geocast_reloads_total"), 20.0, "metrics: 20 reloads")
    tap.is_(metric("geocast_reload_failures_total"), 0.0, "metrics: no failure")

    # Broken inputs in turn: each reload fails, the old answers keep coming, the error is
    # reported on every channel. Each one's inputs would otherwise change the answers.
    good_conf = open(srv.conf_path).read()
    good_mmdb = open(MMDB, "rb").read()
    cases = [
        ("broken zone", lambda: write(ZPATH, ZONE.format(gen=30) + "bad A 999.1.1.1\n"),
         "example.com.zone:7:"),
        ("broken YAML", lambda: write(srv.conf_path, good_conf.replace("10.1.0.21", "10.1.0.31")
                                      + "zones: [unclosed\n"), "geocast.yaml:"),
        ("corrupt GeoIP file", lambda: open(MMDB, "wb").write(b"\0garbage" * 1000), "route.mmdb"),
    ]
    for i, (what, breakit, where) in enumerate(cases):
        breakit()
        rc, out, err = ctl("reload")
        tap.is_(rc, 1, "%s: geocastctl reload exits 1" % what)
        tap.like(err, where, "%s: geocastctl names the file (%s)" % (what, err.strip()[:120]))
        tap.is_(answers(), expect(21), "%s: the old answers keep coming" % what)
        tap.like(srv.stderr().splitlines()[-1], "reload failed", "%s: failure logged" % what)
        tap.is_(metric("geocast_reload_failures_total"), float(i + 1),
                "%s: counted in geocast_reload_failures_total" % what)
        tap.is_(metric("geocast_last_reload_success"), 0.0, "%s: last reload marked failed" % what)
        # Repair before the next case so each failure has exactly one cause.
        write(ZPATH, ZONE.format(gen=21))
        write(srv.conf_path, good_conf)
        with open(MMDB + ".tmp", "wb") as f:
            f.write(good_mmdb)
        os.rename(MMDB + ".tmp", MMDB)
    rc, out, err = ctl("reload")
    tap.is_(rc, 0, "repaired: reload succeeds")
    tap.is_(metric("geocast_last_reload_success"), 1.0, "repaired: last reload marked ok")
    tap.is_(answers(), expect(21), "repaired: answers as before")
    srv.stop_and_check()
finally:
    if load and load.poll() is None:
        load.kill()
        load.wait(timeout=5)
    srv.stop(timeout=2)
tap.done()

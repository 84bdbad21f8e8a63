#!/usr/bin/python3
"""Prometheus metrics (control.http): the text format with HELP/TYPE lines, exact counter
deltas after known traffic (UDP, TCP, REFUSED, ECS), reload counters and snapshot gauges,
404/405/400 for other requests, and hostile HTTP clients that do not hurt the listener."""

import http.client
import os
import re
import signal
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

import dns.edns  # noqa: E402
import dns.rcode  # noqa: E402

lib.require_geocastd()

ZONE = """$ORIGIN example.com.
$TTL 60
@ SOA ns1 hm {serial} 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
www A 192.0.2.1
"""

http_port = lib.free_port()
CONFIG = """server: { listen: ["127.0.0.1@{port}"], workers: 2, identity: node-a }
control: { http: "127.0.0.1@%d" }
boundaries:
  office: [10.1.0.0/16]
zones:
  example.com:
    file: "{zone:example.com}"
    routes:
      geo:
        A:
          answers:
            - { value: 192.0.2.10, boundary: office }
            - { value: 192.0.2.11 }
""" % http_port

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def get(path="/metrics", method="GET"):
    """(status, content type, body) or (None, None, error text)."""
    c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5 * lib.SLOW)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    except (OSError, http.client.HTTPException) as e:
        return None, None, str(e)
    finally:
        c.close()


def scrape():
    """{(name, labels): value}, plus the set of (name, type) from TYPE lines and the names
    with HELP, or None when the scrape failed or a line does not parse."""
    st, ctype, body = get()
    if st != 200:
        return None
    samples, types, helps = {}, {}, set()
    for line in body.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            f = line.split()
            types[f[2]] = f[3]
        elif line:
            m = SAMPLE.match(line)
            if not m:
                tap.diag("unparsable metrics line: %r" % line)
                return None
            samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return {"samples": samples, "types": types, "helps": helps, "ctype": ctype}


def raw_http(data, timeout=3.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout * lib.SLOW)
    out = b""
    try:
        s.connect(("127.0.0.1", http_port))
        if data:
            s.sendall(data)
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


def delta(a, b, name, labels=""):
    return b["samples"].get((name, labels), 0) - a["samples"].get((name, labels), 0)


srv = lib.start_geocast(config=CONFIG, zones={"example.com": ZONE.format(serial=1)})
try:
    m0 = scrape()
    tap.ok(m0 is not None, "GET /metrics answers 200 with parsable text")
    if m0 is None:
        tap.bail("no metrics: %r" % (get(),))
    tap.like(m0["ctype"], "text/plain; version=0.0.4", "Content-Type is the Prometheus text format")
    expected = {
        "geocast_queries_total": "counter", "geocast_responses_total": "counter",
        "geocast_dropped_total": "counter", "geocast_truncated_total": "counter",
        "geocast_ecs_queries_total": "counter",
        "geocast_tcp_connections_accepted_total": "counter",
        "geocast_tcp_connections_rejected_total": "counter",
        "geocast_tcp_timeouts_total": "counter",
        "geocast_reloads_total": "counter", "geocast_reload_failures_total": "counter",
        "geocast_last_reload_success": "gauge",
        "geocast_snapshot_generation": "gauge", "geocast_snapshot_age_seconds": "gauge",
        "geocast_snapshot_loaded_timestamp_seconds": "gauge",
        "geocast_zones": "gauge", "geocast_records": "gauge", "geocast_routes": "gauge",
        "geocast_policies": "gauge", "geocast_build_info": "gauge",
        "geocast_start_time_seconds": "gauge",
    }
    missing = [n for n, t in expected.items() if m0["types"].get(n) != t or n not in m0["helps"]]
    tap.is_(missing, [], "every metric has HELP and the right TYPE")
    names = {n for n, _ in m0["samples"]}
    tap.ok(all(n.startswith("geocast_") for n in names), "every metric is prefixed geocast_")
    s = m0["samples"]
    tap.is_((s.get(("geocast_snapshot_generation", "")), s.get(("geocast_zones", "")),
             s.get(("geocast_records", "")), s.get(("geocast_routes", "")),
             s.get(("geocast_policies", ""))), (1.0, 1.0, 4.0, 1.0, 1.0),
            "snapshot gauges: generation, zones, records, routes, policies")
    age = s.get(("geocast_snapshot_age_seconds", ""))
    tap.ok(age is not None and 0 <= age < 120, "snapshot age in seconds")
    tap.ok(s.get(("geocast_responses_total", '{rcode="REFUSED"}')) is not None,
           "responses carry an rcode label")

    # ---- known traffic: exact deltas --------------------------------------------------
    N_UDP, N_TCP, N_REF, N_ECS = 50, 10, 5, 3
    ok_count = 0
    for _ in range(N_UDP):
        r = srv.query(lib.make_query("www.example.com", "A"))
        ok_count += r is not None and r.rcode() == dns.rcode.NOERROR
    for _ in range(N_TCP):
        r = srv.query(lib.make_query("www.example.com", "A"), tcp_=True)
        ok_count += r is not None and r.rcode() == dns.rcode.NOERROR
    for _ in range(N_REF):
        r = srv.query(lib.make_query("www.example.org", "A"))
        ok_count += r is not None and r.rcode() == dns.rcode.REFUSED
    tap.is_(ok_count, N_UDP + N_TCP + N_REF, "traffic answered as expected")
    m1 = scrape()
    tap.is_(delta(m0, m1, "geocast_queries_total", '{protocol="udp"}'), N_UDP + N_REF,
            "UDP queries: exact delta")
    tap.is_(delta(m0, m1, "geocast_queries_total", '{protocol="tcp"}'), N_TCP,
            "TCP queries: exact delta")
    tap.is_(delta(m0, m1, "geocast_responses_total", '{rcode="NOERROR"}'), N_UDP + N_TCP,
            "NOERROR responses: exact delta")
    tap.is_(delta(m0, m1, "geocast_responses_total", '{rcode="REFUSED"}'), N_REF,
            "REFUSED responses: exact delta")
    tap.is_(delta(m0, m1, "geocast_responses_total", '{rcode="NXDOMAIN"}'), 0, "no NXDOMAIN counted")
    tap.is_(delta(m0, m1, "geocast_tcp_connections_accepted_total"), N_TCP,
            "TCP connections accepted: exact delta")
    tap.is_(delta(m0, m1, "geocast_dropped_total"), 0, "nothing dropped")
    tap.is_(delta(m0, m1, "geocast_ecs_queries_total"), 0, "no ECS queries yet")

    ecs = dns.edns.ECSOption("198.51.100.0", 24)
    for _ in range(N_ECS):
        srv.query(lib.make_query("geo.example.com", "A", options=[ecs]))
    lib.udp_raw(b"\x12", srv.port, timeout=0.3)   # too short for a header: dropped
    m2 = scrape()
    tap.is_(delta(m1, m2, "geocast_ecs_queries_total"), N_ECS, "ECS queries: exact delta")
    tap.is_(delta(m1, m2, "geocast_dropped_total"), 1, "a runt packet is counted as dropped")

    # ---- reloads ----------------------------------------------------------------------
    zpath = os.path.join(srv.dir, "example.com.zone")
    with open(zpath, "w") as f:
        f.write(ZONE.format(serial=2) + "extra A 192.0.2.7\n")
    os.kill(srv.proc.pid, signal.SIGHUP)
    m3 = None
    deadline = time.monotonic() + 5 * lib.SLOW
    while time.monotonic() < deadline:
        m3 = scrape()
        if m3 and m3["samples"].get(("geocast_snapshot_generation", "")) == 2:
            break
        time.sleep(0.05)
    tap.is_(m3 and m3["samples"].get(("geocast_snapshot_generation", "")), 2.0,
            "SIGHUP: generation 2")
    tap.is_(m3 and m3["samples"].get(("geocast_records", "")), 5.0, "records gauge follows")
    tap.is_(delta(m2, m3, "geocast_reloads_total"), 1, "reloads_total counts the reload")
    tap.is_(delta(m2, m3, "geocast_reload_failures_total"), 0, "no failure")
    with open(zpath, "w") as f:
        f.write(ZONE.format(serial=3) + "bad A 999.1.1.1\n")
    os.kill(srv.proc.pid, signal.SIGHUP)
    m4 = None
    deadline = time.monotonic() + 5 * lib.SLOW
    while time.monotonic() < deadline:
        m4 = scrape()
        if m4 and m4["samples"].get(("geocast_reload_failures_total", "")) == 1:
            break
        time.sleep(0.05)
    tap.is_(m4 and delta(m3, m4, "geocast_reload_failures_total"), 1, "a failed reload is counted")
    tap.is_(m4 and m4["samples"].get(("geocast_last_reload_success", "")), 0.0,
            "last_reload_success is 0 after a failure")
    tap.is_(m4 and m4["samples"].get(("geocast_snapshot_generation", "")), 2.0,
            "failed reload: still generation 2")

    # ---- other requests -----------------------------------------------------------------
    tap.is_(get("/")[0], 404, "GET / is 404")
    tap.is_(get("/metricsx")[0], 404, "GET /metricsx is 404")
    tap.is_(get("/metrics?name=x")[0], 200, "a query string is ignored")
    tap.is_(get("/metrics", "POST")[0], 405, "POST is 405")
    st, _, body = get("/metrics", "HEAD")
    tap.ok(st == 200 and body == "", "HEAD /metrics: 200 without a body")
    tap.like(raw_http(b"hello\r\n\r\n"), "HTTP/1.0 400", "a malformed request line is 400")
    tap.like(raw_http(b"GET /metrics HTTP/1.0\r\n" + b"X: " + b"a" * 10000 + b"\r\n\r\n"),
             "HTTP/1.0 ", "an oversized request gets an answer, not a hang")
    tap.like(raw_http(b"\x00\xff\xfe\r\n\r\n"), "HTTP/1.0 400", "binary garbage is 400")
    raw_http(b"GET /met", timeout=0.2)          # a client that leaves mid-request
    t0 = time.monotonic()
    silent = raw_http(b"", timeout=15)          # a client that sends nothing is dropped
    took = time.monotonic() - t0
    tap.ok(silent == "" and took < 12 * lib.SLOW, "a silent client is disconnected (%.1fs)" % took)
    tap.ok(scrape() is not None, "the listener still serves /metrics")
    lib.alive_check(srv, label="hostile HTTP requests")
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)

# ---- detailed counters: query types, zones, answers, ECS scopes, countries --------------
# A second daemon with a small crafted GeoIP database (tests/data/route/gen-route-mmdb.pl):
# 1.0.0.0/24 is JP, 2.0.0.0/16 US (Los Angeles), 3.0.0.0/16 DE.
if shutil.which("perl") is None or subprocess.run(
        ["perl", "-MMaxMind::DB::Writer::Tree", "-e", "1"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode != 0:
    tap.skip("perl MaxMind::DB::Writer::Tree (libmaxmind-db-writer-perl) not installed", 22)
    tap.done()
    sys.exit(0)
WORK = lib.tmpdir("geocast-metrics-")
MMDB = os.path.join(WORK, "route.mmdb")
r = subprocess.run(["perl", os.path.join(lib.ROOT, "tests", "data", "route", "gen-route-mmdb.pl"),
                    MMDB], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
if r.returncode != 0:
    tap.bail("gen-route-mmdb.pl failed: %s" % r.stderr)

http_port = lib.free_port()
GEO_CONFIG = """server: { listen: ["127.0.0.1@{port}"], workers: 2 }
control: { http: "127.0.0.1@%d", metrics: { countries: true } }
geoip: { mmdb: "%s" }
boundaries:
  Japan: [JP]
  USA: [US]
zones:
  example.com:
    file: "{zone:example.com}"
    routes:
      geo:
        A:
          answers:
            - { value: 192.0.2.10, boundary: Japan }
            - { value: 192.0.2.11, boundary: USA }
            - { value: 192.0.2.12 }
  example.net:
    file: "{zone:example.net}"
""" % (http_port, MMDB)
NET_ZONE = """$ORIGIN example.net.
$TTL 60
@ SOA ns1 hm 1 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
mail MX 10 ns1
"""
srv = lib.start_geocast(config=GEO_CONFIG, zones={"example.com": ZONE.format(serial=1),
                                                  "example.net": NET_ZONE})
try:
    m0 = scrape()
    tap.ok(m0 is not None, "detailed: /metrics answers")
    types = [("A", 4), ("AAAA", 3), ("MX", 2), ("TXT", 1), ("SPF", 1)]
    for t, n in types:
        for _ in range(n):
            srv.query(lib.make_query("www.example.com", t))
    for _ in range(5):
        srv.query(lib.make_query("mail.example.net", "MX"))
    for _ in range(2):
        srv.query(lib.make_query("www.example.org", "A"))       # REFUSED: no zone
    clients = [("1.0.0.0", 24, "JP", "192.0.2.10", 3), ("2.0.0.0", 24, "US", "192.0.2.11", 4),
               ("3.0.0.0", 24, "DE", "192.0.2.12", 2)]
    scopes = {}
    answered = []
    for addr, src, _cc, _ans, n in clients:
        for _ in range(n):
            resp = srv.query(lib.make_query("geo.example.com", "A",
                                            options=[dns.edns.ECSOption(addr, src)]))
            opt = [o for o in (resp.options if resp else []) if o.otype == 8]
            sc = opt[0].scopelen if opt else None
            scopes[sc] = scopes.get(sc, 0) + 1
            answered.append(resp.answer[0][0].address if resp and resp.answer else None)
    bad = lib.raw_query("www.example.com", 1, qid=7, arcount=1, ar=lib.opt_rr(
        options=lib.ecs_option_raw(1, 24, 5, bytes([2, 0, 0]))))  # SCOPE set in a query
    lib.udp_raw(bad, srv.port, timeout=1)
    lib.udp_raw(b"\x00\x01\x02", srv.port, timeout=0.3)      # runt: dropped
    m1 = scrape()
    expect_types = {t: n for t, n in types if t != "SPF"}
    expect_types["MX"] += 5
    expect_types["A"] += 2 + sum(c[4] for c in clients) + 1   # REFUSED, ECS, FORMERR query
    expect_types["other"] = 1
    got = {t: delta(m0, m1, "geocast_query_types_total", '{qtype="%s"}' % t)
           for t in ["A", "AAAA", "MX", "TXT", "other", "NS", "SOA"]}
    want = {t: expect_types.get(t, 0) for t in got}
    tap.is_(got, want, "query types: exact deltas (SPF counted as other)")
    necs = sum(c[4] for c in clients)
    tap.is_(delta(m0, m1, "geocast_zone_queries_total", '{zone="example.com."}'),
            11 + necs, "by zone: example.com. (static and routed answers)")
    tap.is_(delta(m0, m1, "geocast_zone_queries_total", '{zone="example.net."}'), 5,
            "by zone: example.net.")
    tap.is_(delta(m0, m1, "geocast_zone_queries_total", '{zone="none"}'), 3,
            "by zone: none for REFUSED and FORMERR")
    tap.is_(answered, [c[3] for c in clients for _ in range(c[4])],
            "ECS clients get their country's answer")
    for _addr, _src, _cc, ans, n in clients:
        tap.is_(delta(m0, m1, "geocast_answers_total",
                      '{route="geo.example.com/A",answer="%s"}' % ans), n,
                "answers: %s chosen %d times" % (ans, n))
    got_scopes = {int(k.split('scope="')[1].rstrip('"}')): v
                  for (n, k), v in m1["samples"].items()
                  if n == "geocast_ecs_responses_total" and 'family="ipv4"' in k}
    tap.ok(None not in scopes and scopes == {k: v for k, v in got_scopes.items() if v},
           "ECS scope histogram matches the scopes sent (%r vs %r)" % (scopes, got_scopes))
    for _addr, _src, cc, _ans, n in clients:
        tap.is_(delta(m0, m1, "geocast_country_queries_total", '{country="%s"}' % cc), n,
                "country %s: exact delta" % cc)
    # every other query came from 127.0.0.1 (or carried a private ECS address): unknown
    tap.is_(delta(m0, m1, "geocast_country_queries_total", '{country="unknown"}'), 11 + 5 + 2 + 1,
            "country unknown: loopback clients")
    tap.is_(delta(m0, m1, "geocast_malformed_total", '{action="formerr"}'), 1,
            "malformed: an ECS option with SCOPE set is FORMERR")
    tap.is_(delta(m0, m1, "geocast_malformed_total", '{action="dropped"}'), 1,
            "malformed: a runt is dropped")

    # Reload with the answers changed: totals carry over by label, a new answer starts at 0,
    # a removed one keeps its total.
    with open(srv.conf_path) as f:
        conf = f.read()
    with open(srv.conf_path, "w") as f:
        f.write(conf.replace("- { value: 192.0.2.12 }", "- { value: 192.0.2.13 }"))
    os.kill(srv.proc.pid, signal.SIGHUP)
    m2 = None
    deadline = time.monotonic() + 5 * lib.SLOW
    while time.monotonic() < deadline:
        m2 = scrape()
        if m2 and m2["samples"].get(("geocast_snapshot_generation", "")) == 2:
            break
        time.sleep(0.05)
    tap.is_(m2 and m2["samples"].get(("geocast_snapshot_generation", "")), 2.0, "reloaded")
    for _ in range(3):
        srv.query(lib.make_query("geo.example.com", "A", options=[dns.edns.ECSOption("2.0.0.0", 24)]))
    srv.query(lib.make_query("geo.example.com", "A", options=[dns.edns.ECSOption("3.0.0.0", 24)]))
    m3 = scrape()
    tap.is_(delta(m1, m3, "geocast_answers_total", '{route="geo.example.com/A",answer="192.0.2.11"}'),
            3, "after reload: an answer kept by the new config counts on from its total")
    tap.is_(delta(m1, m3, "geocast_answers_total", '{route="geo.example.com/A",answer="192.0.2.12"}'),
            0, "after reload: a removed answer keeps its total")
    tap.is_(m3["samples"].get(("geocast_answers_total", '{route="geo.example.com/A",answer="192.0.2.13"}')),
            1.0, "after reload: a new answer starts from zero")
    tap.is_(delta(m1, m3, "geocast_zone_queries_total", '{zone="example.com."}'), 4,
            "after reload: zone totals carry over")
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)

# ---- countries inside a /24 split between GeoIP blocks ----------------------------------
# Each I/O thread caches the location of IPv4 /24s that lie inside one GeoIP block; a /24
# split into two /25s of different countries must not be cached as one.
SPLIT_PL = r'''
use strict; use warnings; use MaxMind::DB::Writer::Tree;
my %t = (country => 'map', continent => 'map', iso_code => 'utf8_string', code => 'utf8_string',
         geoname_id => 'uint32');
my $tree = MaxMind::DB::Writer::Tree->new(ip_version => 6, record_size => 24,
    database_type => 'GeoIP2-Country', languages => ['en'], description => { en => 'split' },
    map_key_type_callback => sub { $t{ $_[0] } // 'utf8_string' }, alias_ipv6_to_ipv4 => 1,
    remove_reserved_networks => 0);
$tree->insert_network('7.0.0.0/25', { country => { iso_code => 'JP', geoname_id => 1 },
                                      continent => { code => 'AS', geoname_id => 2 } });
$tree->insert_network('7.0.0.128/25', { country => { iso_code => 'US', geoname_id => 3 },
                                        continent => { code => 'NA', geoname_id => 4 } });
$tree->insert_network('8.0.0.0/16', { country => { iso_code => 'FR', geoname_id => 5 },
                                      continent => { code => 'EU', geoname_id => 6 } });
open my $fh, '>:raw', $ARGV[0] or die; $tree->write_tree($fh); close $fh or die;
'''
SPLIT = os.path.join(WORK, "split.mmdb")
r = subprocess.run(["perl", "-e", SPLIT_PL, SPLIT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   text=True, timeout=60)
if r.returncode != 0:
    tap.bail("cannot write the split database: %s" % r.stderr)
srv = lib.start_geocast(config=GEO_CONFIG.replace(MMDB, SPLIT),  # same HTTP port, now free
                        zones={"example.com": ZONE.format(serial=1), "example.net": NET_ZONE})
try:
    m0 = scrape()
    plan = [("7.0.0.0", 25), ("7.0.0.128", 25), ("8.0.1.0", 24), ("8.0.2.0", 24)] * 5
    for addr, src in plan:
        srv.query(lib.make_query("geo.example.com", "A", options=[dns.edns.ECSOption(addr, src)]))
    m1 = scrape()
    got = {cc: delta(m0, m1, "geocast_country_queries_total", '{country="%s"}' % cc)
           for cc in ("JP", "US", "FR")}
    tap.is_(got, {"JP": 5, "US": 5, "FR": 10},
            "countries: each half of a split /24 counted as its own country, a /16 as one")
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)
tap.done()

#!/usr/bin/python3
"""server.udp_gso: replies to one client of one size leave as one UDP_SEGMENT send and
arrive as ordinary, separate datagrams, each the right answer to its own query.

The daemon is stopped (SIGSTOP) while a burst of queries is queued, so that one recvmmsg
takes the whole burst and the grouping is exact. Also: two clients, a wildcard listen
address (pktinfo and UDP_SEGMENT in one send), udp_gso: false, and a network namespace
whose loopback MTU is too small for the segments, where the kernel refuses GSO and every
reply must still arrive, sent one by one, until the worker stops grouping and says so."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

import dns.message  # noqa: E402
import dns.rdatatype  # noqa: E402

lib.require_geocastd()

BIG_TXT = " ".join('"%s"' % (chr(ord("a") + i) * 200) for i in range(5))  # ~1 KiB of TXT
ZONE = lib.EXAMPLE_ZONE + """two A 192.0.2.21
two A 192.0.2.22
big TXT %s
""" % BIG_TXT

CONFIG = """server:
  listen: ["%(listen)s@{port}"]
  workers: 1
  minimal_responses: true
  udp_gso: %(gso)s
control: { http: "127.0.0.1@%(http)d" }
zones:
  example.com: { file: "{zone:example.com}" }
"""

EXPECT = {"www": ["192.0.2.1"], "two": ["192.0.2.21", "192.0.2.22"], "big": None}
SAMPLE = re.compile(r'^(geocast_udp_gso_[a-z_]+) (\d+)$', re.M)


def gso_counters(http_port):
    c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5 * lib.SLOW)
    try:
        c.request("GET", "/metrics")
        body = c.getresponse().read().decode()
    finally:
        c.close()
    return {m.group(1)[len("geocast_udp_gso_"):-len("_total")]: int(m.group(2))
            for m in SAMPLE.finditer(body)}


def wait_stopped(pid):
    """Until every thread of pid is stopped (state T), bounded in time."""
    deadline = time.monotonic() + 5 * lib.SLOW
    while time.monotonic() < deadline:
        states = []
        for t in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass
        if states and all(s in "tT" for s in states):
            return
        time.sleep(0.002)
    raise RuntimeError("pid %d did not stop" % pid)


def burst(pid, port, plan, addr="127.0.0.1"):
    """Stop the daemon, send plan = [(socket index, label, qtype)] in order, let it run,
    and collect every reply. Returns (list of problems, replies received)."""
    socks = {}
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    for si, _, _ in plan:
        if si not in socks:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.bind((addr, 0))
            s.settimeout(0.2)
            socks[si] = s
    sent = {}  # (socket index, id) -> (label, qtype)
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_stopped(pid)
        for n, (si, label, qtype) in enumerate(plan):
            q = lib.make_query("%s.example.com" % label, qtype, edns=0, qid=0x1000 + n)
            socks[si].sendto(q.to_wire(), (addr, port))
            sent[(si, q.id)] = (label, qtype)
        time.sleep(0.05)  # every datagram queued on the daemon's socket
    finally:
        os.kill(pid, signal.SIGCONT)
    problems, got = [], 0
    deadline = time.monotonic() + 5 * lib.SLOW
    for si, s in socks.items():
        want = sum(1 for k in sent if k[0] == si)
        seen = 0
        while seen < want and time.monotonic() < deadline:
            try:
                data, src = s.recvfrom(65535)
            except socket.timeout:
                continue
            seen += 1
            got += 1
            try:
                r = dns.message.from_wire(data)
            except Exception as e:  # a cut or merged datagram
                problems.append("socket %d: %d bytes that do not parse: %s" % (si, len(data), e))
                continue
            key = (si, r.id)
            if key not in sent:
                problems.append("socket %d: reply with unknown id %#x" % (si, r.id))
                continue
            label, qtype = sent.pop(key)
            if src[0] != addr or src[1] != port:
                problems.append("%s: reply from %s" % (label, src))
            if str(r.question[0].name) != "%s.example.com." % label:
                problems.append("%s: question %s" % (label, r.question[0].name))
            rrs = [rd for rrset in r.answer for rd in rrset]
            if EXPECT[label] is None:
                nstr = [len(rd.strings) for rd in rrs]
                if nstr != [5] or len(data) < 1000:
                    problems.append("big: TXT strings %s, %d bytes" % (nstr, len(data)))
            elif sorted(str(rd) for rd in rrs) != EXPECT[label]:
                problems.append("%s: answer %s" % (label, rrs))
    for s in socks.values():
        s.close()
    if sent:
        problems.append("%d queries unanswered" % len(sent))
    return problems, got


def start(gso=True, listen="127.0.0.1"):
    http_port = lib.free_port()
    conf = CONFIG % {"listen": listen, "gso": "true" if gso else "false", "http": http_port}
    if ":" in listen:  # an IPv6 address: a second listen address, IPv4 for the readiness probe
        conf = conf.replace('listen: ["%s@{port}"]' % listen,
                            'listen: ["127.0.0.1@{port}", "%s@{port}"]' % listen)
    srv = lib.start_geocast(config=conf, zones={"example.com": ZONE})
    return srv, http_port


def mixed_plan(n_www, n_two, sockets=1):
    plan = []
    for i in range(max(n_www, n_two)):
        if i < n_www:
            plan.append((i % sockets, "www", "A"))
        if i < n_two:
            plan.append((i % sockets, "two", "A"))
    return plan


if "--netns-child" in sys.argv:
    # Inside `unshare -n`: a fresh loopback with an MTU below the segments. Reports JSON.
    out = {}
    rc = subprocess.run(["ip", "link", "set", "lo", "mtu", "1000", "up"]).returncode
    out["lo_up"] = rc == 0
    srv, hp = start()
    try:
        rounds = []
        for _ in range(12):  # more than the refusals a worker takes before it stops grouping
            problems, got = burst(srv.proc.pid, srv.port, [(0, "big", "TXT")] * 4)
            rounds.append({"problems": problems, "got": got, "counters": gso_counters(hp)})
        out["rounds"] = rounds
        out["stderr"] = srv.stderr()
        out["alive"] = srv.alive()
    finally:
        out["exit"] = srv.stop()
    print(json.dumps(out))
    sys.exit(0)

# 1. One client, two reply sizes interleaved: exactly two GSO sends.
srv, hp = start()
try:
    c0 = gso_counters(hp)
    tap.is_(c0, {"sends": 0, "replies": 0, "refused": 0}, "the three GSO counters start at 0")
    problems, got = burst(srv.proc.pid, srv.port, mixed_plan(30, 20))
    tap.is_(problems, [], "one client, 50 queries: every reply correct, from the server's address")
    tap.is_(got, 50, "50 datagrams arrived, one per query")
    c1 = gso_counters(hp)
    tap.is_((c1["sends"], c1["replies"], c1["refused"]), (2, 50, 0),
            "two GSO sends (one per reply size) carried all 50 replies")

    # 2. Two clients, one size: one send per client.
    problems, got = burst(srv.proc.pid, srv.port, mixed_plan(40, 0, sockets=2))
    tap.is_(problems, [], "two clients, 40 queries: every reply correct, to its own client")
    c2 = gso_counters(hp)
    tap.is_((c2["sends"] - c1["sends"], c2["replies"] - c1["replies"]), (2, 40),
            "two clients: two GSO sends of 20 replies")

    # 3. Nothing to group: plain sends, counters unchanged.
    problems, got = burst(srv.proc.pid, srv.port, [(i, "www", "A") for i in range(6)])
    tap.is_(problems, [], "six clients, one query each: every reply correct")
    c3 = gso_counters(hp)
    tap.is_(c3, c2, "six different clients: nothing grouped")

    # 4. A lone query still gets its answer.
    r = srv.query(lib.make_query("www.example.com", "A"))
    tap.ok(r is not None and [str(rd) for rrset in r.answer for rd in rrset] == ["192.0.2.1"],
           "a single query is answered")
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)


def grouped_case(label, listen, addr, plan, want):
    """A burst to a server listening on `listen`: every reply correct, and the GSO sends
    and replies counted are `want`."""
    srv, hp = start(listen=listen)
    try:
        problems, got = burst(srv.proc.pid, srv.port, plan, addr=addr)
        tap.is_(problems, [], "%s: %d replies correct, from %s" % (label, len(plan), addr))
        c = gso_counters(hp)
        tap.is_((c["sends"], c["replies"]), want, "%s: %d GSO sends of %d replies in all"
                % ((label,) + want))
        srv.stop_and_check()
    finally:
        srv.stop(timeout=2)


# 5. A wildcard address: the replies carry pktinfo and UDP_SEGMENT in one send.
grouped_case("wildcard listen", "0.0.0.0", "127.0.0.1", mixed_plan(24, 0), (1, 24))
# 5b. IPv6: the same grouping over ::1.
if lib.have_ipv6():
    grouped_case("IPv6", "::1", "::1", mixed_plan(30, 20), (2, 50))
else:
    tap.skip("no IPv6 loopback", 5)

# 6. udp_gso: false: the same burst, no grouping.
srv, hp = start(gso=False)
try:
    problems, got = burst(srv.proc.pid, srv.port, mixed_plan(30, 20))
    tap.is_(problems, [], "udp_gso false: 50 replies correct")
    tap.is_(gso_counters(hp), {"sends": 0, "replies": 0, "refused": 0},
            "udp_gso false: no GSO send")
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)

# 7. The kernel refuses the segments (loopback MTU 1000, ~1 KiB replies): every reply still
#    arrives; after 8 refusals the worker stops grouping and logs it.
if os.geteuid() != 0 or subprocess.run(["unshare", "-n", "true"]).returncode != 0:
    tap.skip("needs root and unshare -n", 6)
else:
    env = dict(os.environ)
    p = subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__),
                        "--netns-child"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=120 * lib.SLOW, env=env)
    try:
        res = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        res = None
        tap.diag("child: rc %d\n%s\n%s" % (p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    if res is None:
        tap.ok(False, "the namespace child reported")
        tap.skip("no report", 5)
    else:
        rounds = res["rounds"]
        tap.ok(res["lo_up"], "namespace: loopback up with MTU 1000")
        tap.is_([r["problems"] for r in rounds], [[]] * len(rounds),
                "MTU 1000: every ~1 KiB reply arrives and is correct, in all 12 bursts")
        last = rounds[-1]["counters"]
        tap.is_((last["sends"], last["refused"]), (0, 8),
                "the kernel refused 8 GSO sends and none went through")
        tap.is_([r["counters"]["refused"] for r in rounds][:9], [1, 2, 3, 4, 5, 6, 7, 8, 8],
                "one refusal per burst until the eighth, then no more grouping")
        tap.like(res["stderr"], "UDP worker 0: the kernel refused 8 grouped (GSO) sends",
                 "the worker says it stopped grouping, and why")
        tap.ok(res["alive"] and res["exit"] == 0, "the daemon kept serving and exits 0")
tap.done()

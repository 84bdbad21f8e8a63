#!/usr/bin/python3
"""Integration-test harness for geocast: TAP output, temporary directories, free ports,
starting/stopping geocastd and a reference NSD, kdig/dig wrappers and raw-socket helpers.

Used by tests/integration/t_*.py, which run under /usr/bin/python3 (Debian's python3 with
python3-dnspython). Tests run from the repository root (GEOCAST_ROOT); the daemon is
$BUILD/bin/geocastd (BUILD defaults to "build"); TEST_RUNNER (e.g. "valgrind -q
--error-exitcode=99") is prefixed to the daemon's command line.

Every wait is bounded in tries and time; all traffic goes to 127.0.0.1 / ::1 only; every child
process is killed at exit (atexit), and temporary directories are removed unless
GEOCAST_TEST_KEEP=1.
"""

import atexit
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

ROOT = os.environ.get("GEOCAST_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = os.environ.get("BUILD", "build")
GEOCASTD = os.path.join(ROOT, BUILD, "bin", "geocastd") if not os.path.isabs(BUILD) \
    else os.path.join(BUILD, "bin", "geocastd")
TEST_RUNNER = os.environ.get("TEST_RUNNER", "").split()
# Under valgrind everything is ~20-50x slower: stretch the waits.
SLOW = 5.0 if TEST_RUNNER else 1.0
if os.environ.get("TESTSUITE_NODELAY"):
    SLOW = max(SLOW, 1.0)
NSD = shutil.which("nsd") or "/usr/sbin/nsd"
NSD_CHECKCONF = shutil.which("nsd-checkconf") or "/usr/sbin/nsd-checkconf"
KDIG = shutil.which("kdig") or "/usr/bin/kdig"
DIG = shutil.which("dig") or "/usr/bin/dig"

# The smallest useful example.com: an apex SOA and NS, the name server's address and www.
EXAMPLE_ZONE = """$ORIGIN example.com.
$TTL 60
@ SOA ns1 hm 1 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
www A 192.0.2.1
"""

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "ERROR: MemorySanitizer")

# --------------------------------------------------------------------------------------------
# TAP


class Tap:
    """Minimal TAP producer. The plan (1..N) is printed at the end by done()."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        self.failures = []

    def ok(self, cond, name=""):
        self.n += 1
        cond = bool(cond)
        name = name.replace("\n", " ").replace("#", "\\#")
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name), flush=True)
        if not cond:
            self.failed += 1
            self.failures.append(name)
        return cond

    def is_(self, got, expected, name=""):
        r = self.ok(got == expected, name)
        if not r:
            self.diag("  got:      %r" % (got,))
            self.diag("  expected: %r" % (expected,))
        return r

    def like(self, got, substr, name=""):
        r = self.ok(got is not None and substr in got, name)
        if not r:
            self.diag("  %r not found in:" % (substr,))
            self.diag(str(got)[:2000])
        return r

    def diag(self, msg):
        for line in str(msg).splitlines() or [""]:
            print("# " + line, flush=True)

    def skip(self, reason, count=1):
        for _ in range(count):
            self.n += 1
            print("ok %d # SKIP %s" % (self.n, reason), flush=True)

    def skip_all(self, reason):
        print("1..0 # SKIP %s" % reason, flush=True)
        sys.exit(0)

    def bail(self, reason):
        print("Bail out! %s" % reason, flush=True)
        sys.exit(255)

    def done(self):
        print("1..%d" % self.n, flush=True)
        if self.failed:
            self.diag("%d of %d tests failed:" % (self.failed, self.n))
            for f in self.failures[:100]:
                self.diag("  " + f)
        sys.exit(1 if self.failed else 0)


tap = Tap()

# --------------------------------------------------------------------------------------------
# processes, temp dirs, cleanup

_children = []
_tmpdirs = []


def _cleanup():
    for p in list(_children):
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    if not os.environ.get("GEOCAST_TEST_KEEP"):
        for d in _tmpdirs:
            shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signum, _frame):
    _cleanup()
    sys.exit(128 + signum)


for _s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_s, _on_signal)


def tmpdir(prefix="geocast-test-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


def _die_with_parent():
    """In the child before exec: get SIGKILL if the test process dies (even by SIGKILL)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn(argv, stdout=None, stderr=None, cwd=None):
    p = subprocess.Popen(argv, stdout=stdout or subprocess.DEVNULL, stderr=stderr or subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True,
                         preexec_fn=_die_with_parent)
    _children.append(p)
    return p


def geocastd_built():
    return os.path.isfile(GEOCASTD) and os.access(GEOCASTD, os.X_OK)


def require_geocastd():
    if not geocastd_built():
        tap.skip_all("geocastd not built")


# --------------------------------------------------------------------------------------------
# ports

def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def free_port(tries=200, v6=False):
    """A random high port free for both UDP and TCP on 127.0.0.1 (and ::1 when v6)."""
    rng = random.Random()
    addrs = [(socket.AF_INET, "127.0.0.1")] + ([(socket.AF_INET6, "::1")] if v6 else [])
    for _ in range(tries):
        port = rng.randint(20000, 60999)
        socks = []
        try:
            for fam, a in addrs:
                for typ in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(fam, typ)
                    socks.append(s)
                    if typ == socket.SOCK_STREAM:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((a, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port found in %d tries" % tries)


# --------------------------------------------------------------------------------------------
# DNS helpers

def make_query(qname, qtype="A", rdclass="IN", edns=None, payload=1232, dnssec=False, options=None,
               rd=False, qid=None):
    """A dnspython query. edns: None (EDNS only if options/dnssec given), -1/False (no EDNS), or version."""
    if edns is None:
        edns = 0 if (options or dnssec) else -1
    if edns is False:
        edns = -1
    q = dns.message.make_query(qname, qtype, rdclass, use_edns=edns, payload=payload,
                               want_dnssec=dnssec, options=options)
    if edns > 0:   # make_query treats use_edns=1 as True (version 0): set the version again
        q.use_edns(edns, q.ednsflags, payload, options=options)
    if not rd:
        q.flags &= ~dns.flags.RD
    if qid is not None:
        q.id = qid
    return q


def udp(msg, port, addr="127.0.0.1", timeout=2.0, ignore_trailing=True):
    """Send a dnspython message over UDP; returns the parsed reply or None on timeout."""
    try:
        return dns.query.udp(msg, addr, port=port, timeout=timeout * SLOW,
                             ignore_trailing=ignore_trailing, raise_on_truncation=False)
    except dns.exception.Timeout:
        return None


def tcp(msg, port, addr="127.0.0.1", timeout=3.0):
    try:
        return dns.query.tcp(msg, addr, port=port, timeout=timeout * SLOW)
    except (dns.exception.Timeout, ConnectionError, EOFError):
        return None


def udp_raw(data, port, addr="127.0.0.1", timeout=1.0):
    """Send raw bytes over UDP; return the raw reply bytes or None when nothing came back."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout * SLOW)
        s.sendto(data, (addr, port))
        try:
            return s.recv(65535)
        except (socket.timeout, ConnectionRefusedError):
            return None
    finally:
        s.close()


def _recv_exact(s, n, deadline):
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            chunk = s.recv(n - len(buf))
        except (socket.timeout, ConnectionResetError):
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def tcp_raw(data, port, addr="127.0.0.1", timeout=2.0, frame=True, nreplies=1):
    """Send bytes over one TCP connection (with a 2-byte length prefix when frame=True).
    data may be a list of messages (pipelined). Returns the list of reply messages (raw bytes)
    read before timeout/close (at most nreplies)."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    msgs = data if isinstance(data, list) else [data]
    out = b"".join((struct.pack("!H", len(m)) + m) if frame else m for m in msgs)
    s = socket.socket(fam, socket.SOCK_STREAM)
    replies = []
    try:
        s.settimeout(timeout * SLOW)
        s.connect((addr, port))
        s.sendall(out)
        deadline = time.monotonic() + timeout * SLOW
        for _ in range(nreplies):
            hdr = _recv_exact(s, 2, deadline)
            if hdr is None:
                break
            (ln,) = struct.unpack("!H", hdr)
            body = _recv_exact(s, ln, deadline)
            if body is None:
                break
            replies.append(body)
    except (OSError, socket.timeout):
        pass
    finally:
        s.close()
    return replies


def tcp_closed_by_peer(s, timeout=2.0):
    """True when the peer closed the connection (EOF/reset) within timeout."""
    s.settimeout(timeout * SLOW)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except (ConnectionResetError, OSError):
        return True


def rcode_of(raw):
    """(rcode, flags) of a raw reply header (no EDNS extension), or None."""
    if raw is None or len(raw) < 12:
        return None
    flags = struct.unpack("!H", raw[2:4])[0]
    return flags & 0xF


def header_of(raw):
    if raw is None or len(raw) < 12:
        return None
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", raw[:12])
    return {"id": qid, "flags": flags, "qr": bool(flags & 0x8000), "opcode": (flags >> 11) & 0xF,
            "aa": bool(flags & 0x0400), "tc": bool(flags & 0x0200), "rd": bool(flags & 0x0100),
            "ra": bool(flags & 0x0080), "rcode": flags & 0xF, "qd": qd, "an": an, "ns": ns, "ar": ar}


def parse(raw):
    """Parse raw reply bytes with dnspython; None if unparsable."""
    if raw is None:
        return None
    try:
        return dns.message.from_wire(raw, ignore_trailing=True)
    except Exception:  # noqa: BLE001 — any parse failure means "not a valid reply"
        return None


def wire_name(name):
    out = b""
    for lab in name.strip(".").split(".") if name.strip(".") else []:
        b = lab.encode()
        out += bytes([len(b)]) + b
    return out + b"\x00"


def raw_query(qname="www.example.com", qtype=1, qclass=1, qid=0x1234, flags=0x0000, qdcount=None,
              an=b"", ancount=0, ns=b"", nscount=0, ar=b"", arcount=0, qname_wire=None):
    """Build a raw query packet; every field is overridable to make hostile ones."""
    q = (qname_wire if qname_wire is not None else wire_name(qname)) + struct.pack("!HH", qtype, qclass)
    if qdcount is None:
        qdcount = 1
    hdr = struct.pack("!HHHHHH", qid, flags, qdcount, ancount, nscount, arcount)
    return hdr + q + an + ns + ar


def opt_rr(payload=1232, ext_rcode=0, version=0, do=False, options=b"", owner=b"\x00", rdlen=None):
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    rl = len(options) if rdlen is None else rdlen
    return owner + struct.pack("!HHIH", 41, payload, ttl, rl) + options


def edns_option(code, data, length=None):
    return struct.pack("!HH", code, len(data) if length is None else length) + data


def ecs_option_raw(family, source, scope, addr_bytes):
    return edns_option(8, struct.pack("!HBB", family, source, scope) + addr_bytes)


# --------------------------------------------------------------------------------------------
# kdig / dig

def run_cmd(argv, timeout=10.0):
    """Run a client with a bounded time; returns (exit status, stdout, stderr)."""
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=timeout * SLOW, text=True)
        return r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        return -1, (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout"


def kdig(port, *args, addr="127.0.0.1", timeout=10.0):
    """kdig @addr -p port ARGS; returns stdout (stderr appended after a marker if non-empty)."""
    argv = [KDIG, "@" + addr, "-p", str(port), "+retry=1", "+timeout=%d" % max(1, int(2 * SLOW))]
    argv += list(args)
    rc, out, err = run_cmd(argv, timeout)
    return out + (("\n;; STDERR: " + err) if err.strip() else "")


def dig(port, *args, addr="127.0.0.1", timeout=10.0):
    argv = [DIG, "@" + addr, "-p", str(port), "+tries=2", "+time=%d" % max(1, int(2 * SLOW))]
    argv += list(args)
    rc, out, err = run_cmd(argv, timeout)
    return out + (("\n;; STDERR: " + err) if err.strip() else "")


def parse_text_reply(out):
    """Pull the header facts out of kdig/dig text output: rcode, flags set, section lines.
    Returns dict {rcode, flags, answer, authority, additional, edns} or None."""
    import re
    r = {"rcode": None, "flags": set(), "answer": [], "authority": [], "additional": [], "edns": [],
         "question": []}
    m = re.search(r"status: ([A-Z0-9]+)", out)
    if not m:
        return None
    r["rcode"] = m.group(1)
    m = re.search(r"[Ff]lags: ([a-z ]*);", out)
    if m:
        r["flags"] = set(m.group(1).split())
    sec = None
    for line in out.splitlines():
        ls = line.strip()
        low = ls.lower()
        if low.startswith(";; question section") or low.startswith(";; question"):
            sec = "question"
            continue
        if low.startswith(";; answer section"):
            sec = "answer"
            continue
        if low.startswith(";; authority section"):
            sec = "authority"
            continue
        if low.startswith(";; additional section"):
            sec = "additional"
            continue
        if low.startswith(";; edns pseudosection") or low.startswith(";; opt pseudosection"):
            sec = "edns"
            continue
        if not ls:
            if sec != "edns":
                sec = None
            continue
        if low.startswith(";; ") and sec not in ("edns",):
            if low.startswith(";; received") or low.startswith(";; query time") or low.startswith(";; server"):
                sec = None
            continue
        if sec in ("answer", "authority", "additional"):
            if not ls.startswith(";"):
                r[sec].append(ls)
        elif sec == "edns":
            if low.startswith(";; ") and ("section" in low or "received" in low):
                sec = None
                continue
            r["edns"].append(ls)
        elif sec == "question":
            r["question"].append(ls)
    return r


# --------------------------------------------------------------------------------------------
# servers

def yaml_dump(obj, indent=0):
    """A tiny YAML emitter for the config dicts the tests build (dict/list/str/int/bool/None)."""
    pad = "  " * indent
    out = []

    def scalar(v):
        if v is True:
            return "true"
        if v is False:
            return "false"
        if v is None:
            return "null"
        if isinstance(v, (int, float)):
            return str(v)
        s = str(v)
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                out.append("%s%s:" % (pad, k))
                out.append(yaml_dump(v, indent + 1))
            elif isinstance(v, list) and v and any(isinstance(x, (dict, list)) for x in v):
                out.append("%s%s:" % (pad, k))
                out.append(yaml_dump(v, indent + 1))
            elif isinstance(v, list):
                out.append("%s%s: [%s]" % (pad, k, ", ".join(scalar(x) for x in v)))
            elif isinstance(v, dict):
                out.append("%s%s: {}" % (pad, k))
            else:
                out.append("%s%s: %s" % (pad, k, scalar(v)))
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, (dict, list)):
                sub = yaml_dump(v, indent + 1).lstrip()
                out.append("%s- %s" % (pad, sub))
            else:
                out.append("%s- %s" % (pad, scalar(v)))
    return "\n".join(x for x in out if x != "")


class Server:
    """A running DNS server child (geocastd or nsd)."""

    def __init__(self, kind, proc, port, dir_, stderr_path, conf_path, zones, v6=False):
        self.kind = kind
        self.proc = proc
        self.port = port
        self.dir = dir_
        self.stderr_path = stderr_path
        self.conf_path = conf_path
        self.zones = zones
        self.v6 = v6
        self.exit_status = None

    def alive(self):
        return self.proc.poll() is None

    def stderr(self):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def sanitizer_report(self):
        err = self.stderr()
        return [m for m in SANITIZER_MARKERS if m in err]

    def query(self, msg, tcp_=False, timeout=2.0, addr="127.0.0.1"):
        return tcp(msg, self.port, addr, timeout) if tcp_ else udp(msg, self.port, addr, timeout)

    def wait_ready(self, probe_name, timeout=10.0):
        """Poll with a SOA query until the server answers; bounded in time and tries."""
        deadline = time.monotonic() + timeout * SLOW
        tries = 0
        while time.monotonic() < deadline and tries < 2000:
            tries += 1
            if not self.alive():
                return False
            q = make_query(probe_name, "SOA")
            r = udp(q, self.port, timeout=0.2 * SLOW)
            if r is not None:
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout=10.0):
        """SIGTERM, wait (bounded), SIGKILL if needed. Returns the exit status (None if killed)."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
                self.exit_status = None
                return None
        self.exit_status = self.proc.returncode
        return self.exit_status

    def stop_and_check(self, t=None):
        """Stop with SIGTERM and record TAP results: clean exit 0, no sanitizer report."""
        t = t or tap
        was_alive = self.alive()
        t.ok(was_alive, "%s still running before shutdown" % self.kind)
        st = self.stop()
        t.is_(st, 0, "%s exits 0 on SIGTERM" % self.kind)
        rep = self.sanitizer_report()
        t.ok(not rep, "%s stderr has no sanitizer report" % self.kind)
        if rep or st != 0:
            t.diag("---- %s stderr (tail) ----" % self.kind)
            t.diag(self.stderr()[-4000:])


def write_zones(d, zones):
    """zones: {origin: text}. Writes ORIGIN.zone files; returns {origin: path}."""
    paths = {}
    for origin, text in zones.items():
        fn = origin.strip(".") or "root"
        p = os.path.join(d, fn + ".zone")
        with open(p, "w") as f:
            f.write(text)
        paths[origin] = p
    return paths


def geocast_config(port, zone_paths, extra_server=None, v6=False, extra=None):
    listen = ["127.0.0.1@%d" % port] + (["::1@%d" % port] if v6 else [])
    server = {"listen": listen, "workers": 1, "identity": "node-a", "version": "geocast test",
              "tcp_idle_timeout": "10s", "tcp_max_clients": 100}
    if extra_server:
        server.update(extra_server)
    conf = {"server": server, "zones": {o.strip("."): {"file": p} for o, p in zone_paths.items()}}
    if extra:
        conf.update(extra)
    return conf


def start_geocast(config=None, zones=None, v6=False, wait=True, extra_server=None, probe=None):
    """Start geocastd. config: None (default config built from zones), a dict (dumped as YAML;
    'zones' filled from zones when missing) or text (with {port}, {dir} and {zone:ORIGIN}
    placeholders expanded via str.replace). zones: {origin: zone text}.
    Returns a Server, or raises RuntimeError with the daemon's stderr when it did not come up."""
    zones = zones or {}
    d = tmpdir("geocast-")
    port = free_port(v6=v6)
    paths = write_zones(d, zones)
    if config is None:
        conf = yaml_dump(geocast_config(port, paths, extra_server, v6)) + "\n"
    elif isinstance(config, dict):
        c = dict(config)
        c.setdefault("server", {})
        c["server"] = dict(c["server"])
        c["server"].setdefault("listen", ["127.0.0.1@%d" % port] + (["::1@%d" % port] if v6 else []))
        if "zones" not in c:
            c["zones"] = {o.strip("."): {"file": p} for o, p in paths.items()}
        conf = yaml_dump(c) + "\n"
    else:
        conf = config.replace("{port}", str(port)).replace("{dir}", d)
        for o, p in paths.items():
            conf = conf.replace("{zone:%s}" % o.strip("."), p)
    conf_path = os.path.join(d, "geocast.yaml")
    with open(conf_path, "w") as f:
        f.write(conf)
    err_path = os.path.join(d, "geocastd.stderr")
    errf = open(err_path, "w")
    argv = TEST_RUNNER + [GEOCASTD, "-c", conf_path]
    proc = spawn(argv, stderr=errf, stdout=errf, cwd=d)
    errf.close()
    srv = Server("geocastd", proc, port, d, err_path, conf_path, zones, v6)
    if wait:
        probe = probe or (list(zones)[0] if zones else "example.com")
        if not srv.wait_ready(probe):
            srv.stop(timeout=2)
            raise RuntimeError("geocastd did not answer within %.0fs (exit %r); stderr:\n%s\nconfig:\n%s"
                               % (10 * SLOW, proc.poll(), srv.stderr()[-3000:], conf))
    return srv


def geocast_check(config_text, zones=None):
    """Run `geocastd -c CONFIG --check`; returns (exit status, stderr, config path, dir)."""
    d = tmpdir("geocast-check-")
    paths = write_zones(d, zones or {})
    conf = config_text.replace("{dir}", d).replace("{port}", str(free_port()))
    for o, p in paths.items():
        conf = conf.replace("{zone:%s}" % o.strip("."), p)
    conf_path = os.path.join(d, "geocast.yaml")
    with open(conf_path, "w") as f:
        f.write(conf)
    argv = TEST_RUNNER + [GEOCASTD, "-c", conf_path, "--check"]
    rc, out, err = run_cmd(argv, timeout=20)
    return rc, err + out, conf_path, d


_nsd_rrl_ok = None


def _nsd_supports(option_line, d):
    """Does this NSD accept a server: option? Checked with nsd-checkconf on a scratch config."""
    p = os.path.join(d, "probe.conf")
    with open(p, "w") as f:
        f.write("server:\n\t%s\n" % option_line)
    rc, _, _ = run_cmd([NSD_CHECKCONF, p], timeout=10)
    return rc == 0


# NSD 4.6 defaults that matter for a comparison, measured with this harness (all kept: the
# differential test compares geocast against NSD as Debian ships it, except for RRL):
#  - rrl-ratelimit: 200 q/s per /24 in Debian's build -> thousands of queries from 127.0.0.1
#    would get TC=1 "slip" replies and drops; set to 0 (with rrl-whitelist-ratelimit 0) when this
#    NSD knows the option (checked with nsd-checkconf).
#  - minimal-responses: no -> positive answers carry the zone's apex NS RRset in authority and
#    its addresses in additional; not for ANY, DS, CNAME chains that leave the zone or loop.
#  - ANY (refuse-any: no) -> answered with ONE RRset (the first of the name), over UDP and TCP,
#    without authority NS (RFC 8482 style).
#  - TC replies -> header + question (+ OPT) with empty sections when the answer RRset does not
#    fit; when an earlier RRset fitted (a DNAME before its synthesized CNAME) it is kept.
#  - ipv4-edns-size: 1232 -> never more than 1232 bytes over UDP whatever the client offers;
#    the OPT advertises 1232.
#  - glue: referrals carry in-bailiwick glue (A and AAAA) in additional; also addresses of
#    NS targets that are authoritative data of the zone (e.g. ns1.<apex> for a sibling).
#  - CD and AD are cleared in answers (no DNSSEC); the header of a rejected query is echoed.
#  - DS at a delegation point (and at the apex of a child zone served by the same NSD) is
#    answered from the parent zone (RFC 4035 section 3.1.4.1).
#  - BADVERS replies carry OPT version 0 without DO or NSID; REFUSED replies to EDNS queries
#    carry an Extended DNS Error 20 (Not Authoritative).
#  - CNAME loops: the two CNAMEs once, NOERROR. CNAME to a name in another zone the server
#    serves: followed into that zone (with that zone's NS in authority).
#  - hide-identity/hide-version: no; nsid unset (we set identity/version/nsid to geocast's).


def start_nsd(zones, identity="node-a", version="geocast test", nsid_ascii="node-a", extra=""):
    """Start NSD in the foreground (nsd -d) on 127.0.0.1@free-port with a private config.
    zones: {origin: zone text}. Returns a Server (kind 'nsd')."""
    global _nsd_rrl_ok
    d = tmpdir("nsd-")
    port = free_port()
    paths = write_zones(d, zones)
    if _nsd_rrl_ok is None:
        _nsd_rrl_ok = _nsd_supports("rrl-ratelimit: 0", d)
    lines = [
        "server:",
        "\tip-address: 127.0.0.1@%d" % port,
        "\tport: %d" % port,
        "\tdo-ip6: no",
        "\tserver-count: 1",
        "\tverbosity: 0",
        '\tusername: ""',
        '\tchroot: ""',
        '\tzonesdir: "%s"' % d,
        '\tdatabase: ""',
        '\tpidfile: "%s/nsd.pid"' % d,
        '\txfrdfile: "%s/xfrd.state"' % d,
        '\txfrdir: "%s"' % d,
        '\tzonelistfile: "%s/zone.list"' % d,
        '\tlogfile: "%s/nsd.log"' % d,
        "\tidentity: \"%s\"" % identity,
        "\tversion: \"%s\"" % version,
        "\tnsid: \"ascii_%s\"" % nsid_ascii,
        "\tzonefiles-write: 0",
    ]
    if _nsd_rrl_ok:
        lines += ["\trrl-ratelimit: 0", "\trrl-whitelist-ratelimit: 0"]
    if extra:
        lines += ["\t" + x for x in extra.strip().splitlines()]
    lines += ["remote-control:", "\tcontrol-enable: no"]
    for o, p in paths.items():
        lines += ["zone:", "\tname: \"%s\"" % (o.strip(".") or "."), "\tzonefile: \"%s\"" % p]
    conf = "\n".join(lines) + "\n"
    conf_path = os.path.join(d, "nsd.conf")
    with open(conf_path, "w") as f:
        f.write(conf)
    rc, out, err = run_cmd([NSD_CHECKCONF, conf_path], timeout=10)
    if rc != 0:
        raise RuntimeError("nsd-checkconf failed: %s%s\n%s" % (out, err, conf))
    err_path = os.path.join(d, "nsd.stderr")
    errf = open(err_path, "w")
    proc = spawn([NSD, "-d", "-c", conf_path], stderr=errf, stdout=errf, cwd=d)
    errf.close()
    srv = Server("nsd", proc, port, d, err_path, conf_path, zones)
    probe = list(zones)[0] if zones else "."
    if not srv.wait_ready(probe):
        log = ""
        try:
            log = open(os.path.join(d, "nsd.log")).read()
        except OSError:
            pass
        srv.stop(timeout=2)
        raise RuntimeError("nsd did not answer: %s\n%s" % (srv.stderr()[-2000:], log[-2000:]))
    return srv


def alive_check(srv, name="www.example.com", qtype="A", label="", t=None):
    """TAP: the server still answers a normal query over UDP."""
    t = t or tap
    r = udp(make_query(name, qtype), srv.port, timeout=2.0)
    return t.ok(r is not None and r.rcode() == dns.rcode.NOERROR and srv.alive(),
                "server still answers a normal query%s" % ((" after " + label) if label else ""))


def start_knot(zones, identity="node-a", version="geocast test", nsid="node-a"):
    """Start Knot DNS (knotd, foreground) on 127.0.0.1@free-port with a private config.
    Only used to self-test the differential harness (DIFF_PEER=knot) when geocastd is absent."""
    knotd = shutil.which("knotd") or "/usr/sbin/knotd"
    d = tmpdir("knot-")
    port = free_port()
    paths = write_zones(d, zones)
    lines = [
        "server:",
        "    rundir: \"%s\"" % d,
        "    listen: 127.0.0.1@%d" % port,
        "    identity: \"%s\"" % identity,
        "    version: \"%s\"" % version,
        "    nsid: \"%s\"" % nsid,
        "    background-workers: 1",
        "    udp-workers: 1",
        "    tcp-workers: 1",
        "database:",
        "    storage: \"%s\"" % d,
        "log:",
        "  - target: stderr",
        "    any: warning",
        "template:",
        "  - id: default",
        "    storage: \"%s\"" % d,
        "    zonefile-sync: -1",
        "    journal-content: none",
        "    semantic-checks: off",
        "zone:",
    ]
    for o, p in paths.items():
        lines += ["  - domain: \"%s\"" % (o.strip(".") or "."), "    file: \"%s\"" % p]
    conf_path = os.path.join(d, "knot.conf")
    with open(conf_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    err_path = os.path.join(d, "knot.stderr")
    errf = open(err_path, "w")
    proc = spawn([knotd, "-c", conf_path], stderr=errf, stdout=errf, cwd=d)
    errf.close()
    srv = Server("knotd", proc, port, d, err_path, conf_path, zones)
    if not srv.wait_ready(list(zones)[0]):
        srv.stop(timeout=2)
        raise RuntimeError("knotd did not answer: %s" % srv.stderr()[-2000:])
    # knotd answers SERVFAIL until the zone is loaded: wait for a real SOA (bounded).
    deadline = time.monotonic() + 10 * SLOW
    while time.monotonic() < deadline:
        r = udp(make_query(list(zones)[0], "SOA"), port, timeout=0.5)
        if r is not None and r.rcode() == dns.rcode.NOERROR and r.answer:
            break
        time.sleep(0.05)
    return srv

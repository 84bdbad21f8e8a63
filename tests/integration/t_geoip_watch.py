#!/usr/bin/python3
"""geoip.watch: a new GeoIP database renamed into place (as geoipupdate does) or rewritten
in place is picked up by a reload after geoip.watch_delay; a corrupt one is a failed reload
(old answers keep coming, the failure is reported); other files in the directory are
ignored; turning the watch off on reload stops it."""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

import dns.edns  # noqa: E402
import dns.rcode  # noqa: E402

lib.require_geocastd()
GEOCASTCTL = os.path.join(lib.ROOT, lib.BUILD, "bin", "geocastctl") if not os.path.isabs(lib.BUILD) \
    else os.path.join(lib.BUILD, "bin", "geocastctl")
GEN = os.path.join(lib.ROOT, "tests", "data", "geodiff", "gen-geodiff-mmdb.pl")
if not os.access(GEOCASTCTL, os.X_OK):
    tap.skip_all("geocastctl not built")
if shutil.which("perl") is None or subprocess.run(
        ["perl", "-MMaxMind::DB::Writer::Tree", "-e", "1"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode != 0:
    tap.skip_all("perl MaxMind::DB::Writer::Tree (libmaxmind-db-writer-perl) not installed")

W = lib.tmpdir("geocast-watch-")
OLD, NEW = os.path.join(W, "old.mmdb"), os.path.join(W, "new.mmdb")
r = subprocess.run(["perl", GEN, OLD, NEW], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   text=True, timeout=60)
if r.returncode != 0:
    tap.bail("gen-geodiff-mmdb.pl failed: %s" % r.stderr)
GEODIR = os.path.join(W, "geoip")
os.mkdir(GEODIR)
LIVE = os.path.join(GEODIR, "City.mmdb")
shutil.copy(OLD, LIVE)

ZONE = """$ORIGIN example.com.
$TTL 60
@ SOA ns1 hm 1 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
"""
# 11.0.200.1 is in Germany in OLD, in the USA in NEW (see the generator).
CONFIG = """server: {{ listen: ["127.0.0.1@{{port}}"], workers: 1 }}
control: {{ socket: "{{dir}}/control.sock" }}
geoip: {{ mmdb: "{live}", watch: {watch}, watch_delay: 300ms }}
boundaries:
  Europe: [eur]
  USA: [US]
zones:
  example.com:
    file: "{{zone:example.com}}"
    routes:
      geo:
        A:
          answers:
            - {{ value: 192.0.2.1, boundary: Europe }}
            - {{ value: 192.0.2.2, boundary: USA }}
            - {{ value: 192.0.2.3 }}
"""


def geo():
    q = lib.make_query("geo.example.com", "A", options=[dns.edns.ECSOption("11.0.200.1", 24)])
    r = srv.query(q, timeout=2.0 * lib.SLOW)
    if r is None or r.rcode() != dns.rcode.NOERROR or not r.answer:
        return None
    return r.answer[0][0].to_text()


def wait_for(want, secs=10.0):
    deadline = time.monotonic() + secs * lib.SLOW
    got = geo()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.05)
        got = geo()
    return got


def status():
    rc, out, err = lib.run_cmd([GEOCASTCTL, "-s", SOCK, "-j", "status"], timeout=30 * lib.SLOW)
    try:
        return json.loads(out)
    except ValueError:
        return {}


def wait_reloads(n, secs=10.0):
    deadline = time.monotonic() + secs * lib.SLOW
    st = status()
    while st.get("reloads", 0) < n and time.monotonic() < deadline:
        time.sleep(0.05)
        st = status()
    return st


def rename_in(src_bytes, name="City.mmdb"):
    tmp = os.path.join(GEODIR, ".tmp-" + name)
    with open(tmp, "wb") as f:
        f.write(src_bytes)
    os.rename(tmp, os.path.join(GEODIR, name))


srv = lib.start_geocast(config=CONFIG.format(live=LIVE, watch="true"),
                        zones={"example.com": ZONE})
SOCK = os.path.join(srv.dir, "control.sock")
try:
    tap.is_(geo(), "192.0.2.1", "OLD database: Europe's answer")
    tap.like(srv.stderr(), "geoip.watch: watching %s/City.mmdb" % GEODIR, "watch logged")

    # geoipupdate's way: write aside, rename into place.
    rename_in(open(NEW, "rb").read())
    tap.is_(wait_for("192.0.2.2"), "192.0.2.2", "NEW renamed into place: USA's answer")
    st = wait_reloads(1)
    tap.is_((st.get("reloads"), st.get("reload_failures")), (1, 0), "one reload, no failure")
    tap.like(srv.stderr(), "City.mmdb replaced; reloading in 300 ms", "replacement logged")
    tap.like(srv.stderr(), "reloaded (GeoIP file watch)", "reload logged with its trigger")

    # A corrupt database: a failed reload, the old answers keep coming.
    rename_in(b"\0corrupt" * 512)
    st = wait_reloads(2)
    tap.is_((st.get("reloads"), st.get("reload_failures")), (2, 1), "corrupt file: reload failed")
    last = st.get("last_reload", {})
    tap.is_((last.get("result"), last.get("trigger")), ("failed", "GeoIP file watch"),
            "status: last reload failed, by the watch")
    tap.like(last.get("error", ""), "City.mmdb", "status: the error names the file")
    tap.like(srv.stderr(), "reload failed (GeoIP file watch)", "failure logged")
    tap.is_(geo(), "192.0.2.2", "corrupt file: the previous answer still served")

    # Another file in the same directory: no reload.
    rename_in(open(OLD, "rb").read(), name="Other.mmdb")
    time.sleep(1.0 * lib.SLOW)
    tap.is_(status().get("reloads"), 2, "another file in the directory: no reload")

    # Rewritten in place (IN_CLOSE_WRITE): picked up too.
    with open(LIVE, "wb") as f:
        f.write(open(OLD, "rb").read())
    tap.is_(wait_for("192.0.2.1"), "192.0.2.1", "rewritten in place: OLD's answer again")
    tap.is_(wait_reloads(3).get("reload_failures"), 1, "the rewrite reloaded fine")

    # A burst of replacements makes one reload (each event restarts the settle time).
    for i in range(5):
        rename_in(open(NEW if i % 2 == 0 else OLD, "rb").read())
        time.sleep(0.05)
    rename_in(open(NEW, "rb").read())
    tap.is_(wait_for("192.0.2.2"), "192.0.2.2", "burst: the last file's data is live")
    time.sleep(1.0 * lib.SLOW)
    tap.ok(status().get("reloads") in (4, 5), "burst: one reload (maybe two on a slow machine)"
           " (%s)" % status().get("reloads"))

    # watch: false on reload: renames are ignored from then on.
    n0 = status().get("reloads")
    conf = open(srv.conf_path).read().replace("watch: true", "watch: false")
    with open(srv.conf_path, "w") as f:
        f.write(conf)
    rc, out, err = lib.run_cmd([GEOCASTCTL, "-s", SOCK, "reload"], timeout=60 * lib.SLOW)
    tap.is_(rc, 0, "reload with watch: false")
    rename_in(open(OLD, "rb").read())
    time.sleep(1.0 * lib.SLOW)
    tap.is_(status().get("reloads"), n0 + 1, "watch off: a rename no longer reloads")
    tap.is_(geo(), "192.0.2.2", "watch off: answers unchanged")
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)

# Bad values are configuration errors that name the key.
for bad, want in (("watch: maybe", "geoip.watch: expected true or false"),
                  ("watch_delay: forever", "geoip.watch_delay: expected a duration"),
                  ("watch_delay: 11m", "geoip.watch_delay: expected a duration up to 10m")):
    rc, err, _, _ = lib.geocast_check(
        "server:\n  listen: [\"127.0.0.1@{port}\"]\ngeoip:\n  mmdb: %s\n  %s\n"
        "zones:\n  example.com:\n    file: {zone:example.com}\n" % (OLD, bad),
        {"example.com": ZONE})
    tap.is_(rc, 1, "%s: --check fails" % bad)
    tap.like(err, want, "%s: the error names the key" % bad)
rc, err, _, _ = lib.geocast_check(
    "server:\n  listen: [\"127.0.0.1@{port}\"]\ngeoip:\n  mmdb: %s\n  watch: true\n"
    "  watch_delay: 250ms\nzones:\n  example.com:\n    file: {zone:example.com}\n" % OLD,
    {"example.com": ZONE})
tap.is_(rc, 0, "watch: true, watch_delay: 250ms: valid")
tap.done()

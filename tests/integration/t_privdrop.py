#!/usr/bin/python3
"""server.user / --user: geocastd binds as root, then runs as the user (all threads: the
real, effective, saved and filesystem ids, and the groups), queries and reloads keep
working, the control socket belongs to the user and is removed at exit; a missing user
stops the start with a clear error; a zone the user cannot read fails the reload."""

import os
import pwd
import grp
import re
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import tap  # noqa: E402

import dns.rcode  # noqa: E402

lib.require_geocastd()
GEOCASTCTL = os.path.join(lib.ROOT, lib.BUILD, "bin", "geocastctl") if not os.path.isabs(lib.BUILD) \
    else os.path.join(lib.BUILD, "bin", "geocastctl")
if os.geteuid() != 0:
    tap.skip_all("needs root (to switch users)")
try:
    NOBODY = pwd.getpwnam("nobody")
    NOGROUP = grp.getgrnam("nogroup")
    DAEMON = pwd.getpwnam("daemon")
except KeyError:
    tap.skip_all("no nobody/nogroup/daemon accounts")

ZONE = """$ORIGIN example.com.
$TTL 60
@ SOA ns1 hm {serial} 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
www A {addr}
"""

CONFIG = """server: {{ listen: ["127.0.0.1@{{port}}"], workers: 2, user: {user} }}
control: {{ socket: "{{dir}}/run/control.sock" }}
zones:
  example.com:
    file: "{{zone:example.com}}"
"""


def www(srv):
    r = srv.query(lib.make_query("www.example.com", "A"), timeout=2.0 * lib.SLOW)
    if r is None or r.rcode() != dns.rcode.NOERROR or not r.answer:
        return None
    return r.answer[0][0].to_text()


def ids(pid):
    """{Uid: [...], Gid: [...], Groups: [...]} of the main thread and every other thread."""
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            st = f.read()
        out.append({k: re.search(r"^%s:\s*(.*)$" % k, st, re.M).group(1).split()
                    for k in ("Uid", "Gid", "Groups")})
    return out


def ctl(sock, *args):
    return lib.run_cmd([GEOCASTCTL, "-s", sock] + list(args), timeout=60 * lib.SLOW)


def open_dir(srv_dir):
    """The test directories are 0700: let the unprivileged user read the files."""
    os.chmod(srv_dir, 0o755)
    for f in os.listdir(srv_dir):
        p = os.path.join(srv_dir, f)
        if os.path.isfile(p):  # not run/, which the daemon may have made already
            os.chmod(p, 0o644)


# Start as root with a pre-written config (the daemon reads the first config as root),
# then everything after binding runs as nobody.
srv = lib.start_geocast(config=CONFIG.format(user="nobody"),
                        zones={"example.com": ZONE.format(serial=1, addr="192.0.2.1")}, wait=False)
open_dir(srv.dir)
SOCK = os.path.join(srv.dir, "run", "control.sock")
ZPATH = os.path.join(srv.dir, "example.com.zone")
try:
    tap.ok(srv.wait_ready("example.com"), "geocastd with server.user: nobody answers")
    tap.is_(www(srv), "192.0.2.1", "query answered")
    threads = ids(srv.proc.pid)
    want_u = [str(NOBODY.pw_uid)] * 4
    want_g = [str(NOBODY.pw_gid)] * 4
    tap.ok(len(threads) > 3, "several threads (%d)" % len(threads))
    tap.is_([t["Uid"] for t in threads], [want_u] * len(threads),
            "every thread: real, effective, saved and fs uid are nobody's")
    tap.is_([t["Gid"] for t in threads], [want_g] * len(threads),
            "every thread: all gids are nobody's group")
    tap.is_([t["Groups"] for t in threads], [[str(NOBODY.pw_gid)]] * len(threads),
            "supplementary groups: only that group (root's are gone)")
    tap.like(srv.stderr(), "running as user nobody (uid %d, gid %d)" % (NOBODY.pw_uid, NOBODY.pw_gid),
             "logged")
    st = os.stat(SOCK)
    tap.is_((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
            (NOBODY.pw_uid, NOBODY.pw_gid, 0o660), "control socket: nobody's, mode 0660")
    dst = os.stat(os.path.dirname(SOCK))
    tap.is_((dst.st_uid, dst.st_gid), (NOBODY.pw_uid, NOBODY.pw_gid),
            "the socket directory it created: nobody's")

    # Reloads run as nobody: a readable zone reloads...
    with open(ZPATH, "w") as f:
        f.write(ZONE.format(serial=2, addr="192.0.2.2"))
    os.chmod(ZPATH, 0o644)
    rc, out, err = ctl(SOCK, "reload")
    tap.is_(rc, 0, "geocastctl reload as nobody")
    tap.is_(www(srv), "192.0.2.2", "the new answer is live")
    # ...a zone only root can read does not: the old data keeps serving.
    with open(ZPATH, "w") as f:
        f.write(ZONE.format(serial=3, addr="192.0.2.3"))
    os.chmod(ZPATH, 0o600)
    rc, out, err = ctl(SOCK, "reload")
    tap.is_(rc, 1, "reload of a zone nobody cannot read fails")
    tap.like(err, "Permission denied", "the error says why (%s)" % err.strip()[:100])
    tap.is_(www(srv), "192.0.2.2", "the old answer keeps coming")
    os.chmod(ZPATH, 0o644)
    rc, out, err = ctl(SOCK, "reload")
    tap.is_((rc, www(srv)), (0, "192.0.2.3"), "readable again: reload works")
    srv.stop_and_check()
    tap.ok(not os.path.exists(SOCK), "the socket file is removed at exit (as nobody)")
finally:
    srv.stop(timeout=2)

# --user and --group on the command line override the config.
srv = lib.start_geocast(config=CONFIG.format(user="nobody"),
                        zones={"example.com": ZONE.format(serial=1, addr="192.0.2.1")}, wait=False)
srv.stop(timeout=2)
open_dir(srv.dir)
argv = lib.TEST_RUNNER + [lib.GEOCASTD, "-c", srv.conf_path, "--user", "daemon", "--group",
                          "nogroup"]
errf = open(srv.stderr_path, "w")
srv.proc = lib.spawn(argv, stderr=errf, stdout=errf, cwd=srv.dir)
errf.close()
try:
    tap.ok(srv.wait_ready("example.com"), "--user daemon --group nogroup: answers")
    t = ids(srv.proc.pid)[0]
    tap.is_((t["Uid"], t["Gid"], t["Groups"]),
            ([str(DAEMON.pw_uid)] * 4, [str(NOGROUP.gr_gid)] * 4, [str(NOGROUP.gr_gid)]),
            "uid daemon, gid nogroup")
    srv.stop_and_check()
finally:
    srv.stop(timeout=2)

# Bad users and groups: a clear error before anything is bound.
for args, want in ((["--user", "no-such-user-xyz"], "server.user: no such user 'no-such-user-xyz'"),
                   (["--check", "--user", "no-such-user-xyz"],
                    "server.user: no such user 'no-such-user-xyz'"),
                   (["--user", "nobody", "--group", "no-such-group-xyz"],
                    "server.group: no such group 'no-such-group-xyz'")):
    rc, out, err = lib.run_cmd(lib.TEST_RUNNER + [lib.GEOCASTD, "-c", srv.conf_path] + args,
                               timeout=30 * lib.SLOW)
    tap.is_(rc, 1, "%s: exit 1" % " ".join(args))
    tap.like(err, want, "%s: says so" % " ".join(args))
tap.done()

#!/usr/bin/python3
"""Man pages (man/): each renders with groff (-ww: every warning) and man -l without a
warning, passes mandoc -T lint when mandoc is installed, and stays true to the programs:
every option in `geocastd --help`, every command and option in `geocastctl --help`, every
configuration key in docs/config.md's tables, and the version."""

import os
import re
import shutil
import subprocess
import sys

ROOT = os.environ.get("GEOCAST_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = os.environ.get("BUILD", "build")
BIN = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
MAN = os.path.join(ROOT, "man")
PAGES = ["geocastd.8", "geocastctl.8", "geocast.yaml.5"]

n = 0
failed = 0


def ok(cond, name):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print("%sok %d - %s" % ("" if cond else "not ", n, name))
    sys.stdout.flush()
    return cond


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60, **kw)


if shutil.which("groff") is None:
    print("1..0 # SKIP groff not installed")
    sys.exit(0)

text = {}
for p in PAGES:
    path = os.path.join(MAN, p)
    if not ok(os.path.isfile(path), "%s exists" % p):
        continue
    r = run(["groff", "-man", "-ww", "-rHY=0", "-Tutf8", path], env=dict(os.environ, LC_ALL="C.UTF-8"))
    ok(r.returncode == 0 and r.stderr == "", "%s: groff -ww renders without warnings %s"
       % (p, r.stderr.strip()[:300]))
    # The text as a reader sees it: hyphens and quotes plain, lines joined.
    t = re.sub(r".\x08", "", r.stdout)
    t = t.replace("\u2010", "-").replace("\u2212", "-").replace("\u2018", "'").replace("\u2019", "'")
    text[p] = re.sub(r"-\n\s+", "-", t)
    if shutil.which("man"):
        r = run(["man", "-l", path], env=dict(os.environ, MANWIDTH="80", MANROFFOPT="-ww",
                                                MAN_KEEP_STDERR="1", LC_ALL="C.UTF-8"))
        ok(r.returncode == 0 and r.stderr.strip() == "" and "NAME" in r.stdout,
           "%s: man -l renders without warnings %s" % (p, r.stderr.strip()[:300]))
    if shutil.which("mandoc"):
        r = run(["mandoc", "-T", "lint", "-W", "warning", path])
        ok(r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "",
           "%s: mandoc -T lint clean %s" % (p, (r.stdout + r.stderr).strip()[:300]))


def words(page):
    return text.get(page, "")


# geocastd --help: every option, long and short.
gd = os.path.join(BIN, "bin", "geocastd")
gc = os.path.join(BIN, "bin", "geocastctl")
if not (os.access(gd, os.X_OK) and os.access(gc, os.X_OK)):
    print("# binaries not built: --help checks skipped")
else:
    h = run([gd, "--help"]).stdout
    opts = sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+|-[a-zA-Z])(?=[ ,\]|])", h)))
    ok(len(opts) >= 14, "geocastd --help lists its options (%d)" % len(opts))
    missing = [o for o in opts if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o),
                                                  words("geocastd.8"))]
    ok(not missing, "geocastd.8 documents every geocastd option %s" % missing)

    h = run([gc, "--help"]).stdout
    cmds = sorted(set(re.findall(r"^  ([a-z][a-z-]+)(?: |$)", h, re.M)))
    ok(len(cmds) >= 13, "geocastctl --help lists its commands (%d: %s)" % (len(cmds), cmds))
    page = words("geocastctl.8")
    missing = [c for c in cmds if not re.search(r"^\s{7}%s(\s|$)" % re.escape(c), page, re.M)]
    ok(not missing, "geocastctl.8 has an entry for every geocastctl command %s" % missing)
    opts = sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+|-[a-zA-Z])(?=[ ,\]|])", h)))
    missing = [o for o in opts if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), page)]
    ok(len(opts) >= 10 and not missing, "geocastctl.8 documents every option %s" % missing)

    v = run([gd, "--version"]).stdout.split()[-1]
    for p in PAGES:
        ok('"geocast %s"' % v in open(os.path.join(MAN, p)).read(), "%s: version %s" % (p, v))

# docs/config.md: every key in a `| key | ...` table row appears in geocast.yaml.5.
cfg = open(os.path.join(ROOT, "docs", "config.md")).read()
keys = sorted(set(re.findall(r"^\| `([a-z_]+)` \|", cfg, re.M)))
ok(len(keys) >= 30, "docs/config.md tables list keys (%d)" % len(keys))
missing = [k for k in keys if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(k),
                                            words("geocast.yaml.5"))]
ok(not missing, "geocast.yaml.5 mentions every configuration key %s" % missing)

print("1..%d" % n)
sys.exit(1 if failed else 0)

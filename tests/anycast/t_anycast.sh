#!/usr/bin/env bash
# Anycast lab: three geocast nodes announce one service address (IPv4 /32 + IPv6 /128)
# over eBGP with BIRD 2 to a router that spreads queries over them with ECMP; two
# clients query the service address. Checks that queries reach all nodes (NSID), and
# measures queries lost and route convergence when a node is drained (SIGTERM), killed
# (SIGKILL) and brought back. See tests/anycast/README.md. TAP output.
#
# Needs root, ip (iproute2) with netns, bird2 (bird, birdc), python3, dig (and kdig with
# ANYCAST_PROBE=kdig).
# Environment:
#   BUILD             build directory (default build)
#   ANYCAST_KEEP=1    keep the work directory (logs, configs) even when all passed
#   ANYCAST_RESULTS   append the measured figures (one JSON line per scenario) to this file
#   ANYCAST_PROBE     the hook's probe tool: dig (default: sees "connection refused") or kdig
#   ANYCAST_RATE      queries per second per client stream (default 200)
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
GEOCASTD=$ROOT/$BUILD/bin/geocastd
HOOK=$ROOT/examples/anycast/geocast-bird-hook.sh
NODE_CONF=$ROOT/examples/anycast/bird-node.conf
ROUTER_CONF=$ROOT/examples/anycast/bird-router.conf
STREAM=$ROOT/tests/anycast/dnsstream.py
PROBE=${ANYCAST_PROBE:-dig}
RATE=${ANYCAST_RATE:-200}

skip() { echo "1..0 # SKIP $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root"
for c in ip bird birdc python3 dig "$PROBE"; do
    command -v "$c" >/dev/null || skip "needs $c"
done
[ -x "$GEOCASTD" ] || skip "geocastd not built ($GEOCASTD)"
# the interpreter itself, not a wrapper (a pyenv shim takes up to a second to start)
PY=$(python3 -c 'import sys; print(sys.executable)') || skip "python3 does not run"
ip netns list >/dev/null 2>&1 || skip "no network namespaces"

SVC4=198.18.0.53
SVC6=fd00:53::53
NODES=(a b c)
TAG=gca$$
R=$TAG-r
nsn() { echo "$TAG-$1"; }     # namespace of node a/b/c or client c1/c2
WORK=$(mktemp -d /tmp/anycast-lab.XXXXXX)
NAMESPACES=()
declare -A PID                  # label -> pid of the processes this test started
T=0
FAILED=0

ok() { T=$((T + 1)); echo "ok $T - $*"; }
nok() { T=$((T + 1)); FAILED=$((FAILED + 1)); echo "not ok $T - $*"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
todo() { T=$((T + 1)); echo "not ok $T - $* # TODO"; }
note() { echo "# $*"; }
now() { echo "$EPOCHREALTIME"; }
bail() { echo "Bail out! $*"; FAILED=$((FAILED + 1)); exit 1; }

# A process is gone when /proc/PID/stat is missing or says zombie ('kill -0' calls
# zombies alive, and orphans are reaped late here).
gone() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    st=${st##*) }
    [ "${st%% *}" = Z ]
}
wait_gone() {  # pid seconds
    local i n=$(awk -v s="$2" 'BEGIN{print int(s*50)}')
    for ((i = 0; i < n; i++)); do gone "$1" && return 0; sleep 0.02; done
    gone "$1"
}
stop_pid() {  # pid: TERM, then KILL after 3 s; reap it
    local p=$1
    [ -n "$p" ] || return 0
    if ! gone "$p"; then
        kill -TERM "$p" 2>/dev/null
        wait_gone "$p" 3 || { kill -KILL "$p" 2>/dev/null; wait_gone "$p" 3; }
    fi
    wait "$p" 2>/dev/null
    return 0
}

stop_group() {  # pids: TERM all, then wait for each (KILL after 4 s); reap them
    local p
    for p in "$@"; do gone "$p" || kill -TERM "$p" 2>/dev/null; kill -CONT "$p" 2>/dev/null; done
    for p in "$@"; do
        wait_gone "$p" 4 || { kill -KILL "$p" 2>/dev/null; wait_gone "$p" 3; }
        wait "$p" 2>/dev/null
    done
}

cleanup() {
    local l p ns a=() b=() c=()
    for l in "${!PID[@]}"; do
        case $l in
            hook*) b+=("${PID[$l]}") ;;
            geocastd*|bird*) c+=("${PID[$l]}") ;;
            *) a+=("${PID[$l]}") ;;
        esac
    done
    # streams and watchers, then the hooks (so that they re-enable nothing), then the
    # daemons together (each geocastd drains for 2 s)
    stop_group "${a[@]}"
    stop_group "${b[@]}"
    stop_group "${c[@]}"
    for ns in "${NAMESPACES[@]}"; do
        # anything still in our namespaces was started by this test (kdig, birdc, dig)
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    if [ "$FAILED" = 0 ] && [ -z "${ANYCAST_KEEP:-}" ]; then
        rm -rf "$WORK"
    else
        echo "# logs and configs kept in $WORK"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---------------------------------------------------------------- geocastd features
HAVE_STATE=0
mkdir -p "$WORK/probe"
printf '$TTL 60\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A %s\n' "$SVC4" \
    >"$WORK/probe/z.zone"
cat >"$WORK/probe/c.yaml" <<EOF
server:
  listen: ["127.0.0.1@53"]
  state_file: $WORK/probe/state
  drain: 2s
zones:
  anycast.test: { file: $WORK/probe/z.zone }
EOF
"$GEOCASTD" -c "$WORK/probe/c.yaml" --check >/dev/null 2>&1 && HAVE_STATE=1
note "geocastd: $("$GEOCASTD" -V 2>&1 | head -1); server.state_file/drain supported: $HAVE_STATE"
note "work directory: $WORK; hook probe: $PROBE; rate: $RATE q/s per client"

# ---------------------------------------------------------------- topology
# router R: to-a/to-b/to-c (198.19.N.1/24, fd00:53:0:N::1/64, N=1..3) and to-c1/to-c2
# (198.19.1M.1/24, fd00:53:0:1M::1/64, M=1,2). Node X: up0 198.19.N.2, lo: service
# addresses. Client cM: up0 198.19.1M.2.
mkns() {
    ip netns add "$1" || bail "ip netns add $1"
    NAMESPACES+=("$1")
    ip -n "$1" link set lo up
    ip netns exec "$1" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
}
link() {  # ns1 if1 ns2 if2
    ip link add "$2" netns "$1" type veth peer name "$4" netns "$3" || bail "veth $1:$2 - $3:$4"
    ip -n "$1" link set "$2" up
    ip -n "$3" link set "$4" up
}
setup_topology() {
    local i n c
    mkns "$R"
    ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1
    for i in 1 2 3; do
        n=${NODES[i-1]}
        mkns "$(nsn $n)"
        link "$R" "to-$n" "$(nsn $n)" up0
        ip -n "$R" addr add "198.19.$i.1/24" dev "to-$n"
        ip -n "$R" addr add "fd00:53:0:$i::1/64" dev "to-$n" nodad
        ip -n "$(nsn $n)" addr add "198.19.$i.2/24" dev up0
        ip -n "$(nsn $n)" addr add "fd00:53:0:$i::2/64" dev up0 nodad
        ip -n "$(nsn $n)" route add default via "198.19.$i.1"
        ip -n "$(nsn $n)" -6 route add default via "fd00:53:0:$i::1"
        ip -n "$(nsn $n)" addr add "$SVC4/32" dev lo
        ip -n "$(nsn $n)" addr add "$SVC6/128" dev lo nodad
    done
    for i in 1 2; do
        c=c$i
        mkns "$(nsn $c)"
        link "$R" "to-$c" "$(nsn $c)" up0
        ip -n "$R" addr add "198.19.1$i.1/24" dev "to-$c"
        ip -n "$R" addr add "fd00:53:0:1$i::1/64" dev "to-$c" nodad
        ip -n "$(nsn $c)" addr add "198.19.1$i.2/24" dev up0
        ip -n "$(nsn $c)" addr add "fd00:53:0:1$i::2/64" dev up0 nodad
        ip -n "$(nsn $c)" route add default via "198.19.1$i.1"
        ip -n "$(nsn $c)" -6 route add default via "fd00:53:0:1$i::1"
    done
}

# ---------------------------------------------------------------- BIRD
# The node configuration is examples/anycast/bird-node.conf with its `define`s replaced;
# the router's is examples/anycast/bird-router.conf up to its per-node sessions.
setdef() {  # file name value
    grep -q "^define $2 " "$1" || bail "no 'define $2' in $1"
    sed -i -E "s|^define $2( +)=.*|define $2\\1= $3;|" "$1"
}
bird_configs() {
    local i n d f
    for i in 1 2 3; do
        n=${NODES[i-1]}; d=$WORK/$n; f=$d/bird.conf
        mkdir -p "$d"
        sed -e "s|^log syslog all;|log \"$d/bird.log\" all;|" "$NODE_CONF" >"$f"
        setdef "$f" NODE_ID "198.19.$i.2"
        setdef "$f" LOCAL_AS "6500$i"
        setdef "$f" PEER_AS 65000
        setdef "$f" PEER4 "198.19.$i.1"
        setdef "$f" PEER6 "fd00:53:0:$i::1"
        setdef "$f" SERVICE4 "$SVC4/32"
        setdef "$f" SERVICE6 "$SVC6/128"
    done
    d=$WORK/router; f=$d/bird.conf
    mkdir -p "$d"
    sed -e '/^# One session per node/,$d' -e "s|^log syslog all;|log \"$d/bird.log\" all;|" \
        "$ROUTER_CONF" >"$f"
    setdef "$f" ROUTER_ID 198.19.1.1
    setdef "$f" LOCAL_AS 65000
    for i in 1 2 3; do
        n=${NODES[i-1]}
        cat >>"$f" <<EOF
protocol bgp node_${n}4 from anycast_node {
	neighbor 198.19.$i.2 as 6500$i;
	ipv4 { import where net = $SVC4/32; export none; };
}
protocol bgp node_${n}6 from anycast_node {
	neighbor fd00:53:0:$i::2 as 6500$i;
	ipv6 { import where net = $SVC6/128; export none; };
}
EOF
    done
    for f in "$WORK"/*/bird.conf; do
        bird -p -c "$f" 2>"$f.err" || { cat "$f.err"; bail "bird rejects $f"; }
    done
}
start_bird() {  # label ns dir
    ip netns exec "$2" bird -f -c "$3/bird.conf" -s "$3/bird.ctl" >"$3/bird.out" 2>&1 &
    PID[bird-$1]=$!
}

# ---------------------------------------------------------------- geocastd + hook
geocast_configs() {
    local n d
    cat >"$WORK/anycast.test.zone" <<EOF
\$ORIGIN anycast.test.
\$TTL 60
@    SOA  ns1 hostmaster 1 3600 600 86400 60
@    NS   ns1
ns1  A    $SVC4
ns1  AAAA $SVC6
www  A    192.0.2.80
www  AAAA 2001:db8::80
EOF
    for n in "${NODES[@]}"; do
        d=$WORK/$n
        {
            echo "server:"
            echo "  listen: [\"0.0.0.0@53\", \"::@53\"]   # wildcard: replies use IP_PKTINFO"
            echo "  workers: 1"
            echo "  identity: node-$n"
            if [ $HAVE_STATE = 1 ]; then
                echo "  state_file: $d/state"
                echo "  drain: 2s"
            fi
            echo "control: { socket: $d/ctl.sock }"
            echo "zones:"
            echo "  anycast.test: { file: $WORK/anycast.test.zone }"
        } >"$d/geocast.yaml"
        "$GEOCASTD" -c "$d/geocast.yaml" --check >"$d/check.out" 2>&1 ||
            { cat "$d/check.out"; bail "geocastd --check $d/geocast.yaml"; }
    done
}
start_geocastd() {  # node
    local d=$WORK/$1
    ip netns exec "$(nsn $1)" "$GEOCASTD" -c "$d/geocast.yaml" >>"$d/geocastd.log" 2>&1 &
    PID[geocastd-$1]=$!
}
start_hook() {  # node
    local d=$WORK/$1 sf=""
    [ $HAVE_STATE = 1 ] && sf=$d/state
    ip netns exec "$(nsn $1)" "$HOOK" -s "$d/bird.ctl" -p "anycast4 anycast6" -f "$sf" \
        -a "$SVC4" -z anycast.test -t "$PROBE" -i 0.2 -F 2 -r 1 >>"$d/hook.log" 2>&1 &
    PID[hook-$1]=$!
}

# ---------------------------------------------------------------- observation
gateways() {  # family(4|6): the router's next hops for the service address, as devs
    local p=$SVC4/32
    [ "$1" = 6 ] && p=$SVC6/128
    ip -n "$R" -"$1" route show "$p" 2>/dev/null | grep -o 'dev to-[a-z0-9]*' |
        sed 's/dev to-//' | sort | tr '\n' ' ' | sed 's/ $//'
}
wait_gateways() {  # family want timeout_s
    local end=$(( ${EPOCHREALTIME/./} + ${3}000000 ))
    while (( ${EPOCHREALTIME/./} < end )); do
        [ "$(gateways "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    return 1
}
start_watch() {  # label family
    local p=$SVC4/32
    [ "$2" = 6 ] && p=$SVC6/128
    "$PY" "$STREAM" watch --ns "$R" --prefix "$p" >"$WORK/$1.log" 2>&1 &
    PID[$1]=$!
}
stop() { stop_pid "${PID[$1]}"; unset "PID[$1]"; }
start_stream() {  # label client family duration
    local s=$SVC4
    [ "$3" = 6 ] && s=$SVC6
    rm -f "$WORK/$1.ready"
    ip netns exec "$(nsn $2)" "$PY" "$STREAM" stream --server "$s" --rate "$RATE" \
        --duration "$4" --timeout 1 --qname www.anycast.test --log "$WORK/$1.queries" \
        --ready "$WORK/$1.ready" >"$WORK/$1.json" 2>"$WORK/$1.err" &
    PID[$1]=$!
}
wait_ready() {  # labels...: wait (up to 10 s) until these streams have started sending
    local l i
    for l in "$@"; do
        for ((i = 0; i < 500; i++)); do [ -s "$WORK/$l.ready" ] && break; sleep 0.02; done
        [ -s "$WORK/$l.ready" ] || bail "stream $l did not start"
    done
}
finish_stream() { wait "${PID[$1]}"; unset "PID[$1]"; }
jget() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }

# analyze label fault_time node event: prints a JSON line with the scenario's figures
analyze() {
    "$PY" - "$WORK" "$1" "$2" "$3" "$4" <<'EOF'
import json, sys
work, label, tf, node, event = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
out = {"scenario": label, "event": event, "node": "node-" + node, "t_event": tf}
for fam in ("4", "6"):
    s = json.load(open("%s/%s-v%s.json" % (work, label, fam)))
    r = {"sent": s["sent"], "answered": s["answered"], "lost": s["lost"],
         "wrong_source": s["wrong_source"], "nsid": s["nsid"]}
    lt = [round(t - tf, 3) for t in s["lost_times"]]
    r["lost_window_s"] = [lt[0], lt[-1]] if lt else None
    ls = s["last_seen"].get("node-" + node)
    fs = s["first_seen"].get("node-" + node)
    r["node_last_seen_s"] = round(ls - tf, 3) if ls else None
    # first query sent after the event that the node answered (recovery)
    after = []
    for line in open("%s/%s-v%s.queries" % (work, label, fam)):
        t, st, nsid, _ = line.split()
        if float(t) >= tf and nsid == "node-" + node:
            after.append(float(t))
    r["node_first_after_s"] = round(after[0] - tf, 3) if after else None
    r["node_answers_after"] = len(after)
    # route changes seen on the router
    ch = []
    for line in open("%s/%s-route%s.log" % (work, label, fam)):
        t, gws = line.split(None, 1) if " " in line.strip() else (line.strip(), "")
        ch.append((float(t), gws.strip()))
    changes = [(round(t - tf, 3), g) for t, g in ch[1:] if t >= tf]
    r["route_before"] = ch[0][1] if ch else None
    r["route_changes"] = changes
    r["route_changed_s"] = changes[0][0] if changes else None
    out["v" + fam] = r
# the hook's decisions after the event
hl = []
for line in open("%s/%s/hook.log" % (work, node)):
    p = line.split(None, 1)
    try:
        t = float(p[0])
    except (ValueError, IndexError):
        continue
    if t >= tf:
        hl.append([round(t - tf, 3), p[1].strip()])
out["hook"] = hl[:3]
print(json.dumps(out))
EOF
}

record() {  # json line
    echo "$1" >>"$WORK/results.jsonl"
    [ -n "${ANYCAST_RESULTS:-}" ] && echo "$1" >>"$ANYCAST_RESULTS"
    "$PY" - "$1" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
for fam in ("v4", "v6"):
    r = d[fam]
    if d["event"] in ("restart", "undrain"):
        seen = "first answered at %s s (%d answers)" % (r["node_first_after_s"], r["node_answers_after"])
    else:
        seen = "last answered at %s s" % r["node_last_seen_s"]
    route = ", ".join("+%.3f s [%s]" % (t, g) for t, g in r["route_changes"][:4]) or "unchanged"
    print("# %-9s %s %s: sent %d lost %d (window %s s) wrong-source %d; router route %s; "
          "%s %s; nsid %s" % (
        d["scenario"], fam, d["event"], r["sent"], r["lost"], r["lost_window_s"], r["wrong_source"],
        route, d["node"], seen, r["nsid"]))
for t, m in d["hook"]:
    print("# %-9s hook +%.3f s: %s" % (d["scenario"], t, m))
EOF
}

# run a scenario: two 10 s streams (c1 over IPv4, c2 over IPv6) and route watchers;
# `$2` runs at +3 s (its time is the reference); prints the figures.
scenario() {  # label action node event duration delay
    local label=$1 action=$2 node=$3 event=$4 dur=${5:-10} delay=${6:-3} tf
    start_watch "$label-route4" 4
    start_watch "$label-route6" 6
    for ((i = 0; i < 250; i++)); do
        [ -s "$WORK/$label-route4.log" ] && [ -s "$WORK/$label-route6.log" ] && break
        sleep 0.02
    done
    start_stream "$label-v4" c1 4 "$dur"
    start_stream "$label-v6" c2 6 "$dur"
    wait_ready "$label-v4" "$label-v6"
    sleep "$delay"
    tf=$(now)
    $action "$node"
    finish_stream "$label-v4"
    finish_stream "$label-v6"
    sleep 0.2
    stop "$label-route4"
    stop "$label-route6"
    RES=$(analyze "$label" "$tf" "$node" "$event")
}
fig() { jget <(echo "$RES") "$1"; }

# ================================================================ run
t_start=$(now)
check "examples/anycast/bird-node.conf parses (bird -p)" bird -p -c "$NODE_CONF"
check "examples/anycast/bird-router.conf parses (bird -p)" bird -p -c "$ROUTER_CONF"
quiet() { "$@" >/dev/null; }
check "examples/anycast/geocast.yaml is valid (geocastd --check)" \
    quiet "$GEOCASTD" -c "$ROOT/examples/anycast/geocast.yaml" --check -q
setup_topology
bird_configs
geocast_configs
start_bird router "$R" "$WORK/router"
for n in "${NODES[@]}"; do
    start_bird "$n" "$(nsn $n)" "$WORK/$n"
    start_geocastd "$n"
    start_hook "$n"
done

f0=$FAILED
check "router learns the service /32 from all three nodes (ECMP)" wait_gateways 4 "a b c" 30
check "router learns the service /128 from all three nodes (ECMP)" wait_gateways 6 "a b c" 10
[ "$FAILED" = "$f0" ] || bail "the lab did not come up: router has [$(gateways 4)] / [$(gateways 6)]; logs in $WORK"
note "router: $(ip -n "$R" -4 route show $SVC4/32 | tr -s '\n\t ' ' ')"
note "lab up after $(awk -v a="$(now)" -v b="$t_start" 'BEGIN{printf "%.1f", a-b}') s"

# ---- (a) reachability, NSID, ECMP spread
out=$(ip netns exec "$(nsn c1)" dig @$SVC4 +nsid +norec +time=1 +tries=2 www.anycast.test A 2>&1)
check "client gets an answer from the IPv4 service address" grep -q "192.0.2.80" <<<"$out"
check "NSID names the node that answered" grep -qE 'NSID: .*"node-[abc]"' <<<"$out"
out=$(ip netns exec "$(nsn c2)" dig @$SVC6 +short +time=1 +tries=2 id.server CH TXT 2>&1)
check "CH TXT id.server over IPv6 names a node ($out)" grep -qE '^"node-[abc]"$' <<<"$out"
start_stream spread-v4 c1 4 2
start_stream spread-v6 c2 6 2
finish_stream spread-v4
finish_stream spread-v6
for fam in 4 6; do
    f=$WORK/spread-v$fam.json
    note "spread v$fam: $(jget "$f" '"sent %d lost %d nsid %s" % (d["sent"], d["lost"], d["nsid"])')"
    check "v$fam: $(jget "$f" 'd["sent"]') queries from fresh source ports all answered" \
        test "$(jget "$f" 'd["lost"]')" = 0
    check "v$fam: replies come from the service address (pktinfo)" test "$(jget "$f" 'd["wrong_source"]')" = 0
    check "v$fam: ECMP spreads queries over all three nodes" \
        test "$(jget "$f" 'sorted(k for k, v in d["nsid"].items() if v >= 0.1 * d["sent"])')" = "['node-a', 'node-b', 'node-c']"
done

# ---- (b) graceful stop of node-b: SIGTERM, drain 2 s
term() {  # SIGTERM, and note when the process is gone (in the background)
    local p=${PID[geocastd-$1]}
    kill -TERM "$p"
    ( while ! gone "$p"; do sleep 0.01; done; now >"$WORK/$1/exit-time" ) &
    PID[exitwatch-$1]=$!
}
scenario drain term b "SIGTERM (drain 2s)"
p=${PID[geocastd-b]}
wait_gone "$p" 5; wait "$p"; rc=$?
unset "PID[geocastd-b]"
stop exitwatch-b
tf=$(jget <(echo "$RES") 'd["t_event"]')
exit_after=$(awk -v a="$(cat "$WORK/b/exit-time" 2>/dev/null)" -v b="$tf" 'BEGIN{printf "%.3f", a-b}')
note "graceful: geocastd exited $exit_after s after SIGTERM (rc $rc)"
RES=$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); d["exit_after_s"]=float(sys.argv[2]); print(json.dumps(d))' "$RES" "$exit_after")
record "$RES"
check "graceful: geocastd exits 0 after SIGTERM (rc $rc)" test "$rc" = 0
hookwhy=$(fig 'd["hook"][0][1] if d["hook"] else "nothing"')
if [ $HAVE_STATE = 1 ]; then
    check "graceful: the hook withdraws because the state file says down ($hookwhy)" \
        grep -q "state file .*'down'" <<<"$hookwhy"
fi
if [ $HAVE_STATE = 1 ]; then
    check "graceful: geocastd kept serving for the drain time (exited after $exit_after s)" \
        awk -v x="$exit_after" 'BEGIN{exit !(x >= 1.9 && x < 4)}'
fi
for fam in v4 v6; do
    lost=$(fig "d['$fam']['lost']"); sent=$(fig "d['$fam']['sent']")
    rt=$(fig "d['$fam']['route_changed_s']")
    if [ $HAVE_STATE = 1 ]; then
        check "graceful $fam: lost $lost of $sent queries (at most 3)" test "$lost" -le 3
    else
        note "graceful $fam: geocastd has no server.drain yet: lost $lost of $sent"
        todo "graceful $fam: drain loses at most 3 queries (needs server.drain)"
    fi
    check "graceful $fam: router drops node-b (route changed after $rt s)" \
        test "$(fig "d['$fam']['route_changes'][-1][1] if d['$fam']['route_changes'] else ''")" = "a c"
    check "graceful $fam: node-b stops answering, node-a and node-c carry the load" \
        "$PY" -c 'import json,sys; d=json.loads(sys.argv[1])[sys.argv[2]]
s=d["nsid"]; sys.exit(not (d["node_last_seen_s"] is not None and d["node_last_seen_s"] < 3.0
    and s.get("node-a",0) > 0.2*d["sent"] and s.get("node-c",0) > 0.2*d["sent"]))' "$RES" "$fam"
done
if [ $HAVE_STATE = 1 ]; then
    check "graceful: the route moved before geocastd stopped answering" \
        "$PY" -c 'import json,sys; d=json.loads(sys.argv[1])
sys.exit(not all(d[f]["route_changed_s"] is not None and d[f]["node_last_seen_s"] is not None
                 and d[f]["route_changed_s"] < 2.0 for f in ("v4","v6")))' "$RES"
fi

# ---- bring node-b back (no stream)
t0=$(now)
start_geocastd b
check "node-b back: route returns" wait_gateways 4 "a b c" 15
note "node-b: route back $(awk -v a="$(now)" -v b="$t0" 'BEGIN{printf "%.2f", a-b}') s after geocastd started"
wait_gateways 6 "a b c" 5

# ---- (c) hard kill of node-c: SIGKILL, the hook's probe notices
killit() { kill -KILL "${PID[geocastd-$1]}"; }
scenario kill killit c "SIGKILL" 2>>"$WORK/shell.err"   # (bash's "Killed" notice)
record "$RES"
p=${PID[geocastd-c]}; wait_gone "$p" 2; wait "$p" 2>/dev/null; unset "PID[geocastd-c]"
for fam in v4 v6; do
    lost=$(fig "d['$fam']['lost']"); sent=$(fig "d['$fam']['sent']")
    rt=$(fig "d['$fam']['route_changed_s']")
    max=$(( RATE / 3 ))   # a third of one second of queries
    [ "$PROBE" = kdig ] && max=$(( RATE * 3 / 3 ))
    check "kill $fam: lost $lost of $sent queries (at most $max)" test "$lost" -le "$max"
    check "kill $fam: router drops node-c (route changed after $rt s)" \
        test "$(fig "d['$fam']['route_changes'][-1][1] if d['$fam']['route_changes'] else ''")" = "a b"
    check "kill $fam: node-a and node-b carry the load" \
        "$PY" -c 'import json,sys; d=json.loads(sys.argv[1])[sys.argv[2]]
s=d["nsid"]; sys.exit(not (s.get("node-a",0) > 0.2*d["sent"] and s.get("node-b",0) > 0.2*d["sent"]))' "$RES" "$fam"
done

# ---- (d) bring node-c back during a stream
startit() { start_geocastd "$1"; }
scenario back startit c "restart" 8 1
record "$RES"
for fam in v4 v6; do
    lost=$(fig "d['$fam']['lost']"); sent=$(fig "d['$fam']['sent']")
    rt=$(fig "d['$fam']['route_changed_s']")
    check "recovery $fam: lost $lost of $sent queries (none)" test "$lost" = 0
    check "recovery $fam: route returns to all three nodes (after $rt s)" \
        test "$(fig "d['$fam']['route_changes'][-1][1] if d['$fam']['route_changes'] else ''")" = "a b c"
    check "recovery $fam: node-c answers again ($(fig "d['$fam']['node_answers_after']") answers)" \
        test "$(fig "d['$fam']['node_answers_after']")" -gt 0
done

# ---- (g) node-c's geocastd hangs (SIGSTOP): nothing refuses, the probes time out
hang() { kill -STOP "${PID[geocastd-$1]}"; }
scenario hang hang c "SIGSTOP (hung)" 8 2
for fam in v4 v6; do
    lost=$(fig "d['$fam']['lost']"); sent=$(fig "d['$fam']['sent']")
    rt=$(fig "d['$fam']['route_changed_s']")
    max=$(( RATE * 2 / 3 ))   # the node's share of 2 s of queries
    check "hang $fam: lost $lost of $sent queries (at most $max)" test "$lost" -le "$max"
    check "hang $fam: router drops node-c (route changed after $rt s)" \
        test "$(fig "d['$fam']['route_changes'][-1][1] if d['$fam']['route_changes'] else ''")" = "a b"
done
t0=$(now)
kill -CONT "${PID[geocastd-c]}"
check "hang: node-c resumed (SIGCONT), route returns" wait_gateways 4 "a b c" 10
back=$(awk -v a="$(now)" -v b="$t0" 'BEGIN{printf "%.3f", a-b}')
note "hang: route back $back s after SIGCONT"
RES=$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); d["route_back_after_cont_s"]=float(sys.argv[2]); print(json.dumps(d))' "$RES" "$back")
record "$RES"
wait_gateways 6 "a b c" 5

# ---- (f) BIRD on node-b killed and restarted: its anycast protocols start disabled,
# the hook's once-a-second re-assertion enables them again
birdbounce() {
    kill -KILL "${PID[bird-$1]}"
    wait_gone "${PID[bird-$1]}" 2; wait "${PID[bird-$1]}" 2>/dev/null
    sleep 0.5
    start_bird "$1" "$(nsn $1)" "$WORK/$1"
}
scenario birdkill birdbounce b "BIRD SIGKILL, restart after 0.5 s" 8 2 2>>"$WORK/shell.err"
record "$RES"
for fam in v4 v6; do
    lost=$(fig "d['$fam']['lost']"); sent=$(fig "d['$fam']['sent']")
    ch=$(fig "' '.join('%s:[%s]' % (t, g) for t, g in d['$fam']['route_changes'])")
    check "BIRD restart $fam: lost $lost of $sent queries (none)" test "$lost" = 0
    check "BIRD restart $fam: route drops node-b and returns ($ch)" \
        "$PY" -c 'import json,sys; d=json.loads(sys.argv[1])[sys.argv[2]]["route_changes"]
sys.exit(not (len(d) >= 2 and d[0][1] == "a c" and d[-1][1] == "a b c"))' "$RES" "$fam"
done

# ---- (e) operator drain of node-a with geocastctl (when it has the command)
CTL=$ROOT/$BUILD/bin/geocastctl
if [ $HAVE_STATE = 1 ] && "$CTL" --help 2>&1 | grep -q '^ *drain '; then
    ctl_drain() { "$CTL" -s "$WORK/$1/ctl.sock" drain >>"$WORK/$1/ctl.out" 2>&1; }
    ctl_undrain() { "$CTL" -s "$WORK/$1/ctl.sock" undrain >>"$WORK/$1/ctl.out" 2>&1; }
    scenario opdrain ctl_drain a "geocastctl drain" 5 2
    record "$RES"
    for fam in v4 v6; do
        lost=$(fig "d['$fam']['lost']"); sent=$(fig "d['$fam']['sent']")
        rt=$(fig "d['$fam']['route_changed_s']")
        check "geocastctl drain $fam: lost $lost of $sent queries (none)" test "$lost" = 0
        check "geocastctl drain $fam: router drops node-a (after $rt s), node-a stops answering" \
            "$PY" -c 'import json,sys; d=json.loads(sys.argv[1])[sys.argv[2]]
sys.exit(not (d["route_changes"] and d["route_changes"][-1][1] == "b c"
              and d["node_last_seen_s"] is not None and d["node_last_seen_s"] < 1.0))' "$RES" "$fam"
    done
    check "geocastctl drain: node-a's geocastd is still running" test -n "$(gone "${PID[geocastd-a]}" || echo running)"
    scenario undrain ctl_undrain a "undrain" 4 1
    record "$RES"
    for fam in v4 v6; do
        lost=$(fig "d['$fam']['lost']"); sent=$(fig "d['$fam']['sent']")
        rt=$(fig "d['$fam']['route_changed_s']")
        check "geocastctl undrain $fam: lost $lost of $sent, route back to all three (after $rt s), node-a answers" \
            "$PY" -c 'import json,sys; d=json.loads(sys.argv[1])[sys.argv[2]]
sys.exit(not (d["lost"] == 0 and d["route_changes"] and d["route_changes"][-1][1] == "a b c"
              and d["node_answers_after"] > 0))' "$RES" "$fam"
    done
else
    note "geocastctl has no drain command: operator drain not tested"
fi

note "total $(awk -v a="$(now)" -v b="$t_start" 'BEGIN{printf "%.1f", a-b}') s"
echo "1..$T"
[ "$FAILED" = 0 ]

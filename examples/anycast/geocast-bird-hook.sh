#!/usr/bin/env bash
# geocast-bird-hook.sh: announce this node's anycast service address through BIRD only
# while geocast should serve it.
#
# Every INTERVAL it decides whether the node should be announced:
#   - the state file (server.state_file) must say "up" (geocastd writes "up" once zones
#     and data are loaded and its sockets are bound, "down" when it drains or stops);
#     a missing or unreadable file means down;
#   - and, when a probe address is given, geocastd must answer an SOA query for ZONE with
#     NOERROR there (dig or kdig, 1 s timeout, no retry). One probe starts every INTERVAL
#     in the background, so a probe waiting for its timeout does not delay the next one,
#     and each result is acted on as soon as it arrives. FAILS failures in a row
#     withdraw; with dig, "connection refused" (ICMP port unreachable: nothing listens,
#     the daemon died) withdraws at once. kdig does not report refusals on UDP, so with
#     kdig a dead daemon is noticed after 1 s + (FAILS-1) x INTERVAL. Until a probe has
#     answered, the node is not announced.
# Then it runs `birdc -s SOCKET enable|disable PROTOCOL...` — immediately when the
# decision changes, and again every REASSERT seconds otherwise, so a BIRD that restarted
# (its anycast protocols start disabled) is brought back to the wanted state.
#
# Usage: geocast-bird-hook.sh [options]
#   -s SOCKET     BIRD control socket              (default /run/bird/bird.ctl)
#   -p "P1 P2"    BIRD protocols to enable/disable (default "anycast4 anycast6")
#   -f FILE       geocast state file; "" = do not read one (default /run/geocast/state)
#   -a ADDRESS    probe geocastd at this address (the service address); "" = no probe
#                 (default "")
#   -P PORT       probe port                       (default 53)
#   -z ZONE       probe query: ZONE SOA            (default ".")
#   -t TOOL       probe with dig or kdig           (default dig when installed, else kdig)
#   -i SECONDS    check interval, may be fractional (default 1)
#   -F N          probe failures in a row before withdrawing (default 2)
#   -r SECONDS    re-assert the state to BIRD at least this often (default 1)
#   -1            check once (one probe, synchronously; any failure withdraws), tell
#                 BIRD, exit 0 when announced, 1 when withdrawn — for a supervisor
#                 that runs it every second
# Logs to stdout, one line per decision change ("<epoch seconds> announce: ok",
# "<epoch seconds> withdraw: <why>"), per first probe failure and when birdc starts or
# stops failing.
# Needs bash 5, birdc (bird2), and dig (bind9-dnsutils) or kdig (knot-dnsutils) to probe.
set -u

SOCKET=/run/bird/bird.ctl
PROTOCOLS="anycast4 anycast6"
STATE_FILE=/run/geocast/state
PROBE_ADDR=""
PROBE_PORT=53
ZONE=.
TOOL=""
INTERVAL=1
FAILS=2
REASSERT=1
ONCE=0

usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while getopts "s:p:f:a:P:z:t:i:F:r:1h" o; do
    case $o in
        s) SOCKET=$OPTARG ;;
        p) PROTOCOLS=$OPTARG ;;
        f) STATE_FILE=$OPTARG ;;
        a) PROBE_ADDR=$OPTARG ;;
        P) PROBE_PORT=$OPTARG ;;
        z) ZONE=$OPTARG ;;
        t) TOOL=$OPTARG ;;
        i) INTERVAL=$OPTARG ;;
        F) FAILS=$OPTARG ;;
        r) REASSERT=$OPTARG ;;
        1) ONCE=1 ;;
        *) usage ;;
    esac
done
[ $OPTIND -gt $# ] || usage
if [ -z "$TOOL" ]; then
    if command -v dig >/dev/null; then TOOL=dig; else TOOL=kdig; fi
fi
case $TOOL in dig|kdig) ;; *) echo "-t: dig or kdig" >&2; exit 2 ;; esac
us() { awk -v s="$1" 'BEGIN{printf "%d", s * 1000000}'; }   # seconds -> microseconds
interval_us=$(us "$INTERVAL")
reassert_us=$(us "$REASSERT")
[ "$interval_us" -gt 0 ] && [ "$FAILS" -ge 1 ] 2>/dev/null || usage

log() { echo "$EPOCHREALTIME $*"; }

# One probe: prints "ok", "refused" or "fail <reason>".
probe_once() {
    local out
    if [ "$TOOL" = dig ]; then
        out=$(dig @"$PROBE_ADDR" -p "$PROBE_PORT" +time=1 +tries=1 +norecurse "$ZONE" SOA 2>&1)
    else
        out=$(kdig @"$PROBE_ADDR" -p "$PROBE_PORT" +time=1 +retry=0 +norecurse "$ZONE" SOA 2>&1)
    fi
    if [[ $out == *"status: NOERROR"* ]]; then
        echo ok
    elif [[ $out == *"connection refused"* ]]; then
        echo refused
    else
        out=$(grep -m1 -E 'WARNING|status:|error|timed out|no servers' <<<"$out" | tr -s ' \t' ' ')
        echo "fail ${out:-no answer}"
    fi
}

healthy=0       # what the probes say: 1 geocastd answers, 0 it does not (or not yet)
fails=0         # probe failures in a row
probe_why="no probe answered yet"

probe_result() {  # a probe's result line
    case $1 in
        ok) fails=0; healthy=1 ;;
        refused) fails=$FAILS; healthy=0; probe_why="probe: connection refused" ;;
        *)  fails=$((fails + 1))
            probe_why="probe failed $fails/$FAILS: ${1#fail }"
            [ "$fails" = 1 ] && [ "$healthy" = 1 ] && [ "$ONCE" = 0 ] && log "$probe_why"
            [ "$fails" -ge "$FAILS" ] && healthy=0 ;;
    esac
}

decide() {  # sets want (up|down) and why
    why="ok"
    if [ -n "$STATE_FILE" ]; then
        local s=""
        { read -r s <"$STATE_FILE"; } 2>/dev/null
        if [ "$s" != up ]; then
            want=down; why="state file ${STATE_FILE}: '${s:-missing}'"; return
        fi
    fi
    if [ -n "$PROBE_ADDR" ] && [ "$healthy" = 0 ]; then
        want=down; why=$probe_why; return
    fi
    want=up
}

bird_err=""
tell_bird() {  # enable|disable; on failure sets bird_err
    local p out rc=0
    for p in $PROTOCOLS; do
        out=$(birdc -s "$SOCKET" "$1" "$p" 2>&1)
        case $out in
            *"$p: enabled"*|*"$p: disabled"*|*"already enabled"*|*"already disabled"*) ;;
            *) rc=1; bird_err="birdc $1 $p: $(echo "$out" | tr -s '\n' ' ')" ;;
        esac
    done
    return $rc
}

if [ "$ONCE" = 1 ]; then
    if [ -n "$PROBE_ADDR" ]; then
        r=$(probe_once)
        if [ "$r" = ok ]; then healthy=1; else probe_why="probe: $r"; fi
    fi
    decide
    if [ "$want" = up ]; then tell_bird enable; else tell_bird disable; fi || echo "$bird_err" >&2
    [ "$want" = up ]
    exit
fi

# Each probe leaves its result in a file and writes a byte to a FIFO, so that the loop
# can wait for "the next tick or a result, whichever comes first".
DIR=$(mktemp -d "${TMPDIR:-/tmp}/geocast-bird-hook.XXXXXX") || exit 1
trap 'rm -rf "$DIR"' EXIT
trap 'exit 0' TERM INT HUP
mkfifo "$DIR/wake" || exit 1
exec {WAKE}<>"$DIR/wake"
shopt -s nullglob
seq=0
last_seq=0
collect() {  # act on the finished probes, oldest first; a result older than one already
    local f r n  # taken (a probe that waited for its timeout) is stale and only counted
    for f in "$DIR"/res.*; do
        { read -r r <"$f"; } 2>/dev/null
        rm -f "$f"
        n=$((10#${f##*.}))
        (( n < last_seq )) && continue
        last_seq=$n
        probe_result "$r"
    done
}

announced=""
last_told=0
bird_ok=1
next_tick=${EPOCHREALTIME/./}
while :; do
    t=${EPOCHREALTIME/./}
    if (( t >= next_tick )); then
        next_tick=$((next_tick + interval_us))
        (( next_tick <= t )) && next_tick=$((t + interval_us))
        running=("$DIR"/tmp.*)       # probes still waiting for an answer
        if [ -n "$PROBE_ADDR" ] && [ ${#running[@]} -lt 10 ]; then
            seq=$((seq + 1))
            printf -v f '%010d' "$seq"
            ( probe_once >"$DIR/tmp.$f" && mv "$DIR/tmp.$f" "$DIR/res.$f"; echo >&"$WAKE" ) 2>/dev/null &
        fi
    fi
    collect
    decide
    if [ "$want" != "$announced" ]; then
        if [ "$want" = up ]; then log "announce: $why"; else log "withdraw: $why"; fi
        announced=$want
        last_told=0
    fi
    # tell BIRD right after a change, and again every REASSERT seconds
    if (( t - last_told >= reassert_us )); then
        if [ "$want" = up ]; then tell_bird enable; else tell_bird disable; fi
        rc=$?
        if [ $rc != 0 ] && [ $bird_ok = 1 ]; then bird_ok=0; log "$bird_err (retrying)"
        elif [ $rc = 0 ] && [ $bird_ok = 0 ]; then bird_ok=1; log "birdc works again"; fi
        last_told=$t
    fi
    # wait for the next tick or a probe result (collected at the top of the loop)
    w=$(( next_tick - ${EPOCHREALTIME/./} ))
    (( w < 1000 )) && w=1000
    printf -v w '%d.%06d' $((w / 1000000)) $((w % 1000000))
    read -r -t "$w" _ <&"$WAKE"
done

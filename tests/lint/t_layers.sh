#!/usr/bin/env bash
# Include direction (STYLE.md §1): each module may include only the modules below it.
#   common <- dns <- zone;  common <- geo;  dns <- conf;  zone, geo, conf <- policy <- server <- ctl
cd "$(dirname "$0")/../.."
declare -A allowed=(
    [common]="common"
    [dns]="common dns"
    [zone]="common dns zone"
    [geo]="common geo"
    [conf]="common dns conf"
    [policy]="common dns zone geo conf policy"
    [server]="common dns zone geo conf policy server"
    [ctl]="common dns zone geo conf policy server ctl"
)
n=0
fail=0
for mod in common dns zone geo conf policy server ctl; do
    [ -d "src/$mod" ] || continue
    n=$((n + 1))
    bad=$(grep -HnoE '^#include "[a-z_]+/' src/"$mod"/*.[ch] 2>/dev/null |
        while IFS=: read -r file line inc; do
            dep=${inc#\#include \"}
            dep=${dep%/}
            case " ${allowed[$mod]} " in *" $dep "*) ;; *) echo "$file:$line includes $dep/" ;; esac
        done)
    if [ -z "$bad" ]; then
        echo "ok $n - src/$mod includes only: ${allowed[$mod]}"
    else
        echo "not ok $n - src/$mod breaks the include direction"
        echo "$bad" | sed 's/^/#   /'
        fail=1
    fi
done
echo "1..$n"
exit $fail

#!/usr/bin/env bash
# A/B of the library's sweep by process source (SWEEP_PROCESSES=procfs|bpf|auto) against a
# bare kill(-1) as the user, interleaved run by run. Root only; creates its own throw-away
# user and signals only that user's processes. Prints the median (and every run) in ms.
#
# Usage: sudo bench/sweep-ab.sh      (env: SIZES="100 1000" REPS=11 METHODS="procfs bpf auto kill-1")
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "sweep-ab.sh: run as root" >&2; exit 3; }
cd "$(dirname "$0")/.."
cargo build --quiet --release --example sweep
SWEEP=$PWD/target/release/examples/sweep
METHODS=${METHODS:-procfs bpf auto kill-1}
NAME=lutab$$
useradd -M -s /usr/sbin/nologin "$NAME"
U=$(id -u "$NAME")
G=$(id -g "$NAME")
trap 'setpriv --reuid=$U --regid=$G --clear-groups kill -KILL -1 2>/dev/null || true; sleep 1; userdel "$NAME"' EXIT
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }
for n in ${SIZES:-100 1000}; do
    declare -A t=()
    for _ in $(seq "${REPS:-11}"); do
        for m in $METHODS; do
            coproc SP { "$SWEEP" spawn "$U" "$n"; }
            spawner=$SP_PID
            read -r _ <&"${SP[0]}"
            t0=$EPOCHREALTIME
            if [ "$m" = kill-1 ]; then
                setpriv --reuid="$U" --regid="$G" --clear-groups kill -KILL -1 2>/dev/null || true
            else
                SWEEP_PROCESSES=$m "$SWEEP" kill "$U" >/dev/null
            fi
            "$SWEEP" wait "$U" 60000
            t[$m]+="$(ms_since "$t0") "
            wait "$spawner" 2>/dev/null || true
        done
    done
    for m in $METHODS; do
        # shellcheck disable=SC2086
        med=$(printf '%s\n' ${t[$m]} | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
        echo "N=$n $m: median $med ms  [${t[$m]}]"
    done
    unset t
done

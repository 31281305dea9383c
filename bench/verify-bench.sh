#!/usr/bin/env bash
# What one run's verification costs on a busy machine: BEFORE (a commit, default b9c30fe,
# where verification listed the whole machine on every poll) against the working tree
# (which polls only the planned sessions and the planned accounts' processes), side by
# side in one run, A B A B ...
#
# Runs as root. Creates two throw-away users (deleted on exit): CROWD owns CROWD_N idle
# processes that nothing targets; TARGET owns TARGET_N idle processes and no session, so
# each run is the process fallback followed by verification. Each rep starts TARGET's
# processes again and runs one binary:
#
#   logoff-users TARGET --source utmp --utmp EMPTY --process-source procfs --format json
#
# and reads the report's verification.elapsed_ms and polls, and the run's wall time.
# Only the test users' processes are ever signalled.
#
# Usage: sudo bench/verify-bench.sh     (env: REPS=7 CROWD_N=10000 TARGET_N=20 BEFORE=b9c30fe)
set -euo pipefail

REPS=${REPS:-7}
CROWD_N=${CROWD_N:-10000}
TARGET_N=${TARGET_N:-20}
BEFORE=${BEFORE:-b9c30fe}

[ "$(id -u)" = 0 ] || { echo "verify-bench.sh: run as root" >&2; exit 3; }
for tool in setpriv useradd python3 git; do
    command -v "$tool" >/dev/null || { echo "verify-bench.sh: $tool is missing" >&2; exit 3; }
done
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=$(mktemp -d /tmp/verify-bench.XXXXXX)

cargo build --quiet --release --example sweep --bin logoff-users
SWEEP=$REPO/target/release/examples/sweep
AFTER_BIN=$REPO/target/release/logoff-users
git worktree add -q --detach "$WORK/before" "$BEFORE"
(cd "$WORK/before" && CARGO_TARGET_DIR="$WORK/before-target" cargo build --quiet --release --bin logoff-users)
BEFORE_BIN=$WORK/before-target/release/logoff-users

CROWD=lucrowd$$
TARGET=lutarget$$
useradd -M -s /usr/sbin/nologin "$CROWD"
useradd -M -s /usr/sbin/nologin "$TARGET"
CU=$(id -u "$CROWD")
TU=$(id -u "$TARGET")
SPAWNERS=()
cleanup() {
    for u in "$CU" "$TU"; do
        setpriv --reuid="$u" --regid="$(id -g "$u" 2>/dev/null || echo 65534)" --clear-groups kill -KILL -1 2>/dev/null || true
        "$SWEEP" wait "$u" 30000 >/dev/null 2>&1 || true
    done
    for p in "${SPAWNERS[@]}"; do wait "$p" 2>/dev/null || true; done
    userdel "$CROWD" 2>/dev/null || true
    userdel "$TARGET" 2>/dev/null || true
    git -C "$REPO" worktree remove --force "$WORK/before" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

spawn() { # uid n
    "$SWEEP" spawn "$1" "$2" >/dev/null &
    SPAWNERS+=($!)
    while [ "$("$SWEEP" count "$1")" -lt "$2" ]; do sleep 0.05; done
}

: >"$WORK/utmp"
spawn "$CU" "$CROWD_N"

# One run of `bin`: prints "verification_ms polls wall_ms exit".
run_one() {
    spawn "$TU" "$TARGET_N"
    local t0=$EPOCHREALTIME code=0
    "$1" "$TARGET" --source utmp --utmp "$WORK/utmp" --process-source procfs --timeout 60s --format json \
        >"$WORK/out.json" 2>"$WORK/err" || code=$?
    local wall
    wall=$(python3 -c "import sys; print(f'{(float(sys.argv[2]) - float(sys.argv[1])) * 1000:.1f}')" "$t0" "$EPOCHREALTIME")
    python3 - "$WORK/out.json" "$wall" "$code" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
v = r["hosts"][0]["verification"]
print(v["elapsed_ms"], v["polls"], sys.argv[2], sys.argv[3])
EOF
}

declare -a B_V B_P B_W A_V A_P A_W
for i in $(seq "$REPS"); do
    read -r v p w c < <(run_one "$BEFORE_BIN")
    [ "$c" = 0 ] || { echo "before: exit $c: $(cat "$WORK/err")" >&2; exit 1; }
    B_V+=("$v"); B_P+=("$p"); B_W+=("$w")
    read -r v p w c < <(run_one "$AFTER_BIN")
    [ "$c" = 0 ] || { echo "after: exit $c: $(cat "$WORK/err")" >&2; exit 1; }
    A_V+=("$v"); A_P+=("$p"); A_W+=("$w")
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "## One run's verification with $CROWD_N unrelated processes (medians of $REPS, alternating, /proc as the process source)"
echo
echo "| binary | verification (ms) | polls | whole run (ms) |"
echo "|---|---:|---:|---:|"
echo "| before ($BEFORE: every poll lists the machine) | $(median "${B_V[@]}") | $(median "${B_P[@]}") | $(median "${B_W[@]}") |"
echo "| after ($(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet || echo '+changes'): the plan only) | $(median "${A_V[@]}") | $(median "${A_P[@]}") | $(median "${A_W[@]}") |"
echo
echo "Every rep: before $(printf '%s ' "${B_V[@]}")ms; after $(printf '%s ' "${A_V[@]}")ms."
echo "Machine: $(nproc) CPUs, $(uname -r); processes at the end: $(ls /proc | grep -c '^[0-9]'); load: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Benchmark of the Linux sweep against pkill, killall and a bare kill(-1) as the user.
#
# Runs as root. Creates its own throw-away user (deleted on exit) and only ever signals that
# user's processes. Prints markdown tables:
#   1. idle processes: median of REPS runs of the time from start until no live process of
#      the uid remains (zombies count as gone), for N = SIZES;
#   2. fork storm (`sweep storm`: RLIMIT_NPROC 3000, self-ending after 20 s): survivors
#      after one pass, and the time until zero when the pass is repeated; the library runs
#      with its default 5 s grace (SIGTERM first) and with grace 0;
#   3. listing sessions and processes with LIST_N processes on the machine: through the BPF
#      task iterator, with /proc only, and a whole dry run of the tool.
#
# Usage: sudo bench/kill-bench.sh            (env: REPS=5 SIZES="100 1000 5000" LIST_N=10000)
set -euo pipefail

REPS=${REPS:-5}
SIZES=${SIZES:-"100 1000 5000"}
LIST_N=${LIST_N:-10000}

if [ "$(id -u)" != 0 ]; then
    echo "kill-bench.sh: run as root" >&2
    exit 3
fi
for tool in pkill killall setpriv useradd bash awk; do
    command -v "$tool" >/dev/null || {
        echo "kill-bench.sh: $tool is missing (apt-get install procps psmisc util-linux passwd)" >&2
        exit 3
    }
done
cd "$(dirname "$0")/.."
cargo build --quiet --release --example sweep --bin logoff-users
SWEEP=$PWD/target/release/examples/sweep
TOOL=$PWD/target/release/logoff-users

NAME=lutbench$$
useradd -M -s /usr/sbin/nologin "$NAME"
U=$(id -u "$NAME")
G=$(id -g "$NAME")
SPAWNER=
cleanup() {
    setpriv --reuid="$U" --regid="$G" --clear-groups kill -KILL -1 2>/dev/null || true
    "$SWEEP" wait "$U" 30000 || true
    [ -n "$SPAWNER" ] && wait "$SPAWNER" 2>/dev/null || true
    userdel "$NAME" 2>/dev/null || true
}
trap cleanup EXIT

live() { "$SWEEP" count "$U"; }

# Starts N idle processes of the user, children of a root spawner that reaps them.
spawn() {
    "$SWEEP" spawn "$U" "$1" >/dev/null &
    SPAWNER=$!
    while [ "$(live)" -lt "$1" ]; do sleep 0.05; done
}

ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

METHODS=(library pkill killall kill-1)
run_method() {
    case "$1" in
        library) "$SWEEP" kill "$U" >/dev/null ;;
        library-grace0) "$SWEEP" kill "$U" 0 >/dev/null ;;
        pkill) pkill -KILL -u "$U" || true ;;
        killall) killall -q -KILL -u "$NAME" || true ;;
        kill-1) setpriv --reuid="$U" --regid="$G" --clear-groups kill -KILL -1 2>/dev/null || true ;;
    esac
}

echo "## Time until no process of the uid remains (median of $REPS, ms)"
echo
echo "| N | library sweep | pkill -KILL -u | killall -KILL -u | kill(-1) as uid (baseline) | library / baseline |"
echo "|---:|---:|---:|---:|---:|---:|"
for n in $SIZES; do
    declare -A med=()
    for m in "${METHODS[@]}"; do
        times=()
        for _ in $(seq "$REPS"); do
            spawn "$n"
            t0=$EPOCHREALTIME
            run_method "$m"
            "$SWEEP" wait "$U" 60000
            times+=("$(ms_since "$t0")")
            wait "$SPAWNER" || true
            SPAWNER=
        done
        med[$m]=$(printf '%s\n' "${times[@]}" | median)
    done
    ratio=$(awk -v a="${med[library]}" -v b="${med[kill-1]}" 'BEGIN { printf "%.2f", a / b }')
    echo "| $n | ${med[library]} | ${med[pkill]} | ${med[killall]} | ${med[kill-1]} | $ratio |"
done

echo
echo "## Fork storm (every process forks two and exits; RLIMIT_NPROC 3000; reaped at once by a subreaper; ends by itself after 20 s)"
echo
echo "| method | live at start | survivors after one pass | time until zero (ms) | passes |"
echo "|---|---:|---:|---:|---:|"
for m in library library-grace0 pkill killall kill-1; do
    "$SWEEP" storm "$U" &
    leader=$!
    t=0
    while [ "$(live)" -lt 1000 ] && [ $t -lt 60 ]; do sleep 0.05; t=$((t + 1)); done
    start=$(live)
    t0=$EPOCHREALTIME
    run_method "$m"
    # A killed process can look alive for a moment while it exits.
    sleep 0.3
    survivors=$(live)
    passes=1
    while [ "$(live)" -gt 0 ] && [ $passes -lt 200 ]; do
        run_method "$m"
        passes=$((passes + 1))
        sleep 0.05
    done
    "$SWEEP" wait "$U" 30000
    echo "| $m | $start | $survivors | $(ms_since "$t0") | $passes |"
    wait "$leader" 2>/dev/null || true
done

echo
echo "## Listing with $LIST_N processes of the test user on the machine"
echo
spawn "$LIST_N"
listing=$("$SWEEP" list 5)
field() { local v=${listing#*"$1"=}; echo "${v%% *}"; }
# The whole tool, as an admin runs it: a dry run naming the test user (plan of every pid).
runs=()
for _ in $(seq 5); do
    t0=$EPOCHREALTIME
    "$TOOL" --source utmp --utmp /dev/null --dry-run --format json "$NAME" >/dev/null
    runs+=("$(ms_since "$t0")")
done
tool_ms=$(printf '%s\n' "${runs[@]}" | median)
t0=$EPOCHREALTIME
pgrep -u "$U" >/dev/null
pgrep_ms=$(ms_since "$t0")
echo "Medians of 5, ms. \"First listing\" is what one run of the tool pays: open the backend (parse"
echo "BTF, load the task iterator), list sessions, list processes. \"Again\" is a later listing"
echo "with the iterator loaded (the sweep's census). \"--process-source procfs\" reads every /proc/PID/status."
echo
echo "| processes on the machine | first listing | again | --process-source procfs | \`logoff-users --dry-run USER\`, whole run | pgrep -u, once |"
echo "|---:|---:|---:|---:|---:|---:|"
echo "| $(field processes) | $(field cold_ms) | $(field warm_ms) | $(field procfs_ms) | $tool_ms | $pgrep_ms |"
"$SWEEP" kill "$U" 0 >/dev/null
wait "$SPAWNER" || true
SPAWNER=
echo
echo "Machine: $(nproc) CPUs, $(uname -r); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

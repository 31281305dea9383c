#!/usr/bin/env bash
# logoff-users against what an admin types instead: `loginctl terminate-user`, side by side
# in the real logind container (ci/container.sh: Debian 12, systemd 252), A B A B ...
#
# Each run starts K users' ssh sessions, each session holding N sleeps, then times, inside
# the container, from the command's start until none of those users has a process left
# (`examples/sweep gone`, a /proc scan every 2 ms while the command runs and after):
#
#   A  loginctl terminate-user U1 ... UK
#   B  logoff-users U1 (K = 1), or logoff-users ALL (K > 1)
#
# and also until the command returned: logoff-users returns only once it has verified that
# the sessions are gone too (logind drops a session some time after its last process),
# loginctl at once.
#
# Prints medians of REPS and the ratio B/A per scenario. Scenarios (env SCENARIOS, "K:N"):
#   1:100 1:1000   one user with N processes (issue 15)
#   1:20 10:20 30:20   K users with 20 processes each (issue 16)
#
# Runs as root. Its own container (machine lu-bench, own state dir and port) and users
# (uids from 64500, checked unused on the host), all removed at exit.
#
# Usage: sudo bench/loginctl-bench.sh      (env: REPS=5 SCENARIOS="1:100 1:1000 1:20 10:20 30:20")
set -euo pipefail

REPS=${REPS:-5}
SCENARIOS=${SCENARIOS:-"1:100 1:1000 1:20 10:20 30:20"}
[ "$(id -u)" = 0 ] || { echo "loginctl-bench.sh: run as root" >&2; exit 3; }
cd "$(dirname "$0")/.."
REPO=$PWD

cargo build --quiet --release --bin logoff-users --example sweep
bash ci/container.sh build >/dev/null

STATE=$(mktemp -d /run/lu-bench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export LOGOFF_STATE=$STATE LOGOFF_SSH_PORT=$PORT LOGOFF_MACHINE=lu-bench LOGOFF_VOLATILE=1
export LOGOFF_BIND_RO=$REPO/target/release
CLIENTS=()
cleanup() {
    for c in "${CLIENTS[@]}"; do kill "$c" 2>/dev/null || true; done
    bash ci/container.sh stop >/dev/null 2>&1 || true
    rm -rf "$STATE"
}
trap cleanup EXIT
bash ci/container.sh start >/dev/null
ct() { bash ci/container.sh exec "$@"; }
SWEEP=/opt/logoff/examples/sweep
TOOL=/opt/logoff/logoff-users

# Users: as many as the largest K, on uids the host does not use (the container shares them).
MAXK=0
for s in $SCENARIOS; do k=${s%%:*}; [ "$k" -gt "$MAXK" ] && MAXK=$k; done
used=$(cut -d: -f3 /etc/passwd; ps -eo uid= | tr -d ' ')
BASE=64500
while printf '%s\n' "$used" | grep -qxE "$(seq -s'|' "$BASE" $((BASE + MAXK)))"; do BASE=$((BASE + 100)); done
KEY=$(cat "$STATE/id_ed25519.pub")
USERS=()
for i in $(seq 1 "$MAXK"); do
    u=lub$i
    ct useradd --create-home --shell /bin/bash --uid $((BASE + i)) --user-group "$u"
    ct sh -c "install -d -m 700 -o $u -g $u /home/$u/.ssh && printf '%s' '$KEY' > /home/$u/.ssh/authorized_keys && chown $u:$u /home/$u/.ssh/authorized_keys && chmod 600 /home/$u/.ssh/authorized_keys"
    USERS+=("$u")
done
SSH=(ssh -i "$STATE/id_ed25519" -p "$PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
     -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=10)

# Opens one ssh session per user (K users) holding N sleeps, and waits until all run. A
# few at a time: sshd refuses logins beyond MaxStartups (10) that are not through yet.
sessions() {
    local k=$1 n=$2 i j
    for i in $(seq 1 5 "$k"); do
        for j in $(seq "$i" $((i + 4 < k ? i + 4 : k))); do
            "${SSH[@]}" "lub$j@127.0.0.1" "for i in \$(seq $n); do sleep 900 & done; exec sleep 900" </dev/null >/dev/null 2>&1 &
            CLIENTS+=($!)
        done
        for j in $(seq "$i" $((i + 4 < k ? i + 4 : k))); do
            local t=0
            while [ "$(ct "$SWEEP" count $((BASE + j)))" -le "$n" ]; do
                sleep 0.05; t=$((t + 1))
                [ $t -lt 600 ] || { echo "loginctl-bench.sh: lub$j's processes never started" >&2; exit 1; }
            done
        done
    done
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "## logoff-users against loginctl terminate-user (container: $(ct systemctl --version | head -1); medians of $REPS, ms, from the command until no process of the users is left)"
echo
echo "| users | processes each | \`loginctl terminate-user\` | \`logoff-users\` | ratio | \`logoff-users\` returned, verified |"
echo "|---:|---:|---:|---:|---:|---:|"
for s in $SCENARIOS; do
    k=${s%%:*}; n=${s##*:}
    uids=$(seq -s, $((BASE + 1)) $((BASE + k)))
    names=("${USERS[@]:0:$k}")
    if [ "$k" = 1 ]; then target=("${names[0]}"); else target=(ALL); fi
    A=(); B=(); BX=()
    for _ in $(seq "$REPS"); do
        sessions "$k" "$n"
        out=$(ct "$SWEEP" gone "$uids" -- loginctl terminate-user "${names[@]}")
        A+=("$(sed -n 's/^ms=\([0-9.]*\).*/\1/p' <<<"$out")")
        sessions "$k" "$n"
        out=$(ct "$SWEEP" gone "$uids" -- "$TOOL" "${target[@]}" --timeout 60s)
        [[ $out == *exit=0 ]] || { echo "loginctl-bench.sh: logoff-users failed: $out" >&2; exit 1; }
        B+=("$(sed -n 's/^ms=\([0-9.]*\).*/\1/p' <<<"$out")")
        BX+=("$(sed -n 's/.*exit_ms=\([0-9.]*\).*/\1/p' <<<"$out")")
        # Let logind and the user managers settle before the next pair.
        sleep 1
    done
    a=$(median "${A[@]}"); b=$(median "${B[@]}")
    echo "| $k | $n | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }') | $(median "${BX[@]}") |"
    echo "<!-- K=$k N=$n loginctl: ${A[*]} | logoff-users: ${B[*]} | returned: ${BX[*]} -->"
done
echo
echo "logoff-users at $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet || echo '+changes'); host: $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# The Ansible role for real: two Debian 12 containers (ci/container.sh, systemd-nspawn from
# the cached rootfs, each with its own sshd on 127.0.0.1), a test user logged in on each
# through a real ssh session (a logind session), and ansible/test.sh run against both as a
# non-root ssh user (lodeploy, sudo for become) with the static release binary. Checks:
#   0. ansible/requirements.yml's collections are installed; ansible-lint passes;
#   1. a dry run (--check) reports changed and logs nobody off;
#   2. a user list the tool refuses (ALL mixed with a name) fails on both hosts, nobody
#      logged off;
#   3. the playbook logs the user off on both hosts (changed): inside each container
#      `loginctl list-sessions` shows no session of the user, `pgrep -u USER` finds nothing,
#      and the ssh client of that session has exited;
#   4. a second run reports no change (changed=0 failed=0);
#   5. beside an unreachable host, that host is reported unreachable and the others are fine.
#
#   sudo bash ci/ansible.sh
#
# Needs root. Installs ansible and ansible-lint from PyPI into a venv (ansible/venv.sh),
# builds the rootfs (ci/container.sh build) and, without dist/, the musl release binary.
# Always stops both containers and its own ssh clients. Runs one at a time (a lock); a
# container left by a killed earlier run is stopped first. Prints "ansible: N passed, M
# failed" last and exits non-zero when a check failed.
#
# Environment: LOGOFF_ANSIBLE_USER (test user, default lotest), LOGOFF_ANSIBLE_BINARY (the
# binary the role copies, default dist/logoff-users-VERSION-linux-x86_64 from
# release/build.sh), LOGOFF_ROOTFS, LOGOFF_ANSIBLE_VENV.
#
# Internal: `ci/ansible.sh probe HOST:PORT USER` (ansible/test.sh's --probe) exits 0 when
# USER has a logind session or a process in the container listening on PORT, 1 when not.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

BASE=/run/logoff-users/ansible
TEST_USER=${LOGOFF_ANSIBLE_USER:-lotest}
DEPLOY_USER=lodeploy
HOSTS_N=2

log() { printf '\n=== ansible.sh: %s (%ss)\n' "$*" "$SECONDS"; }
die() { printf 'ansible.sh: error: %s\n' "$*" >&2; exit 1; }

state_of() { echo "$BASE/h$1"; }

# ci/container.sh for host i (1 or 2): its own state dir, machine name (and so cgroup) and port.
ct() {
    local i=$1; shift
    local port=2222
    [ -f "$(state_of "$i")/ssh_port" ] && port=$(cat "$(state_of "$i")/ssh_port")
    LOGOFF_STATE=$(state_of "$i") LOGOFF_MACHINE="logoff-ansible-h$i" LOGOFF_SSH_PORT=$port \
        LOGOFF_VOLATILE=1 bash "$REPO/ci/container.sh" "$@"
}

# The test user's logind sessions in container i: "ID:STATE" words.
sessions_of() {
    local i=$1 user=$2 id u
    ct "$i" exec env LC_ALL=C loginctl list-sessions --no-legend 2>/dev/null </dev/null |
        while read -r id _ u _; do
            [ "$u" = "$user" ] || continue
            printf '%s:%s ' "$id" "$(ct "$i" exec loginctl show-session "$id" -p State --value 2>/dev/null </dev/null)"
        done
}

# The test user's processes in container i (pids in the container's namespace).
pids_of() { ct "$1" exec pgrep -u "$2" 2>/dev/null | tr '\n' ' ' || true; }

cmd_probe() {
    local hp=$1 user=$2 port i s p
    port=${hp##*:}
    for i in $(seq "$HOSTS_N"); do
        [ "$(cat "$(state_of "$i")/ssh_port" 2>/dev/null)" = "$port" ] || continue
        s=$(sessions_of "$i" "$user")
        p=$(pids_of "$i" "$user")
        echo "probe h$i ($hp): $user sessions: ${s:-none}; processes: ${p:-none}" >&2
        if [ -n "$s$p" ]; then return 0; fi
        return 1
    done
    die "probe: no container of this run listens on port $port"
}

if [ "${1:-}" = probe ]; then
    [ $# = 3 ] || die "usage: $0 probe HOST:PORT USER"
    cmd_probe "$2" "$3"
    exit
fi
[ $# = 0 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (containers, nsenter)"

mkdir -p "$BASE"
exec 9>"$BASE.lock"
flock -w 600 9 || die "another ci/ansible.sh holds $BASE.lock"

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

CLIENT_PIDS=() STARTED=()
cleanup() {
    local rc=$? pid i
    set +e
    # Only the ssh clients this script started, and only while they are still its children.
    for pid in "${CLIENT_PIDS[@]}"; do
        if [ "$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" = $$ ] &&
            [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = ssh ]; then
            kill "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    for i in "${STARTED[@]}"; do ct "$i" stop; done
    exec 8>&-
    rm -rf "$BASE"
    echo "ansible.sh: took ${SECONDS}s"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools -------------------------------------------------------------------------------
# shellcheck source=ansible/venv.sh
. "$REPO/ansible/venv.sh"
ansible_venv_setup || die "could not set up the ansible venv"
echo "ansible: $(command -v ansible-playbook) ($(ansible-playbook --version 2>/dev/null | sed -n 1p))"

log "ansible/requirements.yml: the collections are installed"
missing=""
for c in $(sed -n 's/^ *- name: *//p' ansible/requirements.yml); do
    ansible-galaxy collection list "$c" 2>/dev/null | grep -q "^$c " || missing="$missing $c"
done
if [ -z "$missing" ]; then pass "the collections of ansible/requirements.yml are installed"
else fail "collections missing:$missing"; fi

log "ansible-lint"
if (cd ansible && ansible-lint --offline --nocolor roles/logoff_users playbook.yml); then
    pass "ansible-lint passes on the role and the playbook"
else
    fail "ansible-lint reports problems"
fi

# The binary the role copies: the static release binary (release/build.sh), built here
# (musl, release profile) when dist/ has none.
VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)"
BINARY=${LOGOFF_ANSIBLE_BINARY:-$REPO/dist/logoff-users-$VERSION-linux-x86_64}
if [ ! -x "$BINARY" ] && [ -z "${LOGOFF_ANSIBLE_BINARY:-}" ]; then
    log "cargo build --release --target x86_64-unknown-linux-musl (no dist/ binary)"
    rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
    command -v musl-gcc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null
    CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --target x86_64-unknown-linux-musl --bin logoff-users
    BINARY="$REPO/target/x86_64-unknown-linux-musl/release/logoff-users"
fi
[ -x "$BINARY" ] || die "no binary at $BINARY"
case "$(file -b "$BINARY")" in
    *"statically linked"* | *"static-pie linked"*) pass "the role copies a static release binary: $BINARY" ;;
    *) fail "$BINARY is not a static binary" ;;
esac

log "container rootfs"
bash ci/container.sh build

# --- two containers ----------------------------------------------------------------------
for i in $(seq "$HOSTS_N"); do
    if ct "$i" status >/dev/null 2>&1; then
        echo "a container of an earlier run is still running: stopping it"
        ct "$i" stop
    fi
done
rm -rf "$BASE"/h*
KEY="$BASE/id_ed25519"
rm -f "$KEY" "$KEY.pub"
ssh-keygen -q -t ed25519 -N '' -C logoff-users-ansible-test -f "$KEY"

# Ports nothing listens on, distinct.
read -r -a PORTS <<<"$(python3 - "$HOSTS_N" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)"

# Uids for the test user that nothing on the host uses (the containers share the host's
# uids), one per container, away from tests/linux_logind.rs's 61000 range.
used_uids() {
    cut -d: -f3 /etc/passwd
    stat -c %u /proc/[0-9]* 2>/dev/null
}
UID_BASE=""
for base in $(seq 64100 10 64990); do
    if ! used_uids | grep -qxE "$base|$((base + 1))|$((base + 5))"; then UID_BASE=$base; break; fi
done
[ -n "$UID_BASE" ] || die "no spare uids in 64100..64999"

log "boot $HOSTS_N containers"
HOSTS=()
for i in $(seq "$HOSTS_N"); do
    st=$(state_of "$i")
    mkdir -p "$st"
    echo "${PORTS[$((i - 1))]}" >"$st/ssh_port"
    # One root key for both: ansible/test.sh connects with one key.
    cp "$KEY" "$KEY.pub" "$st/"
    STARTED+=("$i")
    ct "$i" start >/dev/null
    HOSTS+=("127.0.0.1:${PORTS[$((i - 1))]}")
done

ssh_opts=(-i "$KEY" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o LogLevel=ERROR -o ConnectTimeout=10)

log "user $DEPLOY_USER on each host: the ssh user of the play, sudo for become"
for i in $(seq "$HOSTS_N"); do
    ct "$i" exec useradd --create-home --shell /bin/bash --uid "$((UID_BASE + 5))" --user-group "$DEPLOY_USER"
    ct "$i" exec sh -c "install -d -m 700 -o $DEPLOY_USER -g $DEPLOY_USER /home/$DEPLOY_USER/.ssh &&
        install -m 600 -o $DEPLOY_USER -g $DEPLOY_USER /dev/stdin /home/$DEPLOY_USER/.ssh/authorized_keys" <"$KEY.pub"
    printf '%s ALL=(ALL) NOPASSWD: ALL\n' "$DEPLOY_USER" | ct "$i" exec sh -c "install -m 440 /dev/stdin /etc/sudoers.d/$DEPLOY_USER"
    if ssh "${ssh_opts[@]}" -p "${PORTS[$((i - 1))]}" "$DEPLOY_USER@127.0.0.1" 'test "$(id -u)" != 0 && sudo -n true'; then
        pass "h$i: $DEPLOY_USER logs in by ssh (not root) and may sudo"
    else
        fail "h$i: $DEPLOY_USER cannot log in or sudo"
        exit 1
    fi
done

log "user $TEST_USER on each host, logged in by ssh"
# The ssh clients' stdin: a fifo that nobody writes to and that never ends.
mkfifo "$BASE/stdin"
exec 8<>"$BASE/stdin"
for i in $(seq "$HOSTS_N"); do
    uid=$((UID_BASE + i - 1))
    ct "$i" exec useradd --create-home --shell /bin/bash --uid "$uid" --user-group "$TEST_USER"
    ct "$i" exec sh -c "install -d -m 700 -o $TEST_USER -g $TEST_USER /home/$TEST_USER/.ssh &&
        install -m 600 -o $TEST_USER -g $TEST_USER /dev/stdin /home/$TEST_USER/.ssh/authorized_keys" <"$KEY.pub"
    ssh -tt "${ssh_opts[@]}" -p "${PORTS[$((i - 1))]}" "$TEST_USER@127.0.0.1" 'exec sleep 600' \
        <&8 >"$(state_of "$i")/client.log" 2>&1 &
    CLIENT_PIDS+=($!)
done
for i in $(seq "$HOSTS_N"); do
    s=""
    for _ in $(seq 200); do
        s=$(sessions_of "$i" "$TEST_USER")
        case "$s" in *:active*) break ;; esac
        sleep 0.1
    done
    case "$s" in
        *:active*) pass "h$i: $TEST_USER (uid $((UID_BASE + i - 1))) has an active logind session: $s" ;;
        *) fail "h$i: no active session of $TEST_USER after 20 s: ${s:-none}"; exit 1 ;;
    esac
    echo "$s" >"$(state_of "$i")/sessions.before"
done

# --- the playbook ------------------------------------------------------------------------
log "ansible/test.sh --hosts $(IFS=,; echo "${HOSTS[*]}")"
set +e
bash ansible/test.sh --hosts "$(IFS=,; echo "${HOSTS[*]}")" --user "$TEST_USER" --ssh-key "$KEY" --ssh-user "$DEPLOY_USER" \
    --binary "$BINARY" --probe "bash $REPO/ci/ansible.sh probe" 2>&1 | tee "$BASE/test.log"
test_rc=${PIPESTATUS[0]}
set -e
if summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$BASE/test.log" | tail -n1) && [ -n "$summary" ]; then
    read -r tp _ tf _ <<<"$summary"
    passed=$((passed + tp)) failed=$((failed + tf))
else
    fail "ansible/test.sh printed no summary (exit $test_rc)"
fi
[ "$test_rc" = 0 ] || [ "$failed" -gt 0 ] || fail "ansible/test.sh exited $test_rc"

log "after the runs, inside each container"
for i in $(seq "$HOSTS_N"); do
    s=$(sessions_of "$i" "$TEST_USER")
    p=$(pids_of "$i" "$TEST_USER")
    if [ -z "$s" ]; then pass "h$i: loginctl lists no session of $TEST_USER (before: $(cat "$(state_of "$i")/sessions.before"))"
    else fail "h$i: loginctl still lists sessions of $TEST_USER: $s"; fi
    if [ -z "$p" ]; then pass "h$i: pgrep -u $TEST_USER finds nothing"
    else fail "h$i: processes of $TEST_USER remain: $p"; fi
    # The session's ssh client ends when its session is logged off.
    pid=${CLIENT_PIDS[$((i - 1))]}
    if [ "$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" = $$ ]; then
        fail "h$i: the ssh client of $TEST_USER's session (pid $pid) is still connected"
    else
        rc=0
        wait "$pid" || rc=$?
        pass "h$i: the ssh client of $TEST_USER's session has exited (status $rc)"
    fi
    if ssh "${ssh_opts[@]}" -p "${PORTS[$((i - 1))]}" root@127.0.0.1 true; then
        pass "h$i: root still logs in (sshd and the host are fine)"
    else
        fail "h$i: root cannot log in any more"
    fi
done

echo
echo "ansible: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

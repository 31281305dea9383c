#!/usr/bin/env bash
# Tests the Ansible role against Linux hosts reached by ssh, each with a test user logged
# in: a dry run (--check) changes nothing and says "changed"; a user list the tool refuses
# (ALL mixed with a name) fails on every host and logs nobody off; the first run logs the
# user off on every host (changed); a second run changes nothing; beside an unreachable
# host, that host is reported unreachable (ansible-playbook exits 4) and the others are
# fine. Ansible comes from a venv (ansible/venv.sh), never the system Python.
#
#   bash ansible/test.sh --local [--standin | --fake-backend]
#       starts two "hosts" on this machine: two sshd processes on 127.0.0.1, each in its own
#       PID namespace (so each sees only its own processes), creates the test user, logs it
#       in on both with `ssh -tt ... sleep 600`, and removes all of it afterwards.
#   bash ansible/test.sh --hosts 127.0.0.1:2201,127.0.0.1:2202 --user lotest --ssh-key KEY
#       any ssh-reachable Linux hosts (the CI containers, for instance), with the test user
#       already logged in on each. Needs python3 on them, as any Ansible module does.
#
# Which binary the role copies:
#   (default)       the real tool: dist/logoff-users-VERSION-linux-x86_64 (release/build.sh)
#   --binary FILE   another build of the tool
#   --standin       ansible/tests/standin-logoff-users.py, a STAND-IN that prints a report
#                   of the documented shape and kills the test user's processes. It tests
#                   the role's changed/failed logic, not the tool; it also runs the
#                   failure scenarios (exit 1, users_failed with exit 0, exit 2, not JSON).
#   --fake-backend  the real binary with its hidden --fake-state flag: the real JSON, on a
#                   fake machine (a state file per host, which the tool rewrites). Nothing
#                   on the hosts is touched except that file.
#
# Other options: --user NAME (test user, default lotest), --ssh-user U (default root; any
# other user connects with become, through sudo),
# --ssh-key FILE, --dest PATH (where the role puts the binary on the hosts), --python PATH
# (the hosts' python, default: Ansible's discovery; /usr/bin/python3 with --local),
# --probe "CMD ARGS" (how to tell whether the test user is logged in on a host: runs
# CMD ARGS HOST:PORT USER, exit 0 when logged in; default: pgrep -u USER over ssh; ci/ansible.sh
# gives one that asks loginctl and pgrep inside the container), --keep (leave the local
# hosts running, for debugging).
# Prints "N passed, N failed" last and exits non-zero when a check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

HOSTS="" LOCAL=0 MODE=real BINARY="" TEST_USER=lotest SSH_USER=root SSH_KEY="" DEST="" KEEP=0 PYTHON=auto_silent PROBE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --hosts) HOSTS="$2"; shift 2 ;;
    --local) LOCAL=1; shift ;;
    --standin) MODE=standin; shift ;;
    --fake-backend) MODE=fake; shift ;;
    --binary) BINARY="$2"; shift 2 ;;
    --user) TEST_USER="$2"; shift 2 ;;
    --ssh-user) SSH_USER="$2"; shift 2 ;;
    --ssh-key) SSH_KEY="$2"; shift 2 ;;
    --dest) DEST="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --python) PYTHON="$2"; shift 2 ;;
    --probe) PROBE="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "ansible/test.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$LOCAL" = 1 ] || [ -n "$HOSTS" ] || { echo "ansible/test.sh: give --local or --hosts H:P,H:P" >&2; exit 2; }

log() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# shellcheck source=ansible/venv.sh
. "$REPO/ansible/venv.sh"
ansible_venv_setup

WORK="$(mktemp -d /tmp/logoff-ansible-test.XXXXXX)"
chmod 0755 "$WORK"
SERVER_PIDS=() CLIENT_PIDS=() CREATED_USER=0
cleanup() {
  if [ "$KEEP" = 1 ]; then echo "kept: $WORK, sshd pids ${SERVER_PIDS[*]:-}"; return; fi
  local pid
  for pid in "${CLIENT_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  # unshare --fork ignores SIGTERM while it waits; SIGKILL ends it, and --kill-child then
  # ends the namespace's sshd and every process in that namespace.
  for pid in "${SERVER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${CLIENT_PIDS[@]}" "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$CREATED_USER" = 1 ]; then userdel -r "$TEST_USER" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- local hosts: two sshd in their own PID namespaces on 127.0.0.1 -------------------
free_port() {
  local port
  for port in $(shuf -i 20000-29999 -n 50); do
    if ! ss -Htln "sport = :$port" | grep -q .; then echo "$port"; return; fi
  done
  return 1
}

start_local_hosts() {
  [ "$(id -u)" -eq 0 ] || { echo "ansible/test.sh --local needs root (useradd, sshd)" >&2; exit 2; }
  command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || {
    log "apt-get install openssh-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client >/dev/null
  }
  mkdir -p /run/sshd
  ssh-keygen -q -t ed25519 -N '' -C logoff-ansible-test -f "$WORK/id"
  cp "$WORK/id.pub" "$WORK/authorized_keys"
  SSH_KEY="$WORK/id" SSH_USER=root
  # The local hosts are this machine: its system python, not whatever is first on PATH.
  [ "$PYTHON" != auto_silent ] || PYTHON=/usr/bin/python3
  if ! id "$TEST_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/bash "$TEST_USER"
    CREATED_USER=1
  fi
  # Without PAM, sshd refuses a locked account ('!' in shadow); '*' allows key logins only.
  usermod -p '*' "$TEST_USER"
  local i port hosts=()
  for i in 1 2; do
    port="$(free_port)"
    mkdir -p "$WORK/h$i"
    ssh-keygen -q -t ed25519 -N '' -f "$WORK/h$i/host_key"
    cat >"$WORK/h$i/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $WORK/h$i/host_key
PidFile $WORK/h$i/sshd.pid
AuthorizedKeysFile $WORK/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers root $TEST_USER
Subsystem sftp internal-sftp
LogLevel ERROR
EOF
    # --kill-child: when this unshare ends, sshd (the namespace's init) and with it
    # every process of this "host" end too.
    unshare --pid --fork --kill-child --mount-proc /usr/sbin/sshd -D -e -f "$WORK/h$i/sshd_config" \
      >"$WORK/h$i/sshd.log" 2>&1 &
    SERVER_PIDS+=($!)
    hosts+=("127.0.0.1:$port")
  done
  HOSTS="$(IFS=,; echo "${hosts[*]}")"
  local hp
  for hp in "${hosts[@]}"; do
    for _ in $(seq 50); do ssh_to "$hp" "$SSH_USER" true 2>/dev/null && break; sleep 0.2; done
    ssh_to "$hp" "$SSH_USER" true || { cat "$WORK"/h*/sshd.log; echo "sshd on $hp did not answer" >&2; exit 1; }
  done
}

login_test_user() {
  local hp
  for hp in "${HOST_LIST[@]}"; do
    ssh -tt -i "$SSH_KEY" -p "${hp##*:}" -o BatchMode=yes -o StrictHostKeyChecking=no \
      -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$TEST_USER@${hp%:*}" sleep 600 \
      </dev/null >/dev/null 2>&1 &
    CLIENT_PIDS+=($!)
  done
  for hp in "${HOST_LIST[@]}"; do
    for _ in $(seq 50); do logged_in "$hp" && break; sleep 0.2; done
  done
}

ssh_to() { # host:port user command...
  local hp="$1" user="$2"; shift 2
  ssh -i "$SSH_KEY" -p "${hp##*:}" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o ConnectTimeout=5 "$user@${hp%:*}" "$@"
}

# Is the test user logged in on that host? For the fake backend: in its state file.
logged_in() {
  if [ -n "$PROBE" ] && [ "$MODE" != fake ]; then
    local probe
    read -r -a probe <<<"$PROBE"
    "${probe[@]}" "$1" "$TEST_USER"
  elif [ "$MODE" = fake ]; then
    ssh_to "$1" "$SSH_USER" cat "$(state_file "$1")" | python3 -c '
import json, sys
state = json.load(sys.stdin)
sys.exit(0 if any(s["user"] == sys.argv[1] for s in state["sessions"]) else 1)' "$TEST_USER"
  else
    ssh_to "$1" "$SSH_USER" pgrep -u "$TEST_USER" >/dev/null
  fi
}

state_file() { echo "${STATE_DIR:-/tmp}/logoff-users-fake-state-${1##*:}.json"; }

# A fake machine with the test user logged on (two sessions), and a bystander.
write_fake_states() {
  local hp
  for hp in "${HOST_LIST[@]}"; do
    ssh_to "$hp" "$SSH_USER" "cat > '$(state_file "$hp")'" <<EOF
{ "host": "fake-${hp##*:}", "policy": { "sweep_after_logoff": true, "uid_min": 1000 },
  "sessions": [
    { "id": "c1", "user": "$TEST_USER", "uid": 1500, "state": "active", "remote_host": "127.0.0.1" },
    { "id": "c2", "user": "$TEST_USER", "uid": 1500, "state": "closing" },
    { "id": "c3", "user": "bystander", "uid": 1501, "state": "active" } ],
  "processes": [
    { "pid": 4000, "user": "$TEST_USER", "uid": 1500, "session_id": "c1", "name": "bash" },
    { "pid": 4001, "user": "$TEST_USER", "uid": 1500, "session_id": "c2", "name": "sleep" },
    { "pid": 4100, "user": "bystander", "uid": 1501, "session_id": "c3", "name": "bash" } ] }
EOF
  done
}

# --- the inventory and the runs -------------------------------------------------------
if [ "$LOCAL" = 1 ]; then
  log "two local hosts (sshd in PID namespaces on 127.0.0.1)"
  start_local_hosts
  STATE_DIR="$WORK"
fi
IFS=, read -r -a HOST_LIST <<<"$HOSTS"
[ "${#HOST_LIST[@]}" -ge 1 ] || { echo "no hosts" >&2; exit 2; }
echo "hosts: ${HOST_LIST[*]}; test user: $TEST_USER; mode: $MODE"

VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)"
EXTRA_ARGS='[]'
case "$MODE" in
  standin) BINARY="$REPO/ansible/tests/standin-logoff-users.py" ;;
  *) BINARY="${BINARY:-$REPO/dist/logoff-users-$VERSION-linux-x86_64}" ;;
esac
[ -f "$BINARY" ] || { echo "no binary at $BINARY: run release/build.sh first, or give --binary/--standin" >&2; exit 2; }

{
  echo "[targets]"
  i=0
  for hp in "${HOST_LIST[@]}"; do
    i=$((i + 1))
    dest="${DEST:-/usr/local/sbin/logoff-users}"
    # Local hosts share one file system: one binary path per host.
    [ "$LOCAL" = 1 ] && dest="$WORK/h$i/logoff-users"
    line="h$i ansible_host=${hp%:*} ansible_port=${hp##*:} logoff_users_dest_linux=$dest"
    [ "$MODE" = fake ] && line="$line fake_state=$(state_file "$hp")"
    echo "$line"
  done
  echo "[targets:vars]"
  echo "ansible_user=$SSH_USER"
  [ -n "$SSH_KEY" ] && echo "ansible_ssh_private_key_file=$SSH_KEY"
  echo "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'"
  echo "ansible_python_interpreter=$PYTHON"
  [ "$SSH_USER" = root ] && echo "logoff_users_become=false"
} >"$WORK/inventory.ini"
[ "$MODE" = fake ] && EXTRA_ARGS='["--fake-state", "{{ fake_state }}"]'

export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_RETRY_FILES_ENABLED=False
export ANSIBLE_LOCAL_TEMP="$WORK/ansible-local" ANSIBLE_SSH_CONTROL_PATH_DIR="$WORK/cp"

# Runs the example playbook; prints its output and writes it to $WORK/last.log.
run_playbook() { # name extra-args-json [ansible-playbook options...]
  local name="$1" extra="$2"; shift 2
  log "playbook: $name"
  set +e
  ansible-playbook -i "$WORK/inventory.ini" "$REPO/ansible/playbook.yml" -e "users=$TEST_USER" \
    -e "{\"logoff_users_binary\": \"$BINARY\", \"logoff_users_extra_args\": $extra}" "$@" 2>&1 | tee "$WORK/last.log"
  set -e
}

# Reads $WORK/last.log: prints "host status" for the "Logoff result" task
# (changed/ok/failed), then "host recap changed=N failed=N unreachable=N".
parse_log() {
  python3 - "$WORK/last.log" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
section = re.search(r"TASK \[logoff_users : Logoff result\].*?(?=\nTASK |\nPLAY RECAP)", text, re.S)
if section:
    for status, host in re.findall(r"^(changed|ok|fatal): \[(\w+)\]", section.group(0), re.M):
        print(host, "failed" if status == "fatal" else status)
for host, changed, unreachable, failed in re.findall(
        r"^(\w+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", text, re.M):
    print(host, "recap", f"changed={changed}", f"failed={failed}", f"unreachable={unreachable}")
EOF
}

expect_result() { # what expected-status: the "Logoff result" task on every host
  local what="$1" want="$2" i got
  for i in $(seq "${#HOST_LIST[@]}"); do
    got="$(parse_log | awk -v h="h$i" '$1 == h && $2 != "recap" { print $2 }')"
    if [ "$got" = "$want" ]; then pass "$what: h$i result $got"; else fail "$what: h$i result '${got:-none}', expected $want"; fi
  done
}

expect_recap() { # what expected "changed=N failed=N"
  local what="$1" want="$2" i got
  for i in $(seq "${#HOST_LIST[@]}"); do
    got="$(parse_log | awk -v h="h$i" '$1 == h && $2 == "recap" { print $3, $4, $5 }')"
    if [ "$got" = "$want unreachable=0" ]; then pass "$what: h$i $got"; else fail "$what: h$i recap '${got:-none}', expected $want"; fi
  done
}

expect_logged_in() { # what yes|no
  local what="$1" want="$2" hp state
  for hp in "${HOST_LIST[@]}"; do
    if logged_in "$hp"; then state=yes; else state=no; fi
    if [ "$state" = "$want" ]; then pass "$what: $TEST_USER logged in on $hp: $state"; else fail "$what: $TEST_USER logged in on $hp: $state, expected $want"; fi
  done
}

log "ansible-playbook --syntax-check"
if ansible-playbook --syntax-check -i "$WORK/inventory.ini" "$REPO/ansible/playbook.yml" >/dev/null; then
  pass "syntax check"
else
  fail "syntax check"
fi

if [ "$MODE" = fake ]; then write_fake_states; elif [ "$LOCAL" = 1 ]; then login_test_user; fi
expect_logged_in "before" yes

run_playbook "dry run (--check)" "$EXTRA_ARGS" --check
expect_result "dry run" changed
expect_logged_in "after the dry run" yes

# A user list the tool refuses (ALL mixed with a name): failed on every host, nobody
# logged off.
run_playbook "bad user list (ALL mixed with a name)" "$EXTRA_ARGS" -e "users=ALL,$TEST_USER"
expect_result "bad user list" failed
expect_recap "bad user list" "changed=0 failed=1"
if [ "$MODE" != standin ]; then
  if grep -q "ALL cannot be mixed with names" "$WORK/last.log"; then
    pass "bad user list: the tool's refusal is in the play's output"
  else
    fail "bad user list: the tool's refusal is not in the play's output"
  fi
fi
expect_logged_in "after the bad user list" yes

run_playbook "first run" "$EXTRA_ARGS"
expect_result "first run" changed
expect_logged_in "after the first run" no

run_playbook "second run" "$EXTRA_ARGS"
expect_result "second run" ok
expect_recap "second run" "changed=0 failed=0"

# An unreachable host beside the others: reported as unreachable, the others unharmed.
log "playbook: with an unreachable host"
down_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
{ sed -n '1,/^\[targets:vars\]/p' "$WORK/inventory.ini" | sed '$d'
  echo "hdown ansible_host=127.0.0.1 ansible_port=$down_port logoff_users_dest_linux=/tmp/logoff-users-unreachable"
  sed -n '/^\[targets:vars\]/,$p' "$WORK/inventory.ini"; } >"$WORK/inventory-down.ini"
set +e
ansible-playbook -i "$WORK/inventory-down.ini" "$REPO/ansible/playbook.yml" -e "users=$TEST_USER" \
  -e "{\"logoff_users_binary\": \"$BINARY\", \"logoff_users_extra_args\": $EXTRA_ARGS}" \
  -e ansible_ssh_timeout=5 2>&1 | tee "$WORK/last.log"
down_rc=${PIPESTATUS[0]}
set -e
got="$(parse_log | awk '$1 == "hdown" && $2 == "recap" { print $5 }')"
if [ "$got" = "unreachable=1" ]; then pass "unreachable host: recap $got"; else fail "unreachable host: recap '${got:-none}', expected unreachable=1"; fi
if [ "$down_rc" = 4 ]; then pass "unreachable host: ansible-playbook exits 4"; else fail "unreachable host: ansible-playbook exited $down_rc, expected 4"; fi
expect_recap "the other hosts beside an unreachable one" "changed=0 failed=0"

if [ "$MODE" = standin ]; then
  for scenario in fail fail-exit0 usage garbage; do
    run_playbook "stand-in scenario $scenario" "[\"--standin-scenario\", \"$scenario\"]"
    expect_result "scenario $scenario" failed
    expect_recap "scenario $scenario" "changed=0 failed=1"
  done
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

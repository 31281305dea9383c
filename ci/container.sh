#!/usr/bin/env bash
# A Debian 12 container with real systemd, systemd-logind and sshd, for the real-logind
# tests (tests/linux_logind.rs). Needs root. See DEVELOPERS.md, "The logind test container".
#
#   ci/container.sh build          debootstrap the rootfs into $LOGOFF_ROOTFS (skipped if cached)
#   ci/container.sh start          boot it with systemd-nspawn in the background, wait for
#                                  logind and sshd (on 127.0.0.1:$LOGOFF_SSH_PORT)
#   ci/container.sh exec CMD...    run CMD inside the running container (all namespaces)
#   ci/container.sh leader         print the pid of the container's init (on the host)
#   ci/container.sh status         exit 0 when the container is running
#   ci/container.sh stop           power it off (and kill it if it does not stop)
#
# Environment:
#   LOGOFF_ROOTFS     the rootfs (default /var/cache/logoff-users/rootfs-bookworm)
#   LOGOFF_STATE      run-time state: pids, log, ssh key (default /run/logoff-users/container)
#   LOGOFF_SSH_PORT   sshd's port on 127.0.0.1 (default 2222)
#   LOGOFF_MACHINE    the machine name, which also names nspawn's cgroup (default logoff-test);
#                     containers that run side by side need distinct LOGOFF_MACHINE,
#                     LOGOFF_STATE and LOGOFF_SSH_PORT (they may share the rootfs)
#   LOGOFF_MIRROR     Debian mirror (default: the one apt uses, else http://deb.debian.org/debian)
#   LOGOFF_NSPAWN_CGROUP  unified (default), legacy or auto: the container's cgroup layout
#   LOGOFF_BIND_RO    host directory bind-mounted read-only at /opt/logoff (optional)
#   LOGOFF_VOLATILE   1 (default): changes inside the container vanish when it stops; 0: they
#                     are written to the rootfs
set -euo pipefail

ROOTFS=${LOGOFF_ROOTFS:-/var/cache/logoff-users/rootfs-bookworm}
STATE=${LOGOFF_STATE:-/run/logoff-users/container}
PORT=${LOGOFF_SSH_PORT:-2222}
SUITE=bookworm
# Bump when the rootfs recipe changes, so that a cached rootfs is rebuilt.
RECIPE=5
STAMP=.logoff-users-rootfs
# python3: Ansible's modules run on the managed host (ci/ansible.sh).
PACKAGES=systemd,systemd-sysv,dbus,libpam-systemd,openssh-server,procps,psmisc,sudo,python3
MACHINE=${LOGOFF_MACHINE:-logoff-test}

log() { printf 'container.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# A file's words (pids), or nothing when it cannot be read.
cat_quiet() { cat "$1" 2>/dev/null || true; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

case "$MACHINE" in
    '' | *[!A-Za-z0-9-]*) die "LOGOFF_MACHINE must be letters, digits and '-': '$MACHINE'" ;;
esac

# The mirror apt already uses for Debian (deb822 .sources or one-line .list), so that the
# build works where apt works.
detect_mirror() {
    if [ -n "${LOGOFF_MIRROR:-}" ]; then echo "$LOGOFF_MIRROR"; return; fi
    local m=""
    m=$(awk 'tolower($1)=="uris:" && $2 ~ /debian\/?$/ {print $2; exit}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$m" ]; then
        m=$(awk '$1=="deb" && $0 ~ /bookworm/ && $0 !~ /security/ {
                 for (i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

rootfs_valid() {
    [ -f "$ROOTFS/$STAMP" ] && [ "$(cat "$ROOTFS/$STAMP")" = "$RECIPE" ] &&
        [ -x "$ROOTFS/lib/systemd/systemd" ] && [ -x "$ROOTFS/lib/systemd/systemd-logind" ] &&
        [ -x "$ROOTFS/usr/sbin/sshd" ] && [ -x "$ROOTFS/usr/bin/python3" ]
}

host_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
    command -v ssh >/dev/null || missing+=(openssh-client)
    command -v nsenter >/dev/null || missing+=(util-linux)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
            || { apt-get update && DEBIAN_FRONTEND=noninteractive \
                 apt-get install -y --no-install-recommends "${missing[@]}"; }
    fi
}

cmd_build() {
    need_root
    host_tools
    if rootfs_valid; then log "rootfs cached and valid: $ROOTFS"; return 0; fi
    local users
    users=$(rootfs_users)
    [ -z "$users" ] || die "rootfs $ROOTFS is outdated but in use by systemd-nspawn (pid $users): stop it first"
    local mirror tmp start
    mirror=$(detect_mirror)
    tmp="$ROOTFS.tmp"
    rm -rf "$tmp"
    mkdir -p "$(dirname "$ROOTFS")"
    start=$(date +%s)
    log "debootstrap $SUITE from $mirror into $tmp"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp" "$mirror" \
        > "$(dirname "$ROOTFS")/debootstrap.log" 2>&1 \
        || { tail -30 "$(dirname "$ROOTFS")/debootstrap.log" >&2; die "debootstrap failed"; }
    log "debootstrap took $(( $(date +%s) - start )) s"
    configure_rootfs "$tmp"
    echo "$RECIPE" > "$tmp/$STAMP"
    rm -rf "$ROOTFS"
    mv "$tmp" "$ROOTFS"
    log "rootfs ready: $ROOTFS ($(du -sh "$ROOTFS" | cut -f1))"
}

# systemd-nspawn processes running from $ROOTFS (any machine name, any worktree): the
# rootfs must not be replaced under their overlay.
rootfs_users() {
    local f pid
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}; pid=${pid%/cmdline}
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd-nspawn ] || continue
        if tr '\0' '\n' < "$f" 2>/dev/null | grep -qxF -- "--directory=$ROOTFS"; then
            printf '%s ' "$pid"
        fi
    done
}

# Everything that does not depend on run-time choices (the port, the key) is set here.
configure_rootfs() {
    local r=$1
    # The default machine name; nspawn sets each container's hostname to its own name.
    echo logoff-test > "$r/etc/hostname"
    printf '127.0.0.1 localhost logoff-test\n::1 localhost\n' > "$r/etc/hosts"
    # No password logins at all: the tests use keys.
    mkdir -p "$r/etc/ssh/sshd_config.d"
    cat > "$r/etc/ssh/sshd_config.d/10-logoff-users.conf" <<'EOF'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM yes
UseDNS no
EOF
    # The port and address come from `start`, in a drop-in read before this one
    # (05-port.conf, bind-mounted from the state directory).
    # Units that have nothing to do in a container sharing the host's network, or that
    # would fight over the host's console.
    local unit
    for unit in getty@tty1.service console-getty.service systemd-networkd.service \
                systemd-resolved.service systemd-timesyncd.service apt-daily.timer \
                apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer ssh.socket; do
        ln -sf /dev/null "$r/etc/systemd/system/$unit"
    done
    mkdir -p "$r/opt/logoff"
    # Mount point of root's authorized_keys (bind-mounted by `start`).
    install -d -m 700 "$r/root/.ssh"
    # Host keys are generated by openssh-server's postinst; make sure they exist.
    chroot "$r" ssh-keygen -A >/dev/null
}

# A systemd in another pid namespace than ours: the container's init. (Its /proc/PID/root
# reads "/" from the host, because nspawn pivots root inside its own mount namespace.)
is_container_init() {
    [ "$(readlink "/proc/$1/ns/pid" 2>/dev/null)" != "$(readlink /proc/self/ns/pid)" ] &&
        [ "$(cat "/proc/$1/comm" 2>/dev/null)" = systemd ]
}

# nspawn's cgroup (see cmd_start): the container's init is in payload/init.scope, nspawn
# itself in supervisor. This finds a container even when its state directory is gone (a
# test run that was killed).
ct_cgroup() { echo "$(unified_root)/logoff-users-$MACHINE"; }

cgroup_leader() {
    local p
    for p in $(cat_quiet "$(ct_cgroup)/payload/init.scope/cgroup.procs"); do
        if is_container_init "$p"; then echo "$p"; return 0; fi
    done
    return 1
}

cgroup_nspawn() {
    local p
    for p in $(cat_quiet "$(ct_cgroup)/supervisor/cgroup.procs"); do
        if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd-nspawn ]; then echo "$p"; return 0; fi
    done
    return 1
}

state_leader() {
    [ -f "$STATE/leader" ] || return 1
    local pid
    pid=$(cat "$STATE/leader")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    # The pid must still be the container's init (not a recycled pid).
    is_container_init "$pid" || return 1
    echo "$pid"
}

leader_pid() { state_leader || cgroup_leader; }

nspawn_pid() {
    local pid=""
    [ -f "$STATE/nspawn" ] && pid=$(cat "$STATE/nspawn")
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd-nspawn ]; then
        echo "$pid"
    else
        cgroup_nspawn
    fi
}

in_ct() {
    local pid
    pid=$(leader_pid) || die "container is not running"
    nsenter -t "$pid" -a -- "$@"
}

port_busy() {
    # ss may not exist everywhere; /proc/net/tcp is always there. Listening sockets only.
    local hex
    hex=$(printf '%04X' "$PORT")
    awk -v p=":$hex" '$4=="0A" && substr($2, length($2)-4)==p {found=1} END {exit !found}' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup (unified) or
# /sys/fs/cgroup/unified (hybrid, as on the build machine).
unified_root() {
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo /sys/fs/cgroup
    elif [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then echo /sys/fs/cgroup/unified
    else die "no cgroup v2 hierarchy mounted"; fi
}

# Never leave a half-started container behind.
start_failed() {
    log "start failed: $*"
    tail -20 "$STATE/nspawn.log" >&2 || true
    cmd_stop || true
    exit 1
}

cmd_start() {
    need_root
    rootfs_valid || die "no valid rootfs at $ROOTFS: run '$0 build' first"
    if state_leader >/dev/null; then log "already running (leader $(state_leader))"; return 0; fi
    if cgroup_leader >/dev/null; then
        die "a container of an earlier run is still running (leader $(cgroup_leader)): run '$0 stop'"
    fi
    port_busy && die "port $PORT on 127.0.0.1 is in use: set LOGOFF_SSH_PORT"
    case "$STATE" in *:*) die "LOGOFF_STATE must not contain ':' (nspawn's --bind-ro separator)" ;; esac
    mkdir -p "$STATE"
    rm -f "$STATE/leader" "$STATE/nspawn"

    # The port drop-in sorts before 10-logoff-users.conf: sshd uses the first value.
    # It and root's authorized_keys are bind-mounted from the state directory, never
    # written into the rootfs: containers that share the rootfs each keep their own.
    printf 'ListenAddress 127.0.0.1:%s\n' "$PORT" > "$STATE/05-port.conf"
    # Root's key for the tests, fresh for each state dir (kept if the state dir has one).
    if [ ! -f "$STATE/id_ed25519" ]; then
        ssh-keygen -q -t ed25519 -N '' -C logoff-users-test -f "$STATE/id_ed25519"
    fi
    install -m 600 "$STATE/id_ed25519.pub" "$STATE/authorized_keys"

    local extra=(--bind-ro="$STATE/05-port.conf:/etc/ssh/sshd_config.d/05-port.conf"
                 --bind-ro="$STATE/authorized_keys:/root/.ssh/authorized_keys")
    if [ -n "${LOGOFF_BIND_RO:-}" ]; then extra+=("--bind-ro=$LOGOFF_BIND_RO:/opt/logoff"); fi
    # A tmpfs overlay over the rootfs: whatever the tests change (users, homes) is gone
    # when the container stops, and the cached rootfs stays clean.
    if [ "${LOGOFF_VOLATILE:-1}" = 1 ]; then extra+=(--volatile=overlay); fi

    # The host mounts cgroup v1 controllers on a tmpfs at /sys/fs/cgroup and cgroup2 at
    # /sys/fs/cgroup/unified (a "hybrid" layout), and its PID 1 is not systemd. nspawn
    # copes, but the container must use the unified hierarchy for logind to track
    # sessions by cgroup: see DEVELOPERS.md.
    # LOGOFF_NSPAWN_CGROUP=auto leaves the choice to nspawn (for experiments).
    case "${LOGOFF_NSPAWN_CGROUP:-unified}" in
        unified) export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 ;;
        legacy) export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0 ;;
        auto) unset SYSTEMD_NSPAWN_UNIFIED_HIERARCHY ;;
        *) die "LOGOFF_NSPAWN_CGROUP must be unified, legacy or auto" ;;
    esac
    # nspawn (not run by systemd here) creates "supervisor" and "payload" cgroups next to its
    # own cgroup: give it a cgroup of its own, so they do not land at the hierarchy's root.
    local cg
    cg=$(ct_cgroup)
    mkdir -p "$cg"
    ( echo $BASHPID > "$cg/cgroup.procs"
      exec setsid systemd-nspawn --quiet --boot --register=no --keep-unit \
        --directory="$ROOTFS" --machine="$MACHINE" --console=passive \
        "${extra[@]}" ) > "$STATE/nspawn.log" 2>&1 < /dev/null &
    local npid=$!
    echo "$npid" > "$STATE/nspawn"

    # The leader is nspawn's child whose root is the rootfs.
    local leader="" t0 c
    t0=$(date +%s%N)
    for _ in $(seq 1 200); do
        kill -0 "$npid" 2>/dev/null || start_failed "systemd-nspawn exited"
        for c in $(cat_quiet "/proc/$npid/task/$npid/children"); do
            if is_container_init "$c"; then leader=$c; fi
        done
        [ -n "$leader" ] && break
        sleep 0.05
    done
    [ -n "$leader" ] || start_failed "no container init found"
    echo "$leader" > "$STATE/leader"

    # Wait for logind, dbus and sshd, not for "running": a degraded unit is not our concern.
    local ok=""
    for _ in $(seq 1 300); do
        if nsenter -t "$leader" -a -- systemctl is-active --quiet systemd-logind.service dbus.service ssh.service 2>/dev/null; then
            ok=1; break
        fi
        kill -0 "$npid" 2>/dev/null || start_failed "systemd-nspawn exited"
        sleep 0.1
    done
    if [ -z "$ok" ]; then
        nsenter -t "$leader" -a -- systemctl --no-pager --failed >&2 || true
        start_failed "logind/dbus/sshd did not come up within 30 s"
    fi
    local state
    state=$(nsenter -t "$leader" -a -- systemctl is-system-running 2>/dev/null || true)
    log "running: leader $leader, nspawn $npid, system $state, sshd 127.0.0.1:$PORT," \
        "boot $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    echo "$leader"
}

cmd_stop() {
    local leader npid cg
    leader=$(leader_pid || true)
    npid=$(nspawn_pid || true)
    cg=$(ct_cgroup)
    if [ -n "$leader" ]; then
        # SIGRTMIN+4 asks systemd for a clean poweroff (what machinectl poweroff sends).
        kill -s RTMIN+4 "$leader" 2>/dev/null || true
    fi
    for _ in $(seq 1 100); do
        { [ -n "$leader" ] && [ -d "/proc/$leader" ]; } || { [ -n "$npid" ] && [ -d "/proc/$npid" ]; } || break
        sleep 0.1
    done
    # Whatever is still in the container's cgroup was started by this script: kill it all.
    if [ -d "$cg" ] && [ -n "$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)" ]; then
        log "did not power off in 10 s: killing"
        if [ -f "$cg/cgroup.kill" ]; then
            echo 1 > "$cg/cgroup.kill"
        else
            [ -n "$leader" ] && kill -KILL "$leader" 2>/dev/null
            [ -n "$npid" ] && kill -KILL "$npid" 2>/dev/null
        fi
        for _ in $(seq 1 50); do
            [ -z "$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] && break
            sleep 0.1
        done
    fi
    rm -f "$STATE/leader" "$STATE/nspawn"
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
    if [ -z "$leader" ] && [ -z "$npid" ]; then log "not running"; else log "stopped"; fi
}

cmd_status() {
    local leader
    leader=$(leader_pid) || { echo "stopped"; return 1; }
    echo "running (leader $leader)"
}

main() {
    local cmd=${1:-}
    shift || true
    case "$cmd" in
        build) cmd_build ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        leader) leader_pid || die "container is not running" ;;
        exec) [ $# -gt 0 ] || die "exec needs a command"; in_ct "$@" ;;
        valid) rootfs_valid ;;
        *) sed -n '2,20p' "$0" >&2; exit 2 ;;
    esac
}

main "$@"

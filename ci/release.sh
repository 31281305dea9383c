#!/usr/bin/env bash
# The release leg of CI: release/build.sh as a release would run it, then checks of what
# it wrote.
#   1. the .exe is signed (Authenticode, osslsigncode) with a throwaway self-signed
#      certificate made here, and `osslsigncode verify` accepts it; SHA256SUMS holds;
#   2. lintian: no error and no warning on the .deb (pedantic and info tags are printed);
#   3. THIRD-PARTY-NOTICES.md is what cargo-about writes for this Cargo.lock;
#   4. rmm/check.py (tree-sitter in a venv): every script under rmm/ and every generated
#      script parses and keeps the rules, each self-contained script's payload decodes to
#      the signed .exe byte for byte; and its self-test (each rule can fail);
#   5. the .deb in the logind container: dpkg -i, `logoff-users --list` from a real ssh
#      session lists that session, dpkg -r removes the binary;
#   6. the sizes of the .exe, the self-contained scripts and the .deb (bench/RESULTS.md).
#
#   sudo bash ci/release.sh          # dist/ is left for ci/ansible.sh (the musl binary)
#
# Needs root (apt, the container). Its container has its own LOGOFF_MACHINE, LOGOFF_STATE
# and port, so it runs beside another test's. Prints "release: N passed, M failed" last.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

log() { printf '\n=== release.sh: %s (%ss)\n' "$*" "$SECONDS"; }
die() { printf 'release.sh: error: %s\n' "$*" >&2; exit 1; }
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
[ "$(id -u)" = 0 ] || die "must run as root (apt, containers)"

WORK=$(mktemp -d /tmp/logoff-release.XXXXXX)
CT_STATE=/run/logoff-users/release-deb
CT_STARTED=0
ct() {
    LOGOFF_STATE=$CT_STATE LOGOFF_MACHINE=logoff-release-deb LOGOFF_SSH_PORT=$CT_PORT \
        LOGOFF_VOLATILE=1 LOGOFF_BIND_RO="$REPO/dist" bash "$REPO/ci/container.sh" "$@"
}
cleanup() {
    local rc=$?
    set +e
    [ "$CT_STARTED" = 0 ] || ct stop
    rm -rf "$WORK"
    echo "release.sh: took ${SECONDS}s"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need=()
command -v osslsigncode >/dev/null || need+=(osslsigncode)
command -v lintian >/dev/null || need+=(lintian)
command -v openssl >/dev/null || need+=(openssl)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ "${#need[@]}" -gt 0 ]; then
    log "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- 1. build, signed with a throwaway certificate --------------------------------------
log "a throwaway code-signing certificate"
openssl req -x509 -newkey rsa:3072 -nodes -days 1 -subj "/CN=logoff-users CI throwaway signer" \
    -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=codeSigning" \
    -keyout "$WORK/sign.key" -out "$WORK/sign.crt" 2>/dev/null

log "release/build.sh"
JOBS=${JOBS:-2} SIGN_CERT="$WORK/sign.crt" SIGN_KEY="$WORK/sign.key" STRICT=1 \
    RELEASE_URL='https://downloads.example.invalid/logoff-users/{version}/{file}' \
    bash release/build.sh | tee "$WORK/build.log"
VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)"
EXE=dist/logoff-users-$VERSION-windows-x86_64.exe
DEB=dist/logoff-users_${VERSION}_amd64.deb

log "osslsigncode verify"
if osslsigncode verify -CAfile "$WORK/sign.crt" -in "$EXE" >"$WORK/verify.log" 2>&1 &&
    grep -q "Signature verification: ok" "$WORK/verify.log"; then
    pass "the .exe carries a valid Authenticode signature by the throwaway certificate"
else
    cat "$WORK/verify.log"
    fail "osslsigncode verify rejects the .exe"
fi
if (cd dist && sha256sum -c --quiet SHA256SUMS) && grep -q " logoff-users-$VERSION-windows-x86_64.exe$" dist/SHA256SUMS; then
    pass "SHA256SUMS holds, the signed .exe included"
else
    fail "SHA256SUMS does not hold"
fi
if grep -qi "$(sha256sum "$EXE" | cut -c1-64)" dist/rmm/ninjaone/LogOff-Users.ps1; then
    pass "the RMM scripts pin the signed .exe's SHA-256"
else
    fail "the RMM scripts do not pin the signed .exe's SHA-256"
fi

# --- 2. lintian ---------------------------------------------------------------------------
log "lintian"
# As nobody: lintian unpacks untrusted packages and says so when run as root.
cp "$DEB" "$WORK/" && chmod 0755 "$WORK" && chmod 0644 "$WORK/$(basename "$DEB")"
setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp \
    lintian --pedantic -I -E --color never "$WORK/$(basename "$DEB")" >"$WORK/lintian.log" 2>&1 || true
cat "$WORK/lintian.log"
if grep -q '^[EW]: ' "$WORK/lintian.log"; then
    fail "lintian reports errors or warnings on the .deb"
else
    pass "lintian: no error and no warning on the .deb"
fi

# --- 3. third-party notices ---------------------------------------------------------------
if cmp -s dist/THIRD-PARTY-NOTICES.md THIRD-PARTY-NOTICES.md; then
    pass "THIRD-PARTY-NOTICES.md is what cargo-about writes for Cargo.lock"
else
    fail "THIRD-PARTY-NOTICES.md is stale: cp dist/THIRD-PARTY-NOTICES.md ."
fi

# --- 4. the RMM scripts -------------------------------------------------------------------
log "rmm/check.py"
RMM_VENV=/var/cache/logoff-users/rmm-venv
if [ ! -x "$RMM_VENV/bin/python" ] || ! "$RMM_VENV/bin/python" -c 'import tree_sitter, tree_sitter_powershell' 2>/dev/null; then
    rm -rf "$RMM_VENV"
    python3 -m venv "$RMM_VENV"
    "$RMM_VENV/bin/pip" install -q --disable-pip-version-check tree-sitter tree-sitter-powershell
fi
if "$RMM_VENV/bin/python" rmm/check.py --release-dir dist/rmm --exe "$EXE"; then
    pass "rmm/check.py: every script parses and keeps the rules; the payloads are the signed .exe"
else
    fail "rmm/check.py reports problems"
fi
if "$RMM_VENV/bin/python" rmm/check.py --self-test; then
    pass "rmm/check.py --self-test: every break of a script is reported"
else
    fail "rmm/check.py --self-test"
fi
if python3 rmm/generate.py --check; then pass "rmm/*/*.ps1 are what rmm/generate.py writes"
else fail "rmm/*/*.ps1 are stale: run python3 rmm/generate.py"; fi

# --- 5. the .deb in the logind container ----------------------------------------------------
log "the .deb in a logind container"
bash ci/container.sh build
CT_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
if ct status >/dev/null 2>&1; then ct stop; fi
CT_STARTED=1
ct start >/dev/null
ssh_ct() {
    ssh -i "$CT_STATE/id_ed25519" -p "$CT_PORT" -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 root@127.0.0.1 "$@"
}
if ct exec dpkg -i "/opt/logoff/$(basename "$DEB")" >"$WORK/dpkg.log" 2>&1; then
    pass "dpkg -i $(basename "$DEB")"
else
    cat "$WORK/dpkg.log"
    fail "dpkg -i failed"
fi
if ssh_ct 'logoff-users --list' >"$WORK/list.log" 2>&1 && grep -qE '\broot\b.*\bactive\b' "$WORK/list.log"; then
    pass "logoff-users --list, run in a real ssh session, lists that root session: $(grep -E '\broot\b' "$WORK/list.log" | head -n1)"
else
    cat "$WORK/list.log"
    fail "logoff-users --list in the container did not list the ssh session"
fi
if ct exec sh -c 'test -f /usr/share/man/man1/logoff-users.1.gz && test -f /usr/share/doc/logoff-users/copyright'; then
    pass "the man page and the copyright file are installed"
else
    fail "the man page or the copyright file is missing"
fi
if ct exec dpkg -r logoff-users >>"$WORK/dpkg.log" 2>&1 && ! ct exec test -e /usr/bin/logoff-users &&
    ! ct exec dpkg -s logoff-users >/dev/null 2>&1; then
    pass "dpkg -r removes the package and /usr/bin/logoff-users"
else
    cat "$WORK/dpkg.log"
    fail "dpkg -r did not remove the package"
fi
ct stop
CT_STARTED=0

# --- 6. sizes -----------------------------------------------------------------------------
log "sizes (bench/RESULTS.md)"
for f in "$EXE" dist/rmm/*/LogOff-Users-SelfContained.ps1 "$DEB"; do
    printf '%10d bytes  %s\n' "$(stat -c %s "$f")" "$f"
done

echo
echo "release: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

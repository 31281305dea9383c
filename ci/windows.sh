#!/usr/bin/env bash
# The Windows leg of CI: lint and build for x86_64-pc-windows-gnu, then run the real .exe
# end to end under Wine against the wtsapi32.dll stand-in (ci/wine/wtsapi32/), in a
# throwaway WINEPREFIX:
#
#   1. clippy -D warnings and a build of the .exe, wts_probe.exe and the library's tests;
#   2. a fresh prefix with the bcryptprimitives.dll stand-in (Rust std needs ProcessPrng,
#      which Wine 8 lacks) and the wtsapi32.dll stand-in in its system32, loaded instead of
#      Wine's own (WINEDLLOVERRIDES="wtsapi32=n");
#   3. the stand-in's own self-test (ci/wine/standin-test.sh), then the library's tests
#      under Wine (the Windows wrappers run for real);
#   4. the scenarios of ci/wine/scenarios.py: each runs the .exe against a JSON state of
#      sessions and processes (some of them real Wine processes it starts) and asserts the
#      exit code, the JSON report and what the stand-in recorded.
#
# Ends with one line "windows: N passed, M failed" (the stand-in's self-test and the
# library tests count as one check each, each scenario as one) and exits 1 when M is not 0. What this proves and what it cannot:
# README, "What is proven where".
#
# Runs as root on a fresh Debian 12; installs what it needs. Every Wine run has a timeout,
# so a hang fails the job instead of stalling it. WINDOWS_KEEP=1 keeps the work directory.
set -euo pipefail

cd "$(dirname "$0")/.."
TARGET=x86_64-pc-windows-gnu
log() { printf '==> %s\n' "$*"; }
fail() {
    printf 'FAIL %s\n' "$*" >&2
    echo "windows: 0 passed, 1 failed"
    exit 1
}

# --- tools -------------------------------------------------------------------------------
need_apt=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need_apt+=(gcc-mingw-w64-x86-64)
command -v wine >/dev/null || need_apt+=(wine wine64)
command -v python3 >/dev/null || need_apt+=(python3)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
    log "adding the $TARGET target"
    rustup target add "$TARGET"
fi

# --- lint and build ----------------------------------------------------------------------
log "clippy for $TARGET"
cargo clippy --target "$TARGET" --all-targets -- -D warnings || fail "clippy"
RUSTDOCFLAGS="-D warnings" cargo doc --target "$TARGET" --no-deps -q || fail "cargo doc"
log "build for $TARGET"
cargo build --target "$TARGET" --bins --examples || fail "build"
cargo test --target "$TARGET" --lib --no-run || fail "build of the library's tests"
EXE=$PWD/target/$TARGET/debug/logoff-users.exe
PROBE=$PWD/target/$TARGET/debug/examples/wts_probe.exe
[[ -f $EXE && -f $PROBE ]] || fail "the build did not produce $EXE and $PROBE"

# --- a throwaway Wine prefix with the stand-ins ------------------------------------------
WORK=$(mktemp -d /tmp/logoff-users-windows.XXXXXX)
WINEPREFIX=$WORK/prefix
export WINEPREFIX WINEDEBUG=-all WINEDLLOVERRIDES="wtsapi32=n;mscoree,mshtml="
cleanup() {
    # Stops only this prefix's wineserver (and the Wine processes under it).
    timeout 20 wineserver -k >/dev/null 2>&1 || true
    if [[ ${WINDOWS_KEEP:-0} == 1 ]]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

log "wineboot in $WINEPREFIX"
mkdir -p "$WINEPREFIX"
# One persistent wineserver for the whole run (started first: it refuses to start while
# another serves the prefix); without it every run starts Wine's services anew.
wineserver -p || fail "wineserver -p"
timeout 180 wine wineboot -i >/dev/null 2>&1 || fail "wineboot -i failed or hung"
SYSTEM32=$WINEPREFIX/drive_c/windows/system32
[[ -d $SYSTEM32 ]] || fail "wineboot did not create $SYSTEM32"

log "building the stand-ins"
CFLAGS=(-O2 -Wall -Wextra -Werror)
x86_64-w64-mingw32-gcc -shared "${CFLAGS[@]}" -o "$SYSTEM32/bcryptprimitives.dll" \
    ci/wine/bcryptprimitives.c -ladvapi32 || fail "bcryptprimitives.dll"
# In system32 it replaces Wine's builtin for every program in this prefix (with
# WINEDLLOVERRIDES wtsapi32=n), the library's test binary included.
x86_64-w64-mingw32-gcc -shared -s "${CFLAGS[@]}" -o "$SYSTEM32/wtsapi32.dll" \
    ci/wine/wtsapi32/wtsapi32.c ci/wine/wtsapi32/json.c ci/wine/wtsapi32/wtsapi32.def -ladvapi32 ||
    fail "wtsapi32.dll"
x86_64-w64-mingw32-gcc -municode -s "${CFLAGS[@]}" -o "$WORK/standin_sleeper.exe" \
    ci/wine/wtsapi32/standin_sleeper.c || fail "standin_sleeper.exe"
# Runs a command inside a job object that kills everything in it when it closes, as RMM
# agents run scripts (the scheduled-logoff scenarios).
x86_64-w64-mingw32-gcc -municode -s "${CFLAGS[@]}" -o "$WORK/jobwrap.exe" ci/wine/jobwrap.c || fail "jobwrap.exe"

passed=0
failed=0

# --- the stand-in's own self-test (its own prefix) ---------------------------------------
log "the stand-in's self-test (ci/wine/standin-test.sh)"
if env -u WINEPREFIX bash ci/wine/standin-test.sh >"$WORK/standin-test.log" 2>&1; then
    passed=$((passed + 1))
    echo "PASS standin-self-test ($(tail -n 1 "$WORK/standin-test.log"))"
else
    failed=$((failed + 1))
    tail -n 30 "$WORK/standin-test.log"
    echo "FAIL standin-self-test"
fi

# --- the library's tests, Windows side included ------------------------------------------
# A plain machine for them: the console session of the Wine user, and SYSTEM's services.
cat >"$WORK/lib-state.json" <<'EOF'
{"version": 1, "current_session": 1, "servers": {"local": {
  "sessions": [{"id": 0, "station": "Services", "state": "WTSDisconnected"},
               {"id": 1, "station": "Console", "user": "root", "domain": "VM"}],
  "processes": [{"pid": 620, "session": 0, "sid": "S-1-5-18", "name": "services.exe"}]}}}
EOF
log "library tests under Wine"
if WTS_STANDIN_STATE=$WORK/lib-state.json WTS_STANDIN_LOG=$WORK/lib-record.jsonl \
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="timeout 300 wine" \
    cargo test --target "$TARGET" --lib 2>&1 | tee "$WORK/lib-tests.log" &&
    grep -q 'test result: ok' "$WORK/lib-tests.log" &&
    grep -q '"fn":"WTSEnumerateSessionsExW"' "$WORK/lib-record.jsonl"; then
    passed=$((passed + 1))
    echo "PASS lib-tests"
else
    failed=$((failed + 1))
    echo "FAIL lib-tests (the stand-in must have been called: $WORK/lib-record.jsonl)"
fi

# --- the scenarios -----------------------------------------------------------------------
log "scenarios"
python3 ci/wine/scenarios.py --exe "$EXE" --probe "$PROBE" --sleeper "$WORK/standin_sleeper.exe" \
    --jobwrap "$WORK/jobwrap.exe" --work "$WORK/scenarios" | tee "$WORK/scenarios.log" || true
passed=$((passed + $(grep -c '^PASS ' "$WORK/scenarios.log" || true)))
failed=$((failed + $(grep -c '^FAIL ' "$WORK/scenarios.log" || true)))
# A driver that died early prints no closing line: that is a failure too.
grep -q '^scenarios: ' "$WORK/scenarios.log" || failed=$((failed + 1))

# --- the release build (release/build.sh: panic = abort, signed by ci/release.sh) ---------
# Given by ci/release.sh through LOGOFF_RELEASE_EXE: it must start, answer --version, list
# and plan under the stand-in like the debug build.
if [[ -n ${LOGOFF_RELEASE_EXE:-} ]]; then
    log "the release .exe"
    cat >"$WORK/release-state.json" <<'EOF'
{"version": 1, "current_session": 1, "servers": {"local": {
  "sessions": [{"id": 1, "station": "Console", "user": "root", "domain": "VM"},
               {"id": 2, "station": "RDP-Tcp#0", "user": "bob", "domain": "CORP", "protocol": 2}],
  "processes": []}}}
EOF
    rel() {
        WINEDLLOVERRIDES="mscoree,mshtml=;wtsapi32=n" WTS_STANDIN_STATE=$WORK/release-state.json \
            WTS_STANDIN_LOG=$WORK/release-record.jsonl timeout 60 wine "$LOGOFF_RELEASE_EXE" "$@" 2>>"$WORK/release.err"
    }
    if [[ -f $LOGOFF_RELEASE_EXE ]] && rel --version | grep -q '^logoff-users ' &&
        rel --list --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert any(s["user"] == "bob" for s in d["hosts"][0]["sessions"]), d' &&
        rel --dry-run ALL | grep -qF 'would log off session 2 (RDP-Tcp#0) of CORP\bob'; then
        passed=$((passed + 1))
        echo "PASS release-exe"
    else
        failed=$((failed + 1))
        cat "$WORK/release.err" >&2
        echo "FAIL release-exe ($LOGOFF_RELEASE_EXE)"
    fi
fi

echo "windows: $passed passed, $failed failed"
((failed == 0))

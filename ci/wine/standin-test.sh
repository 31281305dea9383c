#!/usr/bin/env bash
# Self-test of the wtsapi32.dll stand-in (ci/wine/wtsapi32/): builds the DLL, a test program
# linked against the normal import library and a sleeper program, then runs the test under
# Wine with the stand-in loaded instead of Wine's wtsapi32, and checks both what the API
# returned (standin_test.c) and what the stand-in recorded (check_record.py).
#
# Prints "standin: N passed, M failed" and exits non-zero when a check failed.
# Runs as root on a fresh Debian 12 (installs what it needs). The Wine prefix is a throwaway
# one in /tmp, unless STANDIN_WINEPREFIX names an existing prefix to reuse (faster locally).
# STANDIN_KEEP=1 keeps the work directory (state, record logs, outputs) for a look.
set -euo pipefail

cd "$(dirname "$0")/../.."
SRC=ci/wine/wtsapi32
RUN_TIMEOUT=120
log() { printf '==> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

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

# --- build -------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/standin-test.XXXXXX)
BUILD=$WORK/bin
mkdir -p "$BUILD"
if [[ -n ${STANDIN_WINEPREFIX:-} ]]; then
    WINEPREFIX=$STANDIN_WINEPREFIX
    OWN_PREFIX=0
else
    WINEPREFIX=$(mktemp -d /tmp/standin-wine.XXXXXX)
    OWN_PREFIX=1
fi
# wtsapi32=n: native (ours, found beside the .exe) instead of Wine's builtin.
export WINEPREFIX WINEDEBUG=-all WINEDLLOVERRIDES="wtsapi32=n;mscoree,mshtml="
cleanup() {
    # Stops only this prefix's wineserver (and the Wine processes under it).
    timeout 20 wineserver -k >/dev/null 2>&1 || true
    if ((OWN_PREFIX)); then
        rm -rf "$WINEPREFIX"
    fi
    if [[ ${STANDIN_KEEP:-0} == 1 ]]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

CFLAGS=(-O2 -Wall -Wextra -Werror)
log "building the stand-in, the test and the sleeper"
x86_64-w64-mingw32-gcc -shared -s "${CFLAGS[@]}" -o "$BUILD/wtsapi32.dll" \
    "$SRC/wtsapi32.c" "$SRC/json.c" "$SRC/wtsapi32.def" -ladvapi32
x86_64-w64-mingw32-gcc -s "${CFLAGS[@]}" -o "$BUILD/standin_test.exe" \
    "$SRC/standin_test.c" -lwtsapi32 -ladvapi32
x86_64-w64-mingw32-gcc -municode -s "${CFLAGS[@]}" -o "$BUILD/standin_sleeper.exe" \
    "$SRC/standin_sleeper.c"

# --- prefix ------------------------------------------------------------------------------
if [[ ! -d $WINEPREFIX/drive_c/windows/system32 ]]; then
    log "wineboot in $WINEPREFIX"
    timeout 180 wine wineboot -i >/dev/null 2>&1 || fail "wineboot -i failed or hung"
fi
[[ -d $WINEPREFIX/drive_c/windows/system32 ]] || fail "no prefix at $WINEPREFIX"
# A C program needs no bcryptprimitives.dll stand-in (only Rust's std imports ProcessPrng).

# --- run ---------------------------------------------------------------------------------
python3 "$SRC/standin_state.py" "$WORK"
# wine_run NAME STATE LOG ARGS...: the test under Wine, output kept in $WORK/NAME.out.
wine_run() {
    local name=$1 state=$2 record=$3 code=0
    shift 3
    WTS_STANDIN_STATE=$state WTS_STANDIN_LOG=$record STANDIN_WORK="Z:${WORK//\//\\}" \
        timeout "$RUN_TIMEOUT" wine "$BUILD/standin_test.exe" "$@" >"$WORK/$name.out" 2>&1 ||
        code=$?
    ((code != 124)) || fail "$name: no answer within ${RUN_TIMEOUT}s (hang)"
    tr -d '\r' <"$WORK/$name.out"
    [[ -s $record ]] || fail "$name: nothing recorded: Wine did not load the stand-in"
}
log "standin_test.exe"
wine_run test "$WORK/state.json" "$WORK/record.jsonl"
log "standin_test.exe --broken (a state with an unknown key)"
wine_run broken "$WORK/broken-state.json" "$WORK/broken.jsonl" --broken
log "checking the record log"
python3 "$SRC/check_record.py" "$WORK/record.jsonl" "$WORK/broken.jsonl" "$WORK" \
    >"$WORK/record.out" || true
cat "$WORK/record.out"

# --- verdict -----------------------------------------------------------------------------
outputs=("$WORK/test.out" "$WORK/broken.out" "$WORK/record.out")
passed=$(cat "${outputs[@]}" | grep -c '^PASS ' || true)
failed=$(cat "${outputs[@]}" | grep -c '^FAIL ' || true)
# A program that died early prints no closing line: that is a failure too.
for out in "$WORK/test.out" "$WORK/broken.out"; do
    grep -q '^checks: ' "$out" || { failed=$((failed + 1)); echo "FAIL $(basename "$out"): no closing line"; }
done
grep -q '^record: ' "$WORK/record.out" || { failed=$((failed + 1)); echo "FAIL record: no closing line"; }
echo "standin: $passed passed, $failed failed"
((failed == 0))

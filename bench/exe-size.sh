#!/usr/bin/env bash
# Builds the Windows .exe in the variants bench/RESULTS.md ("Release sizes") compares and
# prints each one's size, gzip -9 and zopfli sizes. Not a test; it only builds, in
# target/size-*/ (about a minute per variant on 2 cores once the dependencies are built).
#
#   bash bench/exe-size.sh            # stable toolchain variants
#   NIGHTLY_FLAGS=1 bash bench/exe-size.sh   # also -Zbuild-std (through RUSTC_BOOTSTRAP=1;
#                                            # needs `rustup component add rust-src`)
set -euo pipefail
cd "$(dirname "$0")/.."
T=x86_64-pc-windows-gnu
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
row() { # name exe
    local z=-
    command -v zopfli >/dev/null && z=$(zopfli -c --gzip "$2" | wc -c)
    printf '%-44s %9d  gzip-9 %8d  zopfli %8s\n' "$1" "$(stat -c %s "$2")" "$(gzip -9nc "$2" | wc -c)" "$z"
}
build() { # name dir [env...] -- [cargo args...]
    local name=$1 dir=target/size-$2; shift 2
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    env "${envs[@]}" CARGO_TARGET_DIR="$dir" cargo build -q --release --locked --target "$T" --bin logoff-users "$@"
    row "$name" "$dir/$T/release/logoff-users.exe"
}
build "release profile (opt-level z, LTO, 1 CGU, strip)" z-unwind CARGO_PROFILE_RELEASE_OPT_LEVEL=z --
build "  with opt-level s" s-unwind CARGO_PROFILE_RELEASE_OPT_LEVEL=s --
build "  with panic = abort (what release/build.sh ships)" z-abort CARGO_PROFILE_RELEASE_PANIC=abort --
if [ "${NIGHTLY_FLAGS:-0}" = 1 ]; then
    build "  panic = abort, -Zbuild-std" bstd RUSTC_BOOTSTRAP=1 CARGO_PROFILE_RELEASE_PANIC=abort -- \
        -Z build-std=std,panic_abort
    build "  -Zbuild-std, panic = immediate-abort" bstd-ia RUSTC_BOOTSTRAP=1 \
        "RUSTFLAGS=-Zunstable-options -Cpanic=immediate-abort" -- -Z build-std=std,panic_abort
fi

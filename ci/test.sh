#!/usr/bin/env bash
# The project's test command (README): installs what the tests need, then runs them all.
#
#   bash ci/test.sh          # as root (or: sudo bash ci/test.sh)
#
# As root it also runs the real-system tests (test users, processes, utmp sessions, a
# logind container) and requires them to run (LOGOFF_REQUIRE_REAL_TESTS=1), and the
# Windows build, lint and Wine smoke run. Not as root, only what needs no root runs.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
if [ "$(id -u)" -eq 0 ]; then
  have x86_64-w64-mingw32-gcc || need_pkgs+=(gcc-mingw-w64-x86-64)
  have wine || need_pkgs+=(wine wine64)
  have systemd-nspawn || need_pkgs+=(systemd-container)
  have debootstrap || need_pkgs+=(debootstrap)
  have ssh || need_pkgs+=(openssh-client)
  have killall || need_pkgs+=(psmisc)
  have pkill || need_pkgs+=(procps)
  have setpriv || need_pkgs+=(util-linux)
  have strace || need_pkgs+=(strace)
  have useradd || need_pkgs+=(passwd)
  have python3 || need_pkgs+=(python3)
  if [ "${#need_pkgs[@]}" -gt 0 ]; then
    log "apt-get install ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  fi
  export LOGOFF_REQUIRE_REAL_TESTS=1
fi
rustup component add clippy rustfmt >/dev/null 2>&1 || true

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (linux)"
cargo clippy --all-targets --locked -- -D warnings
# Without --all-targets there are no dev-dependencies, so no test-doors feature: this lints
# what a release build compiles (src/flags/no_doors.rs instead of doors.rs).
log "cargo clippy (linux, the release build's features: no test doors)"
cargo clippy --locked -- -D warnings
# The API documentation: no broken or private links (lib.rs says what is public).
log "cargo doc (linux, no warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked -q

# A platform without a backend (src/platform/unknown) must build, so that a later macOS
# backend starts from a green build. Checking needs no linker, only the target's std.
log "cargo check (x86_64-unknown-freebsd: the unknown platform)"
rustup target list --installed | grep -qx x86_64-unknown-freebsd || rustup target add x86_64-unknown-freebsd
cargo check --all-targets --locked --target x86_64-unknown-freebsd

if [ -x ci/container.sh ] && [ "$(id -u)" -eq 0 ]; then
  log "logind container rootfs"
  bash ci/container.sh build
fi

log "cargo test"
cargo test --locked -- --test-threads=2

version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)"
if [ -f ci/release.sh ] && [ "$(id -u)" -eq 0 ]; then
  log "release: build (signed .exe, .deb, RMM scripts), lintian, signature, RMM checks, .deb in a container"
  bash ci/release.sh
  # The shipped binaries must have no test doors (issue 17): the musl binary is run and
  # searched, the .exe searched (it cannot run here without Wine; ci/windows.sh runs it).
  log "release binaries: no test doors (ci/check-release-doors.sh)"
  bash ci/check-release-doors.sh "dist/logoff-users-$version-linux-x86_64"
  for text in fake-state audit-socket job-dir detach-via 'fake state' FakeState; do
    if grep -aqF -- "$text" "dist/logoff-users-$version-windows-x86_64.exe"; then
      echo "DOOR: the release .exe holds the text '$text'" >&2
      exit 1
    fi
  done
else
  log "release binary: no test doors (ci/check-release-doors.sh)"
  cargo build --release --locked --bin logoff-users
  bash ci/check-release-doors.sh "${CARGO_TARGET_DIR:-target}/release/logoff-users"
fi

if [ -f ci/ansible.sh ] && [ "$(id -u)" -eq 0 ]; then
  log "ansible: the role against two logind containers, with the release binary"
  bash ci/ansible.sh
fi

if [ -f ci/windows.sh ] && [ "$(id -u)" -eq 0 ]; then
  log "windows: cross-build, clippy, the .exe end to end under Wine with the wtsapi32 stand-in"
  release_exe="dist/logoff-users-$version-windows-x86_64.exe"
  [ -f "$release_exe" ] || release_exe=""
  LOGOFF_RELEASE_EXE="$release_exe" bash ci/windows.sh
fi

log "all tests passed"

#!/usr/bin/env bash
# Builds the release artifacts of logoff-users into dist/:
#
#   dist/logoff-users-VERSION-linux-x86_64          static Linux binary (musl)
#   dist/logoff-users-VERSION-windows-x86_64.exe    Windows binary (mingw-w64)
#   dist/logoff-users_VERSION_amd64.deb             Debian package of the static binary
#   dist/SHA256SUMS                                 sha256sum format, for `sha256sum -c`
#   dist/rmm/*/LogOff-Users.ps1                     the RMM scripts with the .exe's SHA-256 pinned
#
#   bash release/build.sh            (as root it installs what is missing: apt + rustup targets)
#
# Environment:
#   JOBS=N        cargo build jobs (default 2; use 1 on a machine shared with other builds)
#   DIST=DIR      output directory (default dist/)
#   MAX_BYTES=N   size target per artifact (default 3 MB); over it prints a warning
#   STRICT=1      make an artifact over MAX_BYTES, or a musl binary that is not static, fatal
#                 (the static check is always fatal)
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS="${JOBS:-2}"
DIST="${DIST:-dist}"
MAX_BYTES="${MAX_BYTES:-3000000}"
STRICT="${STRICT:-0}"
LINUX_TARGET=x86_64-unknown-linux-musl
WINDOWS_TARGET=x86_64-pc-windows-gnu

log() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }
die() { printf 'release/build.sh: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# --- what the build needs -------------------------------------------------------------
need_pkgs=()
have musl-gcc || need_pkgs+=(musl-tools)
have x86_64-w64-mingw32-gcc || need_pkgs+=(gcc-mingw-w64-x86-64)
have dpkg-deb || need_pkgs+=(dpkg)
have file || need_pkgs+=(file)
have sha256sum || need_pkgs+=(coreutils)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing ${need_pkgs[*]}: run as root, or apt-get install them"
  log "apt-get install ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
installed_targets="$(rustup target list --installed)"
for t in "$LINUX_TARGET" "$WINDOWS_TARGET"; do
  grep -qx "$t" <<<"$installed_targets" || { log "rustup target add $t"; rustup target add "$t"; }
done

VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)"
[ -n "$VERSION" ] || die "could not read the version from Cargo.toml"
# Reproducible timestamps in the .deb: the last commit's time.
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH

LINUX_BIN="logoff-users-$VERSION-linux-x86_64"
WINDOWS_EXE="logoff-users-$VERSION-windows-x86_64.exe"
DEB="logoff-users_${VERSION}_amd64.deb"

# --- build ----------------------------------------------------------------------------
# The musl target links with Rust's self-contained musl CRT; musl-gcc is there for any
# build script that compiles C.
export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER="${CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER:-x86_64-w64-mingw32-gcc}"

declare -A build_secs
for t in "$LINUX_TARGET" "$WINDOWS_TARGET"; do
  log "cargo build --release --target $t"
  start=$SECONDS
  cargo build --release --locked --jobs "$JOBS" --target "$t"
  build_secs[$t]=$((SECONDS - start))
done

rm -rf "$DIST"
mkdir -p "$DIST"
# dist/ ignores itself, so a build never ends up in a commit.
printf '*\n' >"$DIST/.gitignore"
install -m 0755 "target/$LINUX_TARGET/release/logoff-users" "$DIST/$LINUX_BIN"
install -m 0755 "target/$WINDOWS_TARGET/release/logoff-users.exe" "$DIST/$WINDOWS_EXE"

# --- the Linux binary must be static --------------------------------------------------
log "static check"
file_out="$(file -b "$DIST/$LINUX_BIN")"
ldd_out="$(ldd "$DIST/$LINUX_BIN" 2>&1 || true)"
printf 'file: %s\nldd:  %s\n' "$file_out" "$ldd_out"
case "$file_out" in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) die "$LINUX_BIN is not statically linked" ;;
esac
case "$ldd_out" in
  *"not a dynamic executable"* | *"statically linked"*) ;;
  *) die "ldd lists shared libraries for $LINUX_BIN" ;;
esac
"$DIST/$LINUX_BIN" --version
file -b "$DIST/$WINDOWS_EXE"

# --- the .deb, from a staging tree ----------------------------------------------------
log "dpkg-deb --build $DEB"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/logoff-users"
install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/usr/share/doc/logoff-users"
install -m 0755 "$DIST/$LINUX_BIN" "$pkg/usr/bin/logoff-users"
cat >"$pkg/usr/share/doc/logoff-users/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: logoff-users

Files: *
License: MIT or Apache-2.0
EOF
chmod 0644 "$pkg/usr/share/doc/logoff-users/copyright"
installed_kb="$(du -k -s --exclude=DEBIAN "$pkg" | cut -f1)"
cat >"$pkg/DEBIAN/control" <<EOF
Package: logoff-users
Version: $VERSION
Architecture: amd64
Maintainer: logoff-users maintainers <root@localhost>
Section: admin
Priority: optional
Installed-Size: $installed_kb
Description: log users off this machine and verify they are gone
 logoff-users logs named users, or ALL users, off a Linux machine (systemd-logind
 sessions, or utmp plus /proc), sweeps their remaining processes, and verifies
 that their sessions and processes are gone. Plain text or JSON output, and a
 documented exit code, for RMM tools and Ansible. The binary is static (musl).
EOF
chmod 0644 "$pkg/DEBIAN/control"
find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$DIST/$DEB" >/dev/null
dpkg-deb --info "$DIST/$DEB" | sed -n '1,12p'
dpkg-deb --contents "$DIST/$DEB"

# --- checksums and sizes --------------------------------------------------------------
(cd "$DIST" && sha256sum "$LINUX_BIN" "$WINDOWS_EXE" "$DEB" >SHA256SUMS && sha256sum -c --quiet SHA256SUMS)

# --- the RMM scripts, with this build's .exe hash pinned -------------------------------
# BinarySource is still to be filled in by whoever uploads the .exe.
exe_sha="$(cd "$DIST" && sha256sum "$WINDOWS_EXE" | cut -d' ' -f1)"
for script in rmm/*/LogOff-Users.ps1; do
  out="$DIST/rmm/$(basename "$(dirname "$script")")"
  mkdir -p "$out"
  sed "s/^[\$]ExpectedSha256 = ''\$/\$ExpectedSha256 = '$exe_sha'/" "$script" >"$out/LogOff-Users.ps1"
  grep -q "^[\$]ExpectedSha256 = '$exe_sha'\$" "$out/LogOff-Users.ps1" || die "could not pin the hash in $script"
done
echo "RMM scripts with ExpectedSha256 = $exe_sha in $DIST/rmm/"

log "artifacts in $DIST/"
over=0
for f in "$LINUX_BIN" "$WINDOWS_EXE" "$DEB"; do
  bytes="$(stat -c %s "$DIST/$f")"
  note=""
  if [ "$bytes" -gt "$MAX_BYTES" ]; then note="  OVER the $MAX_BYTES-byte target"; over=1; fi
  printf '%10d bytes  %s MiB  %s%s\n' "$bytes" "$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')" "$f" "$note"
done
printf 'build time: %s %ss, %s %ss; total %ss\n' \
  "$LINUX_TARGET" "${build_secs[$LINUX_TARGET]}" "$WINDOWS_TARGET" "${build_secs[$WINDOWS_TARGET]}" "$SECONDS"
printf '\nSHA256SUMS:\n'
cat "$DIST/SHA256SUMS"
if [ "$over" -eq 1 ] && [ "$STRICT" = 1 ]; then die "an artifact is over the size target"; fi

#!/usr/bin/env bash
# Builds the release artifacts of logoff-users into dist/:
#
#   logoff-users-VERSION-linux-x86_64            static Linux binary (musl)
#   logoff-users-VERSION-windows-x86_64.exe      Windows binary (mingw-w64), Authenticode-
#                                                signed when SIGN_CERT and SIGN_KEY are given
#   logoff-users_VERSION_amd64.deb               Debian package of the static binary
#   rmm/PLATFORM/LogOff-Users-SelfContained.ps1  per RMM: the .exe inside (gzip + base64),
#                                                its SHA-256 checked before it is written
#   rmm/PLATFORM/LogOff-Users.ps1                per RMM, with RELEASE_URL: fetches the .exe
#   THIRD-PARTY-NOTICES.md, LICENSE, CHANGELOG.md
#   SHA256SUMS                                   of all the above, signed files included
#
#   bash release/build.sh            (as root it installs what is missing: apt, rustup targets,
#                                     cargo-about)
#
# Environment:
#   RELEASE_URL=PATTERN  where the .exe will be downloaded from, e.g.
#                 https://files.example.com/logoff-users/{version}/{file} or
#                 \\fs01\software\logoff-users\{file}; {version} and {file} are filled in.
#                 Without it, only the self-contained RMM scripts are written.
#   SIGN_CERT=FILE SIGN_KEY=FILE  PEM certificate (chain) and private key: the .exe is
#                 signed with osslsigncode (SHA-256), before anything hashes it.
#   SIGN_PASS=FILE     the key's passphrase, in a file (optional)
#   SIGN_TIMESTAMP_URL=URL  an RFC 3161 timestamp server (optional; needs network)
#   DEB_MAINTAINER="Name <address>"  the .deb's Maintainer (default below)
#   JOBS=N        cargo build jobs (default 2; use 1 on a machine shared with other builds)
#   DIST=DIR      output directory (default dist/)
#   MAX_BYTES=N   size target per artifact (default 3 MB); over it prints a warning
#   STRICT=1      make an artifact over MAX_BYTES fatal (the static check is always fatal)
#   SKIP_NOTICES=1  do not (re)generate THIRD-PARTY-NOTICES.md with cargo-about: ship the
#                 committed one
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS="${JOBS:-2}"
DIST="${DIST:-dist}"
MAX_BYTES="${MAX_BYTES:-3000000}"
STRICT="${STRICT:-0}"
RELEASE_URL="${RELEASE_URL:-}"
DEB_MAINTAINER="${DEB_MAINTAINER:-logoff-users maintainers <logoff-users@users.noreply.github.com>}"
LINUX_TARGET=x86_64-unknown-linux-musl
WINDOWS_TARGET=x86_64-pc-windows-gnu
CARGO_ABOUT_VERSION=0.8.4

log() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }
die() { printf 'release/build.sh: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

if [ -n "${SIGN_CERT:-}${SIGN_KEY:-}" ]; then
  [ -f "${SIGN_CERT:-}" ] && [ -f "${SIGN_KEY:-}" ] || die "SIGN_CERT and SIGN_KEY must both name files"
fi

# --- what the build needs -------------------------------------------------------------
need_pkgs=()
have musl-gcc || need_pkgs+=(musl-tools)
have x86_64-w64-mingw32-gcc || need_pkgs+=(gcc-mingw-w64-x86-64)
have dpkg-deb || need_pkgs+=(dpkg)
have file || need_pkgs+=(file)
have sha256sum || need_pkgs+=(coreutils)
have zopfli || need_pkgs+=(zopfli)
have help2man || need_pkgs+=(help2man)
have python3 || need_pkgs+=(python3)
[ -z "${SIGN_CERT:-}" ] || have osslsigncode || need_pkgs+=(osslsigncode)
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
if [ "${SKIP_NOTICES:-0}" != 1 ] && ! cargo about --version 2>/dev/null | grep -q "$CARGO_ABOUT_VERSION"; then
  log "cargo install cargo-about $CARGO_ABOUT_VERSION"
  cargo install --locked --quiet cargo-about --version "$CARGO_ABOUT_VERSION" --jobs "$JOBS"
fi

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
log "cargo build --release --target $LINUX_TARGET"
start=$SECONDS
cargo build --release --locked --jobs "$JOBS" --target "$LINUX_TARGET" --bin logoff-users
build_secs[$LINUX_TARGET]=$((SECONDS - start))
# The Windows binary aborts on a panic instead of unwinding: 12% smaller (bench/RESULTS.md),
# and nothing there needs unwinding to leave the machine as it was (its guards only free
# memory and handles, which process exit frees). The Linux binary keeps unwinding, which
# nothing needs any more either (the sweep no longer freezes cgroups, so there is nothing to
# thaw on the way out); aborting there too is left for a measured size step.
log "cargo build --release --target $WINDOWS_TARGET (panic = abort)"
start=$SECONDS
CARGO_PROFILE_RELEASE_PANIC=abort cargo build --release --locked --jobs "$JOBS" --target "$WINDOWS_TARGET" --bin logoff-users
build_secs[$WINDOWS_TARGET]=$((SECONDS - start))

rm -rf "$DIST"
mkdir -p "$DIST"
# dist/ ignores itself, so a build never ends up in a commit.
printf '*\n' >"$DIST/.gitignore"
install -m 0755 "target/$LINUX_TARGET/release/logoff-users" "$DIST/$LINUX_BIN"

# --- Authenticode ---------------------------------------------------------------------
if [ -n "${SIGN_CERT:-}" ]; then
  log "osslsigncode sign $WINDOWS_EXE"
  sign_args=(sign -certs "$SIGN_CERT" -key "$SIGN_KEY" -h sha256 -n "logoff-users $VERSION")
  [ -z "${SIGN_PASS:-}" ] || sign_args+=(-readpass "$SIGN_PASS")
  [ -z "${SIGN_TIMESTAMP_URL:-}" ] || sign_args+=(-ts "$SIGN_TIMESTAMP_URL")
  osslsigncode "${sign_args[@]}" -in "target/$WINDOWS_TARGET/release/logoff-users.exe" \
    -out "$DIST/$WINDOWS_EXE" >/dev/null
  chmod 0755 "$DIST/$WINDOWS_EXE"
  osslsigncode verify -in "$DIST/$WINDOWS_EXE" -CAfile "$SIGN_CERT" >/dev/null 2>&1 ||
    printf 'note: osslsigncode verify against SIGN_CERT failed (expected when SIGN_CERT is not a self-signed root)\n'
else
  install -m 0755 "target/$WINDOWS_TARGET/release/logoff-users.exe" "$DIST/$WINDOWS_EXE"
  echo "note: $WINDOWS_EXE is not signed (set SIGN_CERT and SIGN_KEY)"
fi

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

# --- licences ---------------------------------------------------------------------------
if [ "${SKIP_NOTICES:-0}" != 1 ]; then
  log "cargo about generate (THIRD-PARTY-NOTICES.md)"
  cargo about generate --locked --config release/about.toml release/about.hbs -o "$DIST/THIRD-PARTY-NOTICES.md"
  if ! cmp -s "$DIST/THIRD-PARTY-NOTICES.md" THIRD-PARTY-NOTICES.md; then
    echo "THIRD-PARTY-NOTICES.md is not what cargo-about writes for this Cargo.lock:"
    diff -u THIRD-PARTY-NOTICES.md "$DIST/THIRD-PARTY-NOTICES.md" | head -n 20 || true
    [ "$STRICT" = 1 ] && die "commit the new THIRD-PARTY-NOTICES.md (cp $DIST/THIRD-PARTY-NOTICES.md .)"
  fi
else
  cp THIRD-PARTY-NOTICES.md "$DIST/"
fi
cp LICENSE CHANGELOG.md "$DIST/"

# --- the .deb, from a staging tree ----------------------------------------------------
log "dpkg-deb --build $DEB"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/logoff-users"
doc="$pkg/usr/share/doc/logoff-users"
install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$doc" "$pkg/usr/share/man/man1"
install -m 0755 "$DIST/$LINUX_BIN" "$pkg/usr/bin/logoff-users"
# Machine-readable copyright: both licences in full (MIT is not in common-licenses), the
# third-party notices beside it.
{
  cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: logoff-users
Comment: The licences of the Rust crates compiled into /usr/bin/logoff-users are in
 /usr/share/doc/logoff-users/THIRD-PARTY-NOTICES.md.gz.

Files: *
Copyright: 2026 The logoff-users authors
License: MIT or Apache-2.0

License: MIT
EOF
  sed -n '/^MIT License$/,/^SOFTWARE\.$/p' LICENSE | sed '1,3d; s/^$/./; s/^/ /'
  printf '\nLicense: Apache-2.0\n On Debian systems, the complete text of the Apache License, Version 2.0\n can be found in "/usr/share/common-licenses/Apache-2.0".\n'
} >"$doc/copyright"
gzip -9n -c "$DIST/THIRD-PARTY-NOTICES.md" >"$doc/THIRD-PARTY-NOTICES.md.gz"
# The package's changelog: one entry per upstream version, from CHANGELOG.md.
{
  printf 'logoff-users (%s) unstable; urgency=medium\n\n' "$VERSION"
  printf '  * Upstream release %s; see /usr/share/doc/logoff-users/changelog.gz.\n\n' "$VERSION"
  printf ' -- %s  %s\n' "$DEB_MAINTAINER" "$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%a, %d %b %Y %H:%M:%S +0000')"
} | gzip -9n >"$doc/changelog.Debian.gz"
gzip -9n -c CHANGELOG.md >"$doc/changelog.gz"
# The man page, from --help.
help2man --no-info --version-string="$VERSION" \
  --name="log users off this machine and verify they are gone" \
  "$DIST/$LINUX_BIN" | gzip -9n >"$pkg/usr/share/man/man1/logoff-users.1.gz"
# lintian takes a static-pie executable (ET_DYN without an interpreter) for a shared
# library without libc: it has no dynamic dependencies by design.
install -d -m 0755 "$pkg/usr/share/lintian/overrides"
cat >"$pkg/usr/share/lintian/overrides/logoff-users" <<'EOF'
# A static-pie executable: no dynamic dependencies by design.
logoff-users: shared-library-lacks-prerequisites [usr/bin/logoff-users]
EOF
find "$pkg/usr" -type f -exec chmod 0644 {} + && chmod 0755 "$pkg/usr/bin/logoff-users"
installed_kb="$(du -k -s --exclude=DEBIAN "$pkg" | cut -f1)"
cat >"$pkg/DEBIAN/control" <<EOF
Package: logoff-users
Version: $VERSION
Architecture: amd64
Maintainer: $DEB_MAINTAINER
Section: admin
Priority: optional
Installed-Size: $installed_kb
Description: log users off this machine and verify they are gone
 logoff-users logs named users, or ALL users, off a Linux machine
 (systemd-logind sessions, or utmp plus /proc), sweeps their remaining
 processes, and verifies that their sessions and processes are gone. Plain
 text or JSON output, and a documented exit code, for RMM tools and Ansible.
 The binary is static (musl).
EOF
(cd "$pkg" && find usr -type f -printf '%P\n' | LC_ALL=C sort | sed 's|^|usr/|' | xargs md5sum) >"$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/md5sums"
find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$DIST/$DEB" >/dev/null
dpkg-deb --info "$DIST/$DEB" | sed -n '1,14p'
dpkg-deb --contents "$DIST/$DEB"

# --- the RMM scripts --------------------------------------------------------------------
# From the (signed) .exe that ships: its SHA-256 pinned, and inside the self-contained ones.
log "RMM scripts"
rmm_args=(--release "$DIST/rmm" --exe "$DIST/$WINDOWS_EXE" --version "$VERSION")
[ -z "$RELEASE_URL" ] || rmm_args+=(--source-url "$RELEASE_URL")
python3 rmm/generate.py "${rmm_args[@]}"
[ -n "$RELEASE_URL" ] || echo "note: set RELEASE_URL to also write the RMM scripts that download the .exe"

# --- checksums and sizes --------------------------------------------------------------
(cd "$DIST" && find . -type f ! -name SHA256SUMS ! -name .gitignore -printf '%P\n' | LC_ALL=C sort |
  xargs sha256sum >SHA256SUMS && sha256sum -c --quiet SHA256SUMS)

log "artifacts in $DIST/"
over=0
while read -r f; do
  bytes="$(stat -c %s "$DIST/$f")"
  note=""
  case "$f" in rmm/*) ;; *) if [ "$bytes" -gt "$MAX_BYTES" ]; then note="  OVER the $MAX_BYTES-byte target"; over=1; fi ;; esac
  printf '%10d bytes  %7s MiB  %s%s\n' "$bytes" "$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')" "$f" "$note"
done < <(cd "$DIST" && find . -type f ! -name .gitignore -printf '%P\n' | LC_ALL=C sort)
printf 'build time: %s %ss, %s %ss; total %ss\n' \
  "$LINUX_TARGET" "${build_secs[$LINUX_TARGET]}" "$WINDOWS_TARGET" "${build_secs[$WINDOWS_TARGET]}" "$SECONDS"
printf '\nSHA256SUMS:\n'
cat "$DIST/SHA256SUMS"
if [ "$over" -eq 1 ] && [ "$STRICT" = 1 ]; then die "an artifact is over the size target"; fi

#!/usr/bin/env bash
# Checks that a release binary of logoff-users has no test doors (issue 17): it must refuse
# the test build's hidden flags --fake-state, --audit-socket, --job-dir and --detach-via as
# unknown arguments, and
# hold none of their names nor the fake backend's texts. Exits non-zero, naming each door
# it found, when it has one.
#
#   bash ci/check-release-doors.sh BINARY
#
# A binary built with the `test-doors` feature (what `cargo test` builds) fails this check:
# tests/release_doors.rs runs it on that binary, so that the check is known to be able to
# fail. Runs the binary with --version after the flag under test, so that a binary that
# does accept the flag only prints its version; it never lists or touches the machine.
set -uo pipefail

bin=${1:?usage: ci/check-release-doors.sh BINARY}
[ -x "$bin" ] || { echo "check-release-doors: no executable at $bin" >&2; exit 2; }

found=0
for flag in --fake-state --audit-socket --job-dir --detach-via; do
  out=$("$bin" "$flag" /nonexistent/logoff-users-door-check --version 2>&1)
  rc=$?
  if [ "$rc" -ne 2 ] || ! grep -qF "unexpected argument '$flag'" <<<"$out"; then
    echo "DOOR: $bin accepts $flag (exit $rc): $(head -n 3 <<<"$out")"
    found=1
  fi
done
for text in fake-state audit-socket job-dir detach-via 'fake state' 'FakeState'; do
  if grep -aqF -- "$text" "$bin"; then
    echo "DOOR: $bin holds the text '$text' (the test build's flags or fake backend)"
    found=1
  fi
done
if [ "$found" -ne 0 ]; then
  echo "check-release-doors: $bin has test doors: build it without the test-doors feature (cargo build --release --bin logoff-users)" >&2
  exit 1
fi
echo "check-release-doors: $bin has no test doors"

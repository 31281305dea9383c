//! The test doors (issue 17): the binary `cargo test` builds has them (the `test-doors`
//! feature, turned on by the package's dev-dependency on itself), so the CLI tests always
//! run against the fake backend and can never be skipped by a build without it; and
//! `ci/check-release-doors.sh`, which CI runs on the release binary, finds them in this
//! one, so that check is known to be able to fail.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_logoff-users");

#[test]
fn the_test_build_has_its_doors() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, r#"{ "host": "door-check" }"#).unwrap();
    let o = Command::new(BIN).arg("--fake-state").arg(&state).args(["--list", "--format", "json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "the test build lacks --fake-state: {stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["hosts"][0]["host"], "door-check");
    assert_eq!(doc["hosts"][0]["backend"], "fake");
}

#[cfg(unix)]
#[test]
fn the_release_check_finds_the_doors_of_the_test_build() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/ci/check-release-doors.sh");
    let o = Command::new("bash").arg(script).arg(BIN).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("accepts --fake-state"), "{out}");
    assert!(out.contains("accepts --audit-socket"), "{out}");
    assert!(out.contains("accepts --job-dir"), "{out}");
    assert!(out.contains("accepts --detach-via"), "{out}");
    assert!(out.contains("holds the text 'FakeState'"), "{out}");
}

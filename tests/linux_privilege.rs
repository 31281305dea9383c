//! Without privilege, the Linux backend refuses to act. As root, this test runs itself
//! again as `nobody` (uid 65534) through `setpriv` and checks the refusal there.

#![cfg(target_os = "linux")]

mod common;

use logoff_users::error::ErrorKind;

const CHILD_ENV: &str = "LOGOFF_TEST_UNPRIVILEGED_CHILD";

fn assert_refused() {
    let utmp = tempfile::NamedTempFile::new().unwrap();
    let mut linux = common::backend(utmp.path());
    let err = linux.check_privilege().unwrap_err();
    assert_eq!(err.kind, ErrorKind::PermissionDenied);
    assert!(err.to_string().contains("root"), "{err}");
}

#[test]
fn check_privilege_fails_without_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if std::env::var_os(CHILD_ENV).is_some() || euid != 0 {
        assert_ne!(euid, 0, "the unprivileged child runs as root");
        assert_refused();
        return;
    }
    if !common::real_tests("check_privilege_fails_without_root") {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args(["--exact", "check_privilege_fails_without_root", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("TMPDIR", "/tmp")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the unprivileged run failed:\n{text}");
    assert!(text.contains("1 passed"), "the unprivileged run did not run the check:\n{text}");
}

//! Real-system test (root only) of utmp sessions: a utmp file the test writes, whose
//! USER_PROCESS records name processes the test started as test users.

#![cfg(target_os = "linux")]

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{TestUser, backend, real_tests, utmp_now, utmp_record};
use logoff_users::backend::Done;
use logoff_users::model::SessionState;
use logoff_users::testing::linux::utmp::{self, DEAD_PROCESS, USER_PROCESS};

#[test]
fn utmp_sessions_are_listed_and_logged_off() {
    if !real_tests("utmp_sessions_are_listed_and_logged_off") {
        return;
    }
    let (a, b) = (TestUser::create(), TestUser::create());
    let mut leader_a = a.spawn("sleep", &["600"]);
    let mut leader_b = b.spawn("sleep", &["600"]);
    let mut gone = a.spawn("true", &[]);
    let gone_pid = gone.id();
    gone.wait().unwrap();
    // Make sure the leaders exist before the records claim a logon time.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let t = utmp_now();

    let file = tempfile::NamedTempFile::new().unwrap();
    utmp::write_file(
        file.path(),
        &[
            utmp_record(2, 0, "reboot", "~", "", t - 1000),
            utmp_record(USER_PROCESS, leader_a.id(), &a.name, "pts/901", "192.0.2.7", t),
            utmp_record(USER_PROCESS, leader_b.id(), &b.name, "tty63", "", t),
            // A dead leader (its pid may be reused already: the logon time predates it).
            utmp_record(USER_PROCESS, gone_pid, &a.name, "pts/902", "", t - 3600),
            // A logout record with a live pid: not a session.
            utmp_record(DEAD_PROCESS, leader_b.id(), "", "pts/903", "", t),
            // The test process itself leads a session, so it is the current session.
            utmp_record(USER_PROCESS, std::process::id(), &b.name, "pts/904", "", t),
        ],
    )
    .unwrap();

    let mut linux = backend(file.path());
    assert_eq!(linux.name(), "utmp");
    let sessions = linux.list_sessions().unwrap();
    let ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
    let id_a = format!("utmp:{}", leader_a.id());
    let id_b = format!("utmp:{}", leader_b.id());
    let id_self = format!("utmp:{}", std::process::id());
    assert_eq!(ids, [id_a.as_str(), id_b.as_str(), id_self.as_str()]);
    let sa = &sessions[0];
    assert_eq!(sa.user, a.name);
    assert_eq!(sa.uid, Some(a.uid));
    assert_eq!(sa.station.as_deref(), Some("pts/901"));
    assert_eq!(sa.remote_host.as_deref(), Some("192.0.2.7"));
    assert_eq!(sa.logon_time, Some(i64::from(t)));
    assert_eq!(sa.state, SessionState::LoggedIn);
    assert_eq!(sa.leader, Some(leader_a.id()));
    assert_eq!(sessions[1].remote_host, None);

    assert_eq!(linux.current_session().unwrap(), Some(id_self));

    assert_eq!(linux.logoff_session(sa).unwrap(), Done::Requested);
    let status = leader_a.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGHUP), "{status:?}");
    assert_eq!(linux.logoff_session(sa).unwrap(), Done::AlreadyGone);

    let after = linux.list_sessions().unwrap();
    assert!(after.iter().all(|s| s.id != id_a), "{after:?}");
    assert!(after.iter().any(|s| s.id == id_b), "the other session must stay");
    assert!(leader_b.try_wait().unwrap().is_none(), "B's leader must be untouched");

    // No terminal: a message cannot be shown.
    let mut no_tty = sessions[1].clone();
    no_tty.station = None;
    let err = linux.send_message(&no_tty, "t", "x").unwrap_err();
    assert_eq!(err.kind, logoff_users::error::ErrorKind::Unsupported);

    assert_eq!(linux.logoff_session(&sessions[1]).unwrap(), Done::Requested);
    assert!(leader_b.wait().unwrap().signal().is_some());
}

#[test]
fn missing_explicit_utmp_file_is_an_error() {
    if !real_tests("missing_explicit_utmp_file_is_an_error") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut linux = backend(&dir.path().join("absent"));
    assert!(linux.list_sessions().is_err());
}

/// `--utmp` reads only a regular file that root alone can write (issue 17): anything else
/// is refused with exit 2 and says why, through the real binary; a FIFO does not hang it.
#[test]
fn an_untrusted_utmp_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    if !real_tests("an_untrusted_utmp_file_is_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let write = |name: &str, mode: u32, uid: u32| {
        let p = path(name);
        utmp::write_file(&p, &[]).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&p, Some(uid), None).unwrap();
        p
    };
    let trusted = write("root-0644", 0o644, 0);
    let cases = [
        (write("nobody-0644", 0o644, 65534), "it is owned by uid 65534, not root"),
        (write("root-0664", 0o664, 0), "it is writable by its group or others (mode 0664)"),
        (write("root-0606", 0o606, 0), "it is writable by its group or others (mode 0606)"),
        (dir.path().to_path_buf(), "it is a directory, not a regular file"),
        (std::path::PathBuf::from("/dev/null"), "it is a device, not a regular file"),
        (
            {
                let fifo = path("fifo");
                assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
                fifo
            },
            "it is a FIFO, not a regular file",
        ),
        // A link to an untrusted file is the file it opens.
        (
            {
                let link = path("link-to-nobody");
                std::os::unix::fs::symlink(path("nobody-0644"), &link).unwrap();
                link
            },
            "it is owned by uid 65534",
        ),
    ];
    for (file, why) in &cases {
        for args in [&["--list"][..], &["--dry-run", "ALL"][..], &["--dry-run", "ALL", "--format", "json"][..]] {
            // Under `timeout`, so that a tool hung on the FIFO fails the test (exit 124).
            let o = std::process::Command::new("timeout")
                .args(["10", env!("CARGO_BIN_EXE_logoff-users"), "--source", "utmp", "--utmp"])
                .arg(file)
                .args(args)
                .env_remove("LOGOFF_USERS")
                .output()
                .unwrap();
            let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            assert_eq!(o.status.code(), Some(2), "{file:?} {args:?}: {out}");
            assert!(out.contains(&format!("could not read --utmp {}: {why}", file.display())), "{args:?}: {out}");
        }
    }
    // Root's own file, and a link to it, are read.
    let link = path("link-to-root");
    std::os::unix::fs::symlink(&trusted, &link).unwrap();
    for file in [&trusted, &link] {
        let o = common::run_tool(&["--source", "utmp", "--utmp", file.to_str().unwrap(), "--list"]);
        assert_eq!(o.status.code(), Some(0), "{file:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

//! Clearing a host for maintenance (issue 18) against a real systemd-logind, sshd and
//! pam_nologin: a Debian 12 container booted with systemd-nspawn (`ci/container.sh`), real
//! ssh logins on 127.0.0.1, the tool run inside the container.
//!
//! - `--drain` with a grace period: a normal user's new ssh login is refused while the
//!   tool waits (and shown the warning), root's is not, the user already logged on keeps
//!   the session until the logoff; the drain stays after the run; `--undrain` lets users in
//!   again; a `/run/nologin` the tool did not write is neither replaced nor removed.
//! - `--drain --detach`: logins are refused from the moment the job is scheduled (its
//!   runner a transient systemd unit), and `--cancel` lets users in again.
//! - `--orphans`: a user who logged out leaving a `setsid nohup` job (a "closing" session)
//!   and a user whose process has no session at all are found and ended; a lingering user
//!   with a user service, a user with a live session, root and the system accounts are not.
//! - a session without a terminal has an unknown idle time, not 0.
//!
//! Needs root and the rootfs of `ci/container.sh build`; without them it prints why and
//! passes, unless `LOGOFF_REQUIRE_REAL_TESTS=1`. Everything it signals or stops it created:
//! the container (`tests/common/container.rs`: its own state directory, port and machine
//! name), its users, and its own ssh clients on the host. The container's overlay is volatile.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Instant;

use common::container::{Container, printed, should_run, spare_uid_base};

const TOOL: &str = "/opt/logoff/logoff-users";

/// The test's users: one logged on, one who logs in during the drain, one who leaves a job
/// behind, one whose process has no session, one who lingers.
const ON: &str = "lm_on";
const NEW: &str = "lm_new";
const LEFT: &str = "lm_left";
const BARE: &str = "lm_bare";
const LINGER: &str = "lm_linger";
const USERS: [&str; 5] = [ON, NEW, LEFT, BARE, LINGER];

impl Container {
    /// The tool inside the container: its exit code and its output (stdout, then stderr).
    fn tool(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = self.exec(&[&[TOOL], args].concat());
        (out.status.code(), printed(&out))
    }
}

/// The users get five consecutive uids between UID_MIN and the container's UID_MAX (60000):
/// `--orphans` only looks at regular accounts.
fn setup_users(ct: &Container) -> u32 {
    let base = spare_uid_base(52_000..59_900, 10, 5);
    for (i, user) in USERS.into_iter().enumerate() {
        ct.add_user(user, base + i as u32);
    }
    base
}

#[test]
fn clears_a_host_for_maintenance() {
    if !should_run("linux_maint", &[]) {
        return;
    }
    let t0 = Instant::now();
    let mut ct = Container::start("logoff-maint");
    let base = setup_users(&ct);
    assert!(ct.login(NEW).0, "{NEW} cannot log in before any drain");

    // --- drain: new logins refused during the grace period, root's not -------------------
    let on_session = ct.open_session(ON, 2001);
    let run = ct
        .script_cmd()
        .arg("exec")
        .args([TOOL, ON, "--drain", "--message", "Maintenance test: patching now", "--grace", "8s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ct.wait_for("/run/nologin", 30, || ct.exists("/run/nologin"));
    let (got_in, said) = ct.login(NEW);
    assert!(!got_in, "{NEW} logged in while the host was draining");
    assert!(said.contains("Maintenance test: patching now"), "the refused user is not told why: {said:?}");
    let (root_in, said) = ct.login("root");
    assert!(root_in, "root was refused during the drain: {said}");
    assert_eq!(ct.sessions_of(ON), BTreeSet::from([on_session.clone()]), "logged off before the grace ended");
    let out = run.wait_with_output().unwrap();
    let log = printed(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.starts_with("drain: new logons refused (by root"), "{log}");
    assert!(log.contains(&format!("verified: {ON} is logged off")), "{log}");
    let summary = log.lines().last().unwrap();
    assert!(summary.contains(", drain: new logons refused,") && summary.ends_with("(exit 0)"), "{log}");
    assert!(ct.sessions_of(ON).is_empty(), "{ON} still has a session");
    // The drain outlives the run, as it must for the reboot that follows.
    assert!(!ct.login(NEW).0, "the drain ended with the run");
    let list: serde_json::Value = serde_json::from_str(&ct.run(&[TOOL, "--list", "--format", "json"])).unwrap();
    let drain = &list["hosts"][0]["drain"];
    assert_eq!(
        (drain["draining"].as_bool(), drain["mechanism"].as_str()),
        (Some(true), Some("/run/nologin")),
        "{list}"
    );
    assert_eq!(drain["ours"]["by"], "root", "{list}");
    let record = ct.run(&["stat", "-c", "%a %U", "/run/logoff-users", "/run/logoff-users/drain.json"]);
    assert_eq!(record, "700 root\n600 root\n");

    // --- undrain: users get in again -----------------------------------------------------
    let (code, log) = ct.tool(&["--undrain"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("undrain: new logons allowed again: removed /run/nologin"), "{log}");
    assert!(!ct.exists("/run/nologin") && !ct.exists("/run/logoff-users/drain.json"));
    assert!(ct.login(NEW).0, "{NEW} still refused after --undrain");

    // --- someone else's /run/nologin: never replaced, never removed ----------------------
    ct.run(&["sh", "-c", "echo 'closed by the admin' > /run/nologin"]);
    let (code, log) = ct.tool(&["--drain"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("drain: new logons are refused already (/run/nologin); nothing changed"), "{log}");
    let (code, log) = ct.tool(&["--undrain"]);
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("undrain: new logons are still refused: /run/nologin was not written by this tool"), "{log}");
    assert_eq!(ct.run(&["cat", "/run/nologin"]), "closed by the admin\n");
    ct.run(&["rm", "/run/nologin"]);

    // --- a scheduled logoff drains when it is scheduled; cancelling it reopens -------------
    let (code, log) = ct.tool(&[ON, "--drain", "--detach", "--message", "Patching later", "--grace", "5m"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.starts_with("drain: new logons refused (by root"), "{log}");
    assert!(log.contains("run by systemd unit logoff-users-job-"), "{log}");
    assert!(!ct.login(NEW).0, "{NEW} logged in after a drained job was scheduled");
    let id = log
        .lines()
        .find_map(|l| l.strip_prefix("scheduled: job "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no job id in: {log}"))
        .to_string();
    let (code, log) = ct.tool(&["--cancel", &id]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("undrain: new logons allowed again"), "{log}");
    assert!(!ct.exists("/run/nologin") && !ct.exists("/run/logoff-users/drain.json"));
    assert!(ct.login(NEW).0, "{NEW} still refused after the drained job was cancelled");

    // --- orphans ---------------------------------------------------------------------------
    // LEFT logs out leaving a setsid nohup job: the session stays "closing".
    let closing = ct.leave_closing_session(LEFT, 2003);
    // BARE's process never had a session (started from outside any).
    let bare_uid = base + 3;
    ct.run(&[
        "sh",
        "-c",
        &format!(
            "setpriv --reuid={bare_uid} --regid={bare_uid} --clear-groups sleep 2004 >/dev/null 2>&1 </dev/null &"
        ),
    ]);
    // LINGER lingers, with a user service that its service manager starts at once.
    let unit_dir = format!("/home/{LINGER}/.config/systemd/user");
    ct.run(&[
        "sh",
        "-c",
        &format!(
            "mkdir -p {unit_dir}/default.target.wants && printf '[Service]\\nExecStart=/bin/sleep 2005\\n' > \
             {unit_dir}/lm-svc.service && ln -s ../lm-svc.service {unit_dir}/default.target.wants/ && \
             chown -R {LINGER}:{LINGER} /home/{LINGER}/.config && loginctl enable-linger {LINGER}"
        ),
    ]);
    ct.wait_for("the lingering user's service", 30, || {
        ct.exec(&["pgrep", "-u", LINGER, "-f", "sleep 2005"]).status.success()
    });
    ct.wait_for("BARE's process", 30, || !ct.pids_of(BARE).is_empty());
    // NEW is logged on (a live session, without a terminal: its idle time is unknown).
    let live = ct.open_session_with(NEW, 2006, false, Stdio::null());
    let linger_pids = ct.pids_of(LINGER);
    let new_pids = ct.pids_of(NEW);
    assert!(!linger_pids.is_empty() && !new_pids.is_empty());

    let list: serde_json::Value = serde_json::from_str(&ct.run(&[TOOL, "--list", "--format", "json"])).unwrap();
    let s = list["hosts"][0]["sessions"].as_array().unwrap().iter().find(|s| s["id"] == live.as_str()).unwrap().clone();
    assert_eq!((s["idle_seconds"].is_null(), s["idle_source"].as_str()), (true, Some("unknown")), "{s}");

    let (code, plan) = ct.tool(&["--orphans", "--dry-run", "--format", "json"]);
    assert_eq!(code, Some(0), "{plan}");
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let planned: Vec<(String, String)> = plan["hosts"][0]["plan"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["account"]["user"].as_str().unwrap().into(), u["terminate"].as_str().unwrap().into()))
        .collect();
    assert_eq!(planned, [(LEFT.into(), "orphan".into()), (BARE.into(), "orphan".into())], "{plan}");
    let spared = &plan["hosts"][0]["plan"]["spared"];
    assert_eq!(spared[0]["user"], LINGER, "{plan}");

    let (code, log) = ct.tool(&["--orphans", "--kill-after", "1s", "--timeout", "30s"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains(&format!("user {LEFT}: no live session (orphan): terminating processes")), "{log}");
    assert!(log.contains(&format!("user {BARE}: no live session (orphan): terminating processes")), "{log}");
    assert!(log.contains(&format!("sparing user {LINGER} (no live session): lingers")), "{log}");
    assert!(ct.pids_of(LEFT).is_empty() && ct.pids_of(BARE).is_empty(), "orphans left:\n{log}");
    assert!(!ct.sessions_of(LEFT).contains(&closing), "the closing session is still there");
    assert!(linger_pids.is_subset(&ct.pids_of(LINGER)), "the lingering user's service was touched:\n{log}");
    assert!(new_pids.is_subset(&ct.pids_of(NEW)), "a user with a live session was touched:\n{log}");
    assert_eq!(ct.sessions_of(NEW), BTreeSet::from([live]));
    eprintln!("linux_maint: {:?}", t0.elapsed());
}

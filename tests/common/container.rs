//! The Debian 12 container of the real-logind tests (linux_logind.rs, linux_maint.rs,
//! linux_schedule.rs): booted with systemd-nspawn by `ci/container.sh` for one test, with
//! a state directory under /run, a machine name (with the test's pid) and an ssh port of
//! its own, a volatile overlay (the cached rootfs is not changed), and the target directory
//! bind-mounted read-only at `/opt/logoff`. Dropping it, also on a panic, kills the test's
//! own ssh clients on the host and stops the container.
//!
//! The container has no user namespace: its uids are the host's. Other tests on the machine
//! create host users and kill every process of their uid, which would reach container
//! processes of the same uid, and the other way round: each test gives its users uids the
//! host does not use ([`spare_uid_base`]), from a range of its own.

use std::collections::BTreeSet;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ci/container.sh")
}

/// `target/debug` (or wherever cargo put the binary under test).
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_logoff-users")).parent().unwrap().to_path_buf()
}

/// Whether `test` can run: it needs root, the rootfs of `ci/container.sh build`, the tool
/// and `examples` (names of examples it runs in the container) built. A skip is a printed
/// note, or a failure when real tests are required (`LOGOFF_REQUIRE_REAL_TESTS=1`).
pub fn should_run(test: &str, examples: &[&str]) -> bool {
    let tool = target_dir().join("logoff-users");
    let missing_example = examples.iter().map(|e| target_dir().join("examples").join(e)).find(|p| !p.is_file());
    let why_not = if !super::is_root() {
        Some("not running as root".to_string())
    } else if !Command::new(script()).arg("valid").status().is_ok_and(|s| s.success()) {
        Some(format!("no container rootfs: run `sudo {} build` first", script().display()))
    } else if !tool.is_file() {
        Some(format!("{} is not built", tool.display()))
    } else {
        missing_example.map(|m| {
            format!("{} is not built (a full `cargo test` or `cargo build --examples` builds it)", m.display())
        })
    };
    match why_not {
        None => true,
        Some(why) => super::skip(test, &why),
    }
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Uids in use on the host: in /etc/passwd, or by a running process.
pub fn host_uids() -> BTreeSet<u32> {
    let mut uids: BTreeSet<u32> = std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').nth(2)?.parse().ok())
        .collect();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(m) = entry.metadata() {
                uids.insert(m.uid());
            }
        }
    }
    uids
}

/// The first of `count` consecutive uids that the host does not use, trying the bases in
/// `bases` `step` apart.
pub fn spare_uid_base(bases: Range<u32>, step: usize, count: u32) -> u32 {
    let used = host_uids();
    bases
        .clone()
        .step_by(step)
        .find(|base| (*base..base + count).all(|u| !used.contains(&u)))
        .unwrap_or_else(|| panic!("no {count} spare uids in {bases:?}"))
}

/// Bytes of a command's output, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a command printed: its stdout, then its stderr.
pub fn printed(out: &Output) -> String {
    text(&out.stdout) + &text(&out.stderr)
}

/// The ids of `user`'s sessions in `all`, a [`Container::loginctl_sessions`].
pub fn sessions_of(all: &BTreeSet<(String, String)>, user: &str) -> BTreeSet<String> {
    all.iter().filter(|(_, u)| u == user).map(|(id, _)| id.clone()).collect()
}

/// The running container; stopped (and its ssh clients killed) on drop, also on panic.
pub struct Container {
    /// The state directory (`LOGOFF_STATE`): the ssh key, and room for the test's files.
    pub state: tempfile::TempDir,
    pub port: u16,
    machine: String,
    /// The test's ssh clients on the host, killed on drop.
    pub clients: Vec<Child>,
}

impl Container {
    /// Boots a container whose machine name is `name` and this process's id, and whose
    /// state directory under /run starts with `name`.
    pub fn start(name: &str) -> Container {
        let state = tempfile::Builder::new().prefix(&format!("{name}-")).tempdir_in("/run").unwrap();
        // A machine (and so cgroup) name of its own: another run on this machine must not
        // meet this container.
        let machine = format!("{name}-{}", std::process::id());
        let ct = Container { state, port: spare_port(), machine, clients: Vec::new() };
        let out = ct.script_cmd().arg("start").output().unwrap();
        assert!(out.status.success(), "container start failed:\n{}", text(&out.stderr));
        eprint!("{}", text(&out.stderr));
        ct
    }

    /// `ci/container.sh`, aimed at this container.
    pub fn script_cmd(&self) -> Command {
        let mut c = Command::new(script());
        c.env("LOGOFF_STATE", self.state.path())
            .env("LOGOFF_MACHINE", &self.machine)
            .env("LOGOFF_SSH_PORT", self.port.to_string())
            .env("LOGOFF_BIND_RO", target_dir())
            .env("LOGOFF_VOLATILE", "1");
        c
    }

    /// Runs a command inside the container as root, outside any session.
    pub fn exec(&self, args: &[&str]) -> Output {
        self.script_cmd().arg("exec").args(args).env("LC_ALL", "C").output().unwrap()
    }

    /// Like [`Container::exec`], but the command must succeed; returns its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(out.status.success(), "{args:?} failed: {}\n{}{}", out.status, text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    /// Whether `path` exists inside the container.
    pub fn exists(&self, path: &str) -> bool {
        self.exec(&["test", "-e", path]).status.success()
    }

    /// An ssh client logging in as `user` (on a pty with `tty`), to which the command is
    /// still to be added.
    pub fn ssh_cmd(&self, user: &str, tty: bool) -> Command {
        self.ssh_cmd_at(user, tty, "ERROR")
    }

    /// ssh with the client's `LogLevel`: `INFO` shows what the server says before it
    /// closes (the text of `/run/nologin`).
    pub fn ssh_cmd_at(&self, user: &str, tty: bool, log_level: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-i")
            .arg(self.state.path().join("id_ed25519"))
            .args(["-p", &self.port.to_string()])
            .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", &format!("LogLevel={log_level}"), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]);
        if tty {
            c.arg("-tt");
        }
        c.arg(format!("{user}@127.0.0.1"));
        c
    }

    /// One ssh login that runs `true`: whether it got in, and what the client printed.
    pub fn login(&self, user: &str) -> (bool, String) {
        let out = self.ssh_cmd_at(user, false, "INFO").arg("true").stdin(Stdio::null()).output().unwrap();
        (out.status.success(), text(&out.stderr))
    }

    /// Adds `user` with `uid` inside the container, with the test's ssh key.
    pub fn add_user(&self, user: &str, uid: u32) {
        let key = std::fs::read_to_string(self.state.path().join("id_ed25519.pub")).unwrap();
        self.run(&[
            "useradd",
            "--create-home",
            "--shell",
            "/bin/bash",
            "--uid",
            &uid.to_string(),
            "--user-group",
            user,
        ]);
        let script = format!(
            "install -d -m 700 -o {user} -g {user} /home/{user}/.ssh && \
             printf '%s' '{key}' > /home/{user}/.ssh/authorized_keys && \
             chown {user}:{user} /home/{user}/.ssh/authorized_keys && \
             chmod 600 /home/{user}/.ssh/authorized_keys",
            key = key.trim()
        );
        self.run(&["sh", "-c", &script]);
    }

    /// Lets `user` run anything as root through `sudo -n`.
    pub fn allow_sudo(&self, user: &str) {
        self.run(&["sh", "-c", &format!("echo '{user} ALL=(root) NOPASSWD: ALL' > /etc/sudoers.d/{user}")]);
    }

    /// (session id, user) from `loginctl list-sessions`.
    pub fn loginctl_sessions(&self) -> BTreeSet<(String, String)> {
        self.run(&["loginctl", "list-sessions", "--no-legend"])
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let id = f.next()?;
                let _uid = f.next()?;
                let user = f.next()?;
                Some((id.to_string(), user.to_string()))
            })
            .collect()
    }

    /// The ids of `user`'s sessions now.
    pub fn sessions_of(&self, user: &str) -> BTreeSet<String> {
        sessions_of(&self.loginctl_sessions(), user)
    }

    pub fn session_property(&self, id: &str, prop: &str) -> String {
        text(&self.exec(&["loginctl", "show-session", id, "-p", prop, "--value"]).stdout).trim().to_string()
    }

    /// Opens an ssh session on a pty that stays open (a `sleep` of `marker_secs`) until the
    /// test ends or the session is terminated; its terminal output is dropped.
    pub fn open_session(&mut self, user: &str, marker_secs: u32) -> String {
        self.open_session_with(user, marker_secs, true, Stdio::null())
    }

    /// Like [`Container::open_session`], on a pty only with `tty`, with what the ssh client
    /// prints going to `stdout`. Returns the new session's id once logind has it active
    /// (and, with `tty`, its terminal set up).
    pub fn open_session_with(&mut self, user: &str, marker_secs: u32, tty: bool, stdout: Stdio) -> String {
        let before = self.sessions_of(user);
        let child = self
            .ssh_cmd(user, tty)
            .arg(format!("exec sleep {marker_secs}"))
            .stdin(if tty { Stdio::piped() } else { Stdio::null() })
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.clients.push(child);
        // A new session is "opening" until its pty and scope are set up: wait for more.
        let mut new = String::new();
        self.wait_for(&format!("a new active session of {user}"), 30, || {
            let now = self.sessions_of(user);
            let found = now.difference(&before).find(|id| {
                matches!(self.session_property(id, "State").as_str(), "active" | "online")
                    && (!tty || !self.session_property(id, "TTY").is_empty())
            });
            if let Some(id) = found {
                new = id.clone();
            }
            found.is_some()
        });
        new
    }

    /// Opens an ssh session that leaves `setsid nohup sleep` behind and logs out, so the
    /// session stays "closing" (KillUserProcesses=no). Returns the session id.
    pub fn leave_closing_session(&mut self, user: &str, marker_secs: u32) -> String {
        let before = self.sessions_of(user);
        let out = self
            .ssh_cmd(user, false)
            .arg(format!("setsid nohup sleep {marker_secs} >/dev/null 2>&1 </dev/null & exit 0"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh {user} failed: {}", text(&out.stderr));
        let mut id = String::new();
        self.wait_for(&format!("a closing session of {user}"), 30, || {
            match self.sessions_of(user).difference(&before).next() {
                Some(new) if self.session_property(new, "State") == "closing" => {
                    id = new.clone();
                    true
                }
                _ => false,
            }
        });
        id
    }

    /// Waits up to `secs` seconds for `done`, or panics with the container's journal.
    pub fn wait_for(&self, what: &str, secs: u64, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", self.journal());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The processes of `user` inside the container.
    pub fn pids_of(&self, user: &str) -> BTreeSet<u32> {
        // pgrep exits 1 when nothing matches.
        text(&self.exec(&["pgrep", "-u", user]).stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// The end of the container's journal, for failure messages.
    pub fn journal(&self) -> String {
        text(&self.exec(&["journalctl", "--no-pager", "-n", "80"]).stdout)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        for c in &mut self.clients {
            // Our own ssh clients only; most have exited when their session ended.
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Ok(out) = self.script_cmd().arg("stop").output() {
            eprint!("{}", text(&out.stderr));
        }
    }
}

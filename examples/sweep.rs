//! A small driver of the Linux backend for `bench/kill-bench.sh` (run as root).
//!
//! ```text
//! sweep kill UID [GRACE_MS]   terminate every process of UID (the library's sweep), print stats
//!                             (env SWEEP_PROCESSES=procfs|bpf|auto: the process source)
//! sweep wait UID [TIMEOUT_MS] wait until UID has no live process (zombies count as gone)
//! sweep count UID             print how many live processes UID has
//! sweep list [RUNS]           time the listing of sessions and processes, print medians in ms
//! sweep spawn UID N           start N idle `sleep` processes as UID, reap them as they die
//! sweep storm UID             start a fork storm as UID (see STORM), reap it as it churns
//! ```

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("sweep: Linux only");
    std::process::exit(3);
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use logoff_users::backend::{NativeOptions, ProcessSource, SessionSource, TerminateOptions};
    use logoff_users::identity::Account;
    use logoff_users::testing::linux::passwd::Passwd;
    use logoff_users::testing::linux::procfs::ProcFs;

    /// A fork storm with churn: every process forks two children and exits, so pids come
    /// and go all the time. RLIMIT_NPROC caps it at 3000 processes, and it stops by itself
    /// 20 s after it began.
    pub const STORM: &str = r#"
ulimit -u 3000
END=$((EPOCHSECONDS + 20))
storm() { ((EPOCHSECONDS < END)) || exit 0; storm & storm & exit 0; }
storm
"#;

    /// Runs [`STORM`] as `uid`, as a child subreaper that reaps every orphan at once, so
    /// that exits free RLIMIT_NPROC slots for new forks (here PID 1 reaps only every ~2 s).
    fn storm(uid: u32) {
        // SAFETY: prctl with integer arguments only changes this process's reaper flag.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let mut leader = as_user("bash", uid, gid_of(uid)).args(["-c", STORM]).spawn().expect("start bash");
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status into a valid local.
            let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
            if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break; // ECHILD: the storm is over.
            }
        }
        // Reaped in the loop already: this only tells std so (ECHILD).
        let _ = leader.wait();
    }

    /// The primary gid of `uid` (nogroup when it has no passwd entry).
    fn gid_of(uid: u32) -> u32 {
        Passwd::load("/etc/passwd".as_ref()).by_uid(uid).map_or(65534, |e| e.gid)
    }

    /// `program`, to run as `uid`/`gid` with no standard streams.
    fn as_user(program: &str, uid: u32, gid: u32) -> Command {
        let mut command = Command::new(program);
        command.uid(uid).gid(gid).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        command
    }

    fn arg(args: &[String], i: usize, what: &str) -> u64 {
        args.get(i).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            eprintln!("sweep: missing or bad {what}");
            std::process::exit(2)
        })
    }

    fn live(uid: u32) -> usize {
        ProcFs::new("/proc").owned_by(uid).expect("scan /proc").iter().filter(|(_, st)| !st.is_dead()).count()
    }

    /// `gone UID[,UID...] -- COMMAND ARGS...`: starts the command and, while it runs and
    /// after, polls until none of the uids has a live process (a `stat` scan of /proc every
    /// 2 ms, confirmed by a `status` scan); prints `ms=` from the command's start to that
    /// moment, `exit_ms=` to the command's exit, and its exit code.
    // The child is reaped in the loop (try_wait), or killed and reaped before exiting.
    #[allow(clippy::zombie_processes)]
    fn gone(args: &[String]) {
        let Some(split) = args.iter().position(|a| a == "--") else {
            eprintln!("usage: sweep gone UID[,UID...] -- COMMAND ARGS...");
            std::process::exit(2)
        };
        let uids: Vec<u32> = args[0].split(',').map(|u| u.parse().expect("a uid")).collect();
        let command = &args[split + 1..];
        let procfs = ProcFs::new("/proc");
        let none_left = || {
            procfs.owned_dirs_any(&uids).expect("scan /proc").is_empty()
                && procfs.owned_by_any(&uids).expect("scan /proc").iter().all(|(_, st)| st.is_dead())
        };
        let t = Instant::now();
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start");
        let (mut gone_at, mut exit) = (None, None);
        while gone_at.is_none() || exit.is_none() {
            if exit.is_none() {
                if let Some(status) = child.try_wait().expect("wait") {
                    exit = Some((t.elapsed(), status.code().unwrap_or(-1)));
                }
            }
            if gone_at.is_none() && none_left() {
                gone_at = Some(t.elapsed());
            }
            if t.elapsed() > Duration::from_secs(120) {
                eprintln!("sweep: processes of {uids:?} still there after 120 s, or the command still runs");
                let _ = child.kill();
                let _ = child.wait();
                std::process::exit(1);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let (gone_at, (exit_at, code)) = (gone_at.unwrap(), exit.unwrap());
        println!("ms={:.1} exit_ms={:.1} exit={code}", gone_at.as_secs_f64() * 1e3, exit_at.as_secs_f64() * 1e3);
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match args.first().map(String::as_str) {
            Some("kill") => {
                let uid = arg(&args, 1, "uid") as u32;
                let grace = args.get(2).map_or(5000, |_| arg(&args, 2, "grace"));
                let processes = match std::env::var("SWEEP_PROCESSES").as_deref() {
                    Ok("procfs") => ProcessSource::Procfs,
                    Ok("bpf") => ProcessSource::TaskIter,
                    _ => ProcessSource::Auto,
                };
                let opts = NativeOptions { source: SessionSource::Utmp, processes, ..Default::default() };
                let mut backend = logoff_users::testing::linux::open_backend(&opts).expect("open backend");
                let own = backend.own_pids();
                let t = Instant::now();
                let done = backend.terminate_processes(
                    &Account { id: logoff_users::identity::AccountId::Uid(uid), user: uid.to_string(), domain: None },
                    &TerminateOptions {
                        grace: Duration::from_millis(grace),
                        timeout: Duration::from_secs(60),
                        spare: logoff_users::backend::Sparing { pids: own, sessions: Vec::new() },
                    },
                );
                match done {
                    Ok(d) => println!(
                        "signalled={} method={:?} remaining={} zombies={} ms={:.1}",
                        d.signalled,
                        d.method,
                        d.remaining,
                        d.zombies,
                        t.elapsed().as_secs_f64() * 1e3
                    ),
                    Err(e) => {
                        eprintln!("sweep: {e}");
                        std::process::exit(1)
                    }
                }
            }
            Some("wait") => {
                let uid = arg(&args, 1, "uid") as u32;
                let timeout = Duration::from_millis(args.get(2).map_or(60_000, |_| arg(&args, 2, "timeout")));
                let t = Instant::now();
                while live(uid) > 0 {
                    if t.elapsed() > timeout {
                        eprintln!("sweep: uid {uid} still has processes");
                        std::process::exit(1);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            Some("count") => println!("{}", live(arg(&args, 1, "uid") as u32)),
            Some("gone") => gone(&args[1..]),
            Some("list") => {
                let runs = args.get(1).map_or(5, |_| arg(&args, 1, "runs"));
                // What one run of the tool pays: open the backend (which loads the task
                // iterator on first use), then list sessions and processes.
                let cold = |processes: ProcessSource| {
                    let opts = NativeOptions { source: SessionSource::Utmp, processes, ..Default::default() };
                    let mut backend = logoff_users::testing::linux::open_backend(&opts).expect("open backend");
                    backend.list_sessions().expect("list sessions");
                    backend.list_processes().expect("list processes").len()
                };
                let opts = NativeOptions {
                    source: SessionSource::Utmp,
                    processes: ProcessSource::TaskIter,
                    ..Default::default()
                };
                let mut warm_backend = logoff_users::testing::linux::open_backend(&opts).expect("open backend");
                warm_backend.list_processes().expect("list processes");
                let mut n = 0;
                let mut median = |f: &mut dyn FnMut() -> usize| {
                    let mut times = Vec::new();
                    for _ in 0..runs {
                        let t = Instant::now();
                        n = f();
                        times.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    times.sort_by(f64::total_cmp);
                    times[times.len() / 2]
                };
                let cold_ms = median(&mut || cold(ProcessSource::Auto));
                let warm_ms = median(&mut || warm_backend.list_processes().expect("list processes").len());
                let procfs_ms = median(&mut || cold(ProcessSource::Procfs));
                println!("processes={n} cold_ms={cold_ms:.1} warm_ms={warm_ms:.1} procfs_ms={procfs_ms:.1}");
                if std::env::var_os("SWEEP_SCAN_DETAIL").is_some() {
                    let passwd = Passwd::load("/etc/passwd".as_ref());
                    let procfs = ProcFs::new("/proc");
                    let time = |what: &str, f: &dyn Fn() -> usize| {
                        let t = Instant::now();
                        let n = f();
                        println!("{what}: {n} in {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
                    };
                    time("readdir", &|| procfs.pids().unwrap().len());
                    time("stat() scan", &|| procfs.owned_dirs_any(&[0]).unwrap().len());
                    time("status scan", &|| procfs.owned_by(0).unwrap().len());
                    time("status+stat listing", &|| procfs.list_processes(&passwd).unwrap().len());
                    use logoff_users::testing::linux::{bpf_iter::TaskIter, btf::Btf};
                    time("BTF parse", &|| Btf::load_vmlinux().unwrap().len());
                    time("task iterator load", &|| TaskIter::open().map(|_| 1).unwrap_or(0));
                    let iter = TaskIter::open().expect("load the task iterator");
                    time("task iterator pass", &|| iter.tasks().unwrap().len());
                    time("task iterator pass + /proc readdir", &|| {
                        iter.scan(&procfs, &procfs.pids().unwrap()).unwrap().len()
                    });
                }
            }
            Some("spawn") => {
                let uid = arg(&args, 1, "uid") as u32;
                let n = arg(&args, 2, "count");
                let gid = gid_of(uid);
                let mut children = Vec::new();
                for _ in 0..n {
                    children.push(as_user("sleep", uid, gid).arg("3600").spawn().expect("spawn sleep"));
                }
                println!("ready");
                for mut c in children {
                    let _ = c.wait();
                }
            }
            Some("storm") => storm(arg(&args, 1, "uid") as u32),
            _ => {
                eprintln!("usage: sweep kill|wait|count|gone|list|spawn|storm ...");
                std::process::exit(2);
            }
        }
    }
}

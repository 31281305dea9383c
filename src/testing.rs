//! The test-support entrance: what the project's own fuzz targets (`fuzz/`), integration
//! tests (`tests/`) and examples reach beyond the public API. Nothing here is a stable
//! interface; other programs should not use it.
//!
//! - [`fuzz`]: the fuzz entry points, shared with the corpus replay test so that CI replays
//!   the corpus with a plain `cargo test`;
//! - the planner and its input ([`plan`], [`Snapshot`], [`account_protection`]), for the
//!   property tests;
//! - [`linux`]: the Linux backend's parts (procfs, utmp, passwd, logind, cgroups, the task
//!   iterator), for the real-system tests;
//! - `windows`: the token and machine facts the Windows backend acts on, for
//!   `examples/wts_probe.rs`.

pub use crate::plan::plan;
pub use crate::snapshot::Snapshot;

/// Whether an account is protected (root, SYSTEM, a service account, a uid below
/// `uid_min`), and why.
pub fn account_protection(account: &crate::identity::Account, uid_min: Option<u32>) -> Option<String> {
    crate::protect::account_protection(account, uid_min).map(|p| p.reason().to_string())
}

/// The Linux backend's parts.
#[cfg(target_os = "linux")]
pub mod linux {
    pub use crate::platform::linux::{
        Linux, bpf_iter, btf, cgroup, logind, notifications, open_backend, passwd, procfs, utmp,
    };
}

/// The Windows backend's token and machine facts.
#[cfg(windows)]
pub mod windows {
    pub use crate::platform::windows::eventlog::invoker;
    pub use crate::platform::windows::wts::{
        current_session_id, enable_debug_privilege, local_names, token_is_admin, token_user,
    };
}

/// The fuzz entry points. Each checks invariants beyond "no panic": a refused input always
/// carries a message.
pub mod fuzz {
    use crate::userlist::{Targets, parse_exclude, parse_name, parse_targets};

    /// Fuzzes the user-list parser and the matcher with arbitrary bytes.
    pub fn userlist(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else { return };
        // The first line is the list; the rest, if any, a reported account to match against.
        let (list, reported) = text.split_once('\n').unwrap_or((text, ""));
        match parse_targets(&[list.to_string()]) {
            Ok(Targets::All) => {}
            Ok(Targets::Users(names)) => {
                assert!(!names.is_empty(), "a parsed list is never empty");
                for n in &names {
                    assert!(!n.name.is_empty(), "a parsed name is never empty");
                    assert!(!n.name.chars().any(char::is_control));
                    // Matching never panics, and a name always matches itself as reported.
                    let _ = n.matches(reported, None, Some("PC1"));
                    assert!(n.matches(&n.name, None, None) || !matches!(n.domain, crate::userlist::DomainSpec::Any));
                }
            }
            Err(e) => assert!(!e.message.is_empty(), "a refusal always says why"),
        }
        if let Err(e) = parse_exclude(&[list.to_string()]) {
            assert!(!e.message.is_empty());
        }
        if let Err(e) = parse_name(list) {
            assert!(!e.message.is_empty());
        }
    }

    /// The Linux parsers: utmp, `/proc`, `/etc/passwd` and `login.defs`.
    #[cfg(target_os = "linux")]
    pub mod linux {
        use crate::platform::linux::{bpf_iter, btf::Btf, passwd::Passwd, procfs, utmp};

        /// Fuzzes the utmp parser: any bytes decode without panicking, one record per full
        /// 384 bytes, and a decoded record survives encoding and decoding again.
        pub fn utmp(data: &[u8]) {
            let records = utmp::parse(data);
            assert_eq!(records.len(), data.len() / utmp::RECORD_SIZE);
            for r in &records {
                let again = utmp::decode(&utmp::encode(r)).expect("a full record decodes");
                assert_eq!(utmp::decode(&utmp::encode(&again)), Some(again));
            }
        }

        /// Fuzzes the text parsers of `/proc/PID/status`, `/proc/PID/stat`, `/proc/stat`,
        /// `/etc/passwd` and `/etc/login.defs`.
        pub fn procfs(data: &[u8]) {
            let Ok(text) = std::str::from_utf8(data) else { return };
            if let Some(st) = procfs::parse_status(text) {
                let _ = st.is_dead();
                assert!(st.is_owned_by(st.uids[0]));
            }
            let _ = procfs::parse_stat_start_ticks(text);
            let _ = procfs::parse_stat_session(text);
            let _ = procfs::parse_boot_time(text);
            let _ = procfs::parse_uid_min(text);
            let _ = procfs::parse_uid_max(text);
            let pw = Passwd::parse(text);
            if let Some(e) = text.lines().next().and_then(|l| l.split(':').next()).and_then(|n| pw.by_name(n)) {
                assert!(pw.by_uid(e.uid).is_some());
            }
        }

        /// Fuzzes the BTF reader (any bytes parse or fail cleanly; every lookup on a parsed
        /// blob terminates without panicking, even through cyclic or dangling type ids), the
        /// task layout built from it, and the decoder of task iterator records.
        pub fn btf(data: &[u8]) {
            let tasks = bpf_iter::decode(data);
            assert_eq!(tasks.len(), data.len() / 56);
            for t in &tasks {
                assert!("RSDTtXZPI".contains(t.state));
                assert!(t.name.len() <= 16 * 3, "a 16-byte comm, each byte at most 3 UTF-8 bytes");
            }
            let Ok(btf) = Btf::parse(data.to_vec()) else { return };
            for id in 0..btf.len() as u32 + 2 {
                let _ = btf.size_of(id);
                let _ = btf.array_of(id);
                for name in ["pid", "val", "", "comm"] {
                    if let Some(m) = btf.member(id, name) {
                        assert_eq!(btf.size_of(m.type_id), Some(m.size));
                    }
                }
            }
            let _ = btf.find_struct("task_struct");
            if let Ok(layout) = bpf_iter::Layout::from_btf(&btf) {
                let program = bpf_iter::program(&layout);
                assert_eq!(program.last().map(|i| i & 0xff), Some(0x95), "the program ends with exit");
            }
        }
    }
}

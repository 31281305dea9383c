//! The test-support entrance: what the project's own fuzz targets (`fuzz/`), integration
//! tests (`tests/`) and examples reach beyond the public API. Nothing here is a stable
//! interface; other programs should not use it.
//!
//! - [`fuzz`]: the fuzz entry points, shared with the corpus replay test so that CI replays
//!   the corpus with a plain `cargo test`;
//! - the planner and its input ([`plan`], [`Snapshot`], [`account_protection`]), for the
//!   property tests;
//! - `linux`: the Linux backend's parts (procfs, utmp, passwd, logind, cgroups, the task
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

    /// Fuzzes the text renderers and the audit records with arbitrary strings (the input,
    /// split at each `0xff` byte, which UTF-8 never holds; invalid UTF-8 becomes U+FFFD as
    /// it does when read from the OS): every output has exactly the lines it should, each
    /// ending in a newline, and no control, bidirectional formatting or line separator
    /// character besides; and every audit record reads back as the keys it was built with
    /// and the very values, so that no value can forge another key or record.
    ///
    /// The first byte picks which sixteenth of the outputs one input renders (each costs
    /// more than the parsers' inputs do, and one exercised at a time keeps the fuzzer fast).
    pub fn text(data: &[u8]) {
        let Some((&pick, data)) = data.split_first() else { return };
        let fields: Vec<String> = data.split(|&b| b == 0xff).map(|b| String::from_utf8_lossy(b).into_owned()).collect();
        let pick = usize::from(pick) % 16;
        for r in render::picked(&fields, &|k| k % 16 == pick) {
            render::check(&r);
        }
        if pick == 0 {
            render::check_audit_round_trip(&fields);
        }
    }

    /// The text renderers' outputs for given strings, and their invariants, shared by the
    /// fuzz target and the unit tests of `crate::text` and `crate::audit`.
    pub mod render {
        use crate::audit::{action_record, quote, summary_record};
        use crate::event::{Event, Would};
        use crate::model::{Session, SessionState};
        use crate::plan::{Plan, Refusal, TerminateReason};
        use crate::report::{
            ActionKind, ActionRecord, ActionResult, HostReport, HostSessions, Report, Request, Stop, Summary,
        };
        use crate::userlist::Requested;

        /// Hostile strings, as the OS or a user may hand them over, and how they are shown.
        pub const HOSTILE: &[(&str, &str)] = &[
            ("pts/1\nverified: root is", "pts/1\\nverified: root is"),
            ("a\r\nsummary: 0 failed", "a\\r\\nsummary: 0 failed"),
            ("tab\there", "tab\\there"),
            ("\x1b[2Jclear", "\\x1b[2Jclear"),
            ("\x1b]0;owned\x07title", "\\x1b]0;owned\\x07title"),
            ("nul\0end", "nul\\x00end"),
            ("del\x7f", "del\\x7f"),
            ("nel\u{85}csi\u{9b}2J", "nel\\u{85}csi\\u{9b}2J"),
            ("invoice\u{202e}fdp.exe", "invoice\\u{202e}fdp.exe"),
            ("\u{2066}iso\u{2069}\u{202a}\u{202d}", "\\u{2066}iso\\u{2069}\\u{202a}\\u{202d}"),
            ("marks\u{200e}\u{200f}\u{61c}", "marks\\u{200e}\\u{200f}\\u{61c}"),
            ("line\u{2028}para\u{2029}", "line\\u{2028}para\\u{2029}"),
        ];

        /// One output: what rendered it, the text as printed (each line ending in a
        /// newline), how many lines it must be, and whether it quotes an input string.
        #[derive(Debug)]
        pub struct Rendered {
            pub what: String,
            pub text: String,
            pub lines: usize,
            pub quotes_input: bool,
        }

        /// Whether `c` may not appear in printed text but as a line's newline. Written out
        /// here on its own, not taken from `crate::text`, so that a gap there shows.
        pub fn forbidden(c: char) -> bool {
            let bidi = ['\u{061c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}'];
            let isolates = ['\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}'];
            let c0_del_c1 = (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32));
            c0_del_c1 || bidi.contains(&c) || isolates.contains(&c) || c == '\u{2028}' || c == '\u{2029}'
        }

        /// Checks one output's invariants.
        pub fn check(r: &Rendered) {
            assert!(r.text.ends_with('\n'), "{}: {:?} does not end a line", r.what, r.text);
            assert_eq!(r.text.matches('\n').count(), r.lines, "{}: {:?}", r.what, r.text);
            let bad: Vec<char> = r.text.chars().filter(|&c| c != '\n' && forbidden(c)).collect();
            assert!(bad.is_empty(), "{}: {bad:?} in {:?}", r.what, r.text);
        }

        /// Every text renderer and audit record, fed with `fields` (cycled through; at
        /// least one).
        pub fn all(fields: &[String]) -> Vec<Rendered> {
            picked(fields, &|_| true)
        }

        /// The outputs of [`all`] whose index `pick` accepts; only those are rendered.
        pub fn picked(fields: &[String], pick: &dyn Fn(usize) -> bool) -> Vec<Rendered> {
            let mut n = 0;
            let mut wanted = || {
                n += 1;
                pick(n - 1)
            };
            let mut i = 0;
            let mut f = || {
                i += 1;
                fields[(i - 1) % fields.len()].clone()
            };
            let mut out = Vec::new();
            for k in 0..EVENTS {
                if wanted() {
                    let e = event(k, &mut f);
                    let quotes_input = !matches!(e, Event::Waiting { .. } | Event::Countdown { .. } | Event::Cancelled);
                    out.push(line(&format!("event {k}"), e.to_string(), quotes_input));
                }
            }
            // The audit records, one line each.
            let (host, user, session, error, invoker) = (f(), f(), f(), f(), f());
            let mut a = ActionRecord::new(ActionKind::LogoffSession, &user, Some(&session));
            a.result = ActionResult::Failed;
            a.error = Some(error);
            let s = Summary { users_logged_off: 1, exit_code: 1, ..Summary::default() };
            let (targets, value, cause, text) = (f(), f(), f(), f());
            if wanted() {
                out.push(line("action_record", action_record(&invoker, &host, &a).message, true));
            }
            #[cfg(target_os = "linux")]
            if wanted() {
                let datagram = crate::platform::linux::format_datagram(&action_record(&invoker, &host, &a), 42);
                out.push(line("syslog datagram", datagram, true));
            }
            if wanted() {
                out.push(line("summary_record", summary_record(&invoker, &targets, &s).message, true));
            }
            if wanted() {
                out.push(line("quote", quote(&value), true));
            }
            if wanted() {
                out.push(line("warning_line", crate::text::warning_line("could not do it", &cause), true));
            }
            if wanted() {
                // Newlines stay (they are clap's lines): the text is not quoted as it is.
                let escaped = format!("{}\n", crate::text::escape_lines(&text));
                let lines = text.split('\n').count();
                out.push(Rendered { what: "escape_lines".into(), text: escaped, lines, quotes_input: false });
            }

            out.extend(report_outputs(&mut f, &mut wanted));
            out.extend(job_outputs(&mut f, &mut wanted));
            out
        }

        /// The session table, the error lines of a refused run and the summary (see [`picked`]).
        fn report_outputs(f: &mut dyn FnMut() -> String, wanted: &mut dyn FnMut() -> bool) -> Vec<Rendered> {
            let mut f = f;
            let mut out = Vec::new();
            // The session table: a header and one line per session.
            if wanted() {
                let sessions: Vec<Session> = (0..3).map(|_| new_session(&mut f)).collect();
                let hosts = vec![HostSessions { host: f(), backend: f(), error: None, sessions, drain: None }];
                out.push(block("session_table", crate::text::session_table(&hosts), 4));
            }
            if wanted() {
                let failed =
                    vec![HostSessions { host: f(), backend: f(), error: Some(f()), sessions: Vec::new(), drain: None }];
                out.push(block("list_error_lines", lines_of(&crate::text::list_error_lines(&failed)), 1));
            }

            // The error lines of a refused run: one per refusal, or the one error; the summary.
            if wanted() {
                let mut host = HostReport::new(&f());
                let refusals = (0..2)
                    .map(|_| Refusal { requested: Requested::All, user: f(), session_id: Some(f()), reason: f() })
                    .collect();
                host.plan = Some(Plan { refused: refusals, ..Plan::default() });
                let refused = Report::new(request(&mut f), vec![host], Some(Stop::Usage), None);
                out.push(block("error_lines (refused)", lines_of(&crate::text::error_lines(&refused)), 2));
            }
            if wanted() {
                let failed = Report::new(request(&mut f), Vec::new(), Some(Stop::Usage), Some(f()));
                out.push(block("error_lines (error)", lines_of(&crate::text::error_lines(&failed)), 1));
            }
            if wanted() {
                let done = Report::new(request(&mut f), vec![HostReport::new(&f())], None, None);
                let summary = crate::text::summary_line(&done).expect("a run that looked at a host has a summary");
                out.push(line("summary_line", summary, false));
            }
            out
        }

        /// The scheduled logoffs' lines and `--pending` table (see [`picked`]).
        fn job_outputs(f: &mut dyn FnMut() -> String, wanted: &mut dyn FnMut() -> bool) -> Vec<Rendered> {
            use crate::schedule::{CancelDoc, JobEvent, JobState, JobTargets, JobView, PendingDoc, Refused};
            let mut out = Vec::new();
            let due_ms = 1_800_000_000_000;
            let (id, by) = ("0badf00d".to_string(), Some(f()));
            let events = [
                JobEvent::Scheduled { id: id.clone(), targets: f(), due_ms, now_ms: due_ms - 60_000, mechanism: f() },
                JobEvent::Waiting { id: id.clone(), due_ms, mechanism: Some(f()) },
                JobEvent::NotPending { id: id.clone(), state: JobState::Cancelled, by },
                JobEvent::Abandoned { id: id.clone(), why: f() },
                JobEvent::Cancelled { id: id.clone(), targets: f(), due_ms, already: false },
                JobEvent::Unknown { id: id.clone(), dir: f() },
                JobEvent::Refused { file: f(), reason: f() },
            ];
            for (k, e) in events.into_iter().enumerate() {
                if wanted() {
                    out.push(line(&format!("job event {k}"), e.to_string(), true));
                }
            }
            if wanted() {
                let mut view = |all| JobView {
                    id: id.clone(),
                    state: JobState::Failed,
                    scheduled_by: f(),
                    scheduled_at: 1_799_999_000,
                    due: 1_800_000_000,
                    targets: JobTargets {
                        all,
                        users: if all { Vec::new() } else { vec![f(), f()] },
                        exclude: vec![f()],
                        disconnected_only: true,
                        idle_over_s: Some(60),
                        disconnect: false,
                        orphans: true,
                    },
                    message: Some(f()),
                    grace_ms: 60_000,
                    mechanism: Some(f()),
                    started_at: None,
                    finished_at: Some(1_800_000_001),
                    exit_code: Some(1),
                    error: Some(f()),
                    cancelled_by: Some(f()),
                    summary: None,
                    drained: true,
                };
                let jobs = vec![view(false), view(true)];
                let doc = PendingDoc {
                    version: 1,
                    tool: f(),
                    dir: f(),
                    jobs,
                    refused: vec![Refused { file: f(), reason: f() }],
                    error: Some(f()),
                    exit_code: 1,
                };
                // A header, two rows, an error and a canceller line per job, the refused
                // file, the error.
                out.push(block("pending_table", crate::text::pending_table(&doc), 9));
            }
            if wanted() {
                out.push(line("schedule_error_line", crate::text::schedule_error_line(&f()), true));
            }
            if wanted() {
                let doc = CancelDoc {
                    version: 1,
                    tool: f(),
                    request: f(),
                    cancelled: Vec::new(),
                    too_late: Vec::new(),
                    unknown: None,
                    refused: Vec::new(),
                    messages: Vec::new(),
                    error: Some(f()),
                    exit_code: 1,
                };
                out.push(line("cancel_summary_line", crate::text::cancel_summary_line(&doc), true));
            }
            out
        }

        /// A one-line output.
        fn line(what: &str, text: String, quotes_input: bool) -> Rendered {
            Rendered { what: what.to_string(), text: format!("{text}\n"), lines: 1, quotes_input }
        }

        /// A multi-line output that quotes the input.
        fn block(what: &str, text: String, lines: usize) -> Rendered {
            Rendered { what: what.to_string(), text, lines, quotes_input: true }
        }

        fn lines_of(lines: &[String]) -> String {
            lines.iter().map(|l| format!("{l}\n")).collect()
        }

        fn request(f: &mut dyn FnMut() -> String) -> Request {
            Request {
                all: false,
                users: vec![f(), f()],
                exclude: vec![f()],
                dry_run: false,
                timeout_ms: 1000,
                orphans: false,
                drain: None,
            }
        }

        fn new_session(f: &mut dyn FnMut() -> String) -> Session {
            let mut s = Session::new(f(), f(), SessionState::Active);
            s.domain = Some(f());
            s.station = Some(f());
            s.remote_host = Some(f());
            s.logon_time = Some(1_795_000_000);
            s.idle_seconds = Some(90);
            s
        }

        /// How many kinds of event [`event`] makes.
        pub const EVENTS: usize = 35;

        /// The `k`th kind of event or dry-run line (`k` below [`EVENTS`]), with strings from
        /// `f` in each text field.
        pub fn event(k: usize, f: &mut dyn FnMut() -> String) -> Event {
            let record = |f: &mut dyn FnMut() -> String, action, result, signalled| {
                let mut a = ActionRecord::new(action, &f(), Some(&f()));
                a.result = result;
                a.signalled = signalled;
                a.method = signalled.map(|_| crate::backend::Method::KillAsUid);
                a.error = Some(f());
                a
            };
            match k {
                0 => Event::Host { host: f(), backend: f() },
                1 => Event::HostFailed { host: f(), error: f() },
                2 => Event::User { requested: f(), user: f(), sessions: 1, processes: 2, all: false },
                3 => Event::NotLoggedOn { requested: f() },
                4 => Event::Skipped { session_id: f(), user: f(), reason: f() },
                5 => Event::Note { user: f(), note: f() },
                6 => Event::LoggingOff { user: f(), session_id: f(), station: Some(f()) },
                7 => Event::LoggingOff { user: f(), session_id: f(), station: None },
                8 => Event::Disconnecting { user: f(), session_id: f() },
                9 => Event::Terminating { user: f(), reason: TerminateReason::Fallback, processes: 3 },
                10 => Event::Terminating { user: f(), reason: TerminateReason::Sweep, processes: 3 },
                11 => Event::Action(record(f, ActionKind::LogoffSession, ActionResult::Requested, None)),
                12 => Event::Action(record(f, ActionKind::SendMessage, ActionResult::Requested, None)),
                13 => Event::Action(record(f, ActionKind::DisconnectSession, ActionResult::Requested, None)),
                14 => Event::Action(record(f, ActionKind::TerminateProcesses, ActionResult::Requested, Some(4))),
                15 => Event::Action(record(f, ActionKind::LogoffSession, ActionResult::AlreadyGone, None)),
                16 => Event::Action(record(f, ActionKind::LogoffSession, ActionResult::Failed, None)),
                17 => {
                    let mut processes = ActionRecord::new(ActionKind::TerminateProcesses, &f(), None);
                    processes.reason = Some(TerminateReason::Sweep);
                    Event::Action(processes)
                }
                18 => Event::Warning { sessions: 2, text: f() },
                19 => Event::Waiting { timeout_ms: 30_000 },
                20 => Event::VerifiedGone { user: f(), zombies: 0 },
                21 => Event::VerifiedGone { user: f(), zombies: 2 },
                22 => Event::StillPresent {
                    user: f(),
                    sessions: vec![f(), f()],
                    pids: vec![10, 11, 12],
                    names: vec![f(), f()],
                    uninterruptible: vec![11],
                },
                23 => Event::Countdown { remaining_ms: 60_000, reminder: false },
                24 => Event::Countdown { remaining_ms: 60_000, reminder: true },
                25 => Event::Countdown { remaining_ms: 0, reminder: false },
                26 => Event::Cancelled,
                27 => Event::Would(Would::Warn { text: f(), grace_ms: 300_000 }),
                28 => Event::Would(Would::Skip { session_id: f(), user: f(), reason: f() }),
                29 => Event::Would(Would::User { user: f(), sessions: 1, processes: 2 }),
                30 => Event::Would(Would::Act {
                    action: ActionKind::LogoffSession,
                    session_id: f(),
                    station: Some(f()),
                    user: f(),
                }),
                31 => Event::Would(Would::Act {
                    action: ActionKind::DisconnectSession,
                    session_id: f(),
                    station: None,
                    user: f(),
                }),
                32 => Event::Would(Would::Terminate { user: f(), reason: TerminateReason::Fallback, processes: 3 }),
                33 => Event::Would(Would::Terminate { user: f(), reason: TerminateReason::Sweep, processes: 3 }),
                34 => Event::SameMachine { host: f(), kept: f() },
                _ => panic!("there are {EVENTS} events"),
            }
        }

        /// Reads a record's `key=value` pairs back as the audit trail's reader would:
        /// unquoted values run to the next blank; quoted ones to the next unescaped quote.
        pub fn parse_record(message: &str) -> Vec<(String, String)> {
            assert!(!message.contains(forbidden), "a record holds a forbidden character: {message:?}");
            let mut out = Vec::new();
            let mut rest = message;
            while !rest.is_empty() {
                let (key, after) = rest.split_once('=').expect("every field is key=value");
                assert!(!key.contains([' ', '"']), "a key holds a blank or a quote: {key:?} in {message:?}");
                let (value, after) = match after.strip_prefix('"') {
                    Some(quoted) => unquote(quoted, message),
                    None => {
                        let end = after.find(' ').unwrap_or(after.len());
                        (after[..end].to_string(), &after[end..])
                    }
                };
                out.push((key.to_string(), value));
                rest = match after.strip_prefix(' ') {
                    Some(next) => next,
                    None => {
                        assert!(after.is_empty(), "fields are separated by one blank: {message:?}");
                        after
                    }
                };
            }
            out
        }

        /// The value of a quoted field (after its opening quote), and what follows it.
        fn unquote<'a>(quoted: &'a str, message: &str) -> (String, &'a str) {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            while let Some((at, c)) = chars.next() {
                match c {
                    '"' => return (value, &quoted[at + 1..]),
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some('r') => value.push('\r'),
                        Some('t') => value.push('\t'),
                        Some('x') => {
                            let hex: String = (0..2).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                            value.push(u8::from_str_radix(&hex, 16).expect("two hex digits") as char);
                        }
                        Some('u') => {
                            assert_eq!(chars.next().map(|(_, c)| c), Some('{'), "{message:?}");
                            let hex: String = chars.by_ref().map(|(_, c)| c).take_while(|&c| c != '}').collect();
                            value.push(char::from_u32(u32::from_str_radix(&hex, 16).expect("hex")).expect("a char"));
                        }
                        Some(c @ ('"' | '\\')) => value.push(c),
                        other => panic!("unknown escape {other:?} in {message:?}"),
                    },
                    c => value.push(c),
                }
            }
            panic!("an unterminated quote in {message:?}");
        }

        /// Checks that audit records built from `fields` read back as exactly their keys
        /// and values.
        pub fn check_audit_round_trip(fields: &[String]) {
            let at = |i: usize| fields[i % fields.len()].clone();
            let (invoker, host, user, session, error) = (at(0), at(1), at(2), at(3), at(4));
            let mut a = ActionRecord::new(ActionKind::LogoffSession, &user, Some(&session));
            a.result = ActionResult::Failed;
            a.error = Some(error.clone());
            let got = parse_record(&action_record(&invoker, &host, &a).message);
            let want = [
                ("action", "logoff_session"),
                ("host", &host),
                ("user", &user),
                ("session", &session),
                ("result", "failed"),
                ("error", &error),
                ("invoked_by", &invoker),
            ];
            let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            assert_eq!(got, want);
            let s = Summary::default();
            let got = parse_record(&summary_record(&invoker, &user, &s).message);
            assert_eq!(got.first(), Some(&("action".to_string(), "run".to_string())));
            assert_eq!(got[1], ("targets".to_string(), user));
            assert_eq!(got.last(), Some(&("invoked_by".to_string(), invoker)));
            assert_eq!(got.len(), 10, "{got:?}");
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

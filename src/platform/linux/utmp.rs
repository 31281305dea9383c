//! The utmp file (`/var/run/utmp`), parsed in pure Rust in the glibc x86_64 layout.
//!
//! libc's `getutxent` is not used: under musl it is a stub that finds nothing, and `who`
//! is not run either. This module converts records to [`Session`]s; it does not decide
//! whether a leader is alive (the caller passes that in), and it never signals anything.
//! [`encode`] and [`write_file`] exist for tests, which build utmp files of their own.
//!
//! [`UtmpFile`] reads the file: the system's, or one named with `--utmp`, which is trusted
//! only when root alone can write it (see [`UtmpFile::read`]).

use std::cell::OnceCell;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::model::{Session, SessionState};

/// Where utmp records are read from.
#[derive(Debug)]
pub struct UtmpFile {
    path: PathBuf,
    /// Named with `--utmp`: checked, and opened once.
    given: bool,
    opened: OnceCell<File>,
}

impl UtmpFile {
    /// The system's utmp file at `path`; a missing one means nobody logged in through utmp.
    pub fn system(path: impl Into<PathBuf>) -> UtmpFile {
        UtmpFile { path: path.into(), given: false, opened: OnceCell::new() }
    }

    /// A utmp file named on the command line (`--utmp PATH`).
    pub fn given(path: impl Into<PathBuf>) -> UtmpFile {
        UtmpFile { path: path.into(), given: true, opened: OnceCell::new() }
    }

    /// The whole file, as it is now.
    ///
    /// A file named with `--utmp` is opened once, on the first read, and refused unless it
    /// is a regular file owned by root that neither its group nor others may write: a utmp
    /// file names the processes the tool signals as session leaders, and the tool runs as
    /// root, so only a file that root alone could have written is trusted, and `--utmp`
    /// cannot be used to read any other kind of file as root. The check is made on the
    /// opened file (`fstat`), and every later read goes through that same open file, so
    /// the path cannot be swapped for another file between the check and the reads. It is
    /// opened non-blocking, so a FIFO cannot hang the tool before it is refused.
    ///
    /// # Errors
    ///
    /// `InvalidInput` (exit 2) for an untrusted file; the I/O error when it cannot be read
    /// (a missing system utmp file is no error: it reads as empty).
    pub fn read(&self) -> Result<Vec<u8>> {
        let action = || format!("read {}", self.path.display());
        if !self.given {
            return match std::fs::read(&self.path) {
                Ok(b) => Ok(b),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(Error::from_io(action(), &e)),
            };
        }
        let file = match self.opened.get() {
            Some(f) => f,
            None => {
                let f = open_trusted(&self.path)?;
                self.opened.get_or_init(|| f)
            }
        };
        let mut bytes = Vec::new();
        let mut reader = file;
        reader.rewind().and_then(|_| reader.read_to_end(&mut bytes)).map_err(|e| Error::from_io(action(), &e))?;
        Ok(bytes)
    }
}

/// Opens `path` for reading and checks the opened file with [`untrusted`].
fn open_trusted(path: &Path) -> Result<File> {
    let action = format!("read --utmp {}", path.display());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| Error::from_io(action.clone(), &e))?;
    let meta = file.metadata().map_err(|e| Error::from_io(action.clone(), &e))?;
    let kind = meta.file_type();
    let kind = match () {
        _ if kind.is_file() => None,
        _ if kind.is_dir() => Some("a directory"),
        _ if kind.is_fifo() => Some("a FIFO"),
        _ if kind.is_socket() => Some("a socket"),
        _ if kind.is_char_device() || kind.is_block_device() => Some("a device"),
        _ => Some("not a regular file"),
    };
    match untrusted(kind, meta.uid(), meta.mode()) {
        Some(why) => Err(Error::new(ErrorKind::InvalidInput, action, why)),
        None => Ok(file),
    }
}

/// Why a file given as `--utmp` is not trusted, if it is not: `kind` names what it is when
/// it is not a regular file; `uid` and `mode` are its owner and mode bits.
pub fn untrusted(kind: Option<&str>, uid: u32, mode: u32) -> Option<String> {
    const ADVICE: &str = "the tool reads the system's utmp file without --utmp";
    if let Some(kind) = kind {
        return Some(format!("it is {kind}, not a regular file; {ADVICE}"));
    }
    if uid != 0 {
        return Some(format!(
            "it is owned by uid {uid}, not root: a utmp file that another user could have written is not \
             trusted (it names the processes to signal); {ADVICE}"
        ));
    }
    if mode & 0o022 != 0 {
        return Some(format!(
            "it is writable by its group or others (mode {:04o}): a utmp file that another user could \
             have written is not trusted (it names the processes to signal); {ADVICE}",
            mode & 0o7777
        ));
    }
    None
}

/// The size of one glibc utmp record on x86_64 (and every 64-bit glibc target that uses
/// the 32-bit time compatibility layout).
pub const RECORD_SIZE: usize = 384;

/// `ut_type` of a record: a normal process, i.e. a user login.
pub const USER_PROCESS: i16 = 7;
/// `ut_type` of a record whose login has ended.
pub const DEAD_PROCESS: i16 = 8;

const LINE: std::ops::Range<usize> = 8..40;
const ID: std::ops::Range<usize> = 40..44;
const USER: std::ops::Range<usize> = 44..76;
const HOST: std::ops::Range<usize> = 76..332;
const SESSION: usize = 336;
const TV_SEC: usize = 340;
const TV_USEC: usize = 344;
const ADDR_V6: std::ops::Range<usize> = 348..364;

/// One utmp record, the fields this tool uses or writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// `ut_type`.
    pub kind: i16,
    /// `ut_pid`: the session leader.
    pub pid: i32,
    /// `ut_line`: the tty, without `/dev/`.
    pub line: String,
    /// `ut_id`: the inittab id or tty suffix.
    pub id: String,
    /// `ut_user`.
    pub user: String,
    /// `ut_host`: the remote host, empty for a local login.
    pub host: String,
    /// `ut_session`.
    pub session: i32,
    /// `ut_tv.tv_sec`: the login time.
    pub tv_sec: i32,
    /// `ut_tv.tv_usec`.
    pub tv_usec: i32,
    /// `ut_addr_v6`, raw.
    pub addr_v6: [u8; 16],
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn i32_at(rec: &[u8], at: usize) -> i32 {
    i32::from_ne_bytes([rec[at], rec[at + 1], rec[at + 2], rec[at + 3]])
}

/// Decodes one record of exactly [`RECORD_SIZE`] bytes; `None` for any other length.
pub fn decode(rec: &[u8]) -> Option<Record> {
    if rec.len() != RECORD_SIZE {
        return None;
    }
    let mut addr_v6 = [0u8; 16];
    addr_v6.copy_from_slice(&rec[ADDR_V6]);
    Some(Record {
        kind: i16::from_ne_bytes([rec[0], rec[1]]),
        pid: i32_at(rec, 4),
        line: c_string(&rec[LINE]),
        id: c_string(&rec[ID]),
        user: c_string(&rec[USER]),
        host: c_string(&rec[HOST]),
        session: i32_at(rec, SESSION),
        tv_sec: i32_at(rec, TV_SEC),
        tv_usec: i32_at(rec, TV_USEC),
        addr_v6,
    })
}

/// Decodes a whole utmp file. A truncated last record is ignored, as glibc does.
pub fn parse(bytes: &[u8]) -> Vec<Record> {
    bytes.chunks_exact(RECORD_SIZE).filter_map(decode).collect()
}

fn put_str(dst: &mut [u8], s: &str) {
    // Fields are fixed-size and need not be NUL-terminated when full, like glibc's.
    let n = s.len().min(dst.len());
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// Encodes a record in the glibc layout; strings too long for their field are cut.
pub fn encode(r: &Record) -> [u8; RECORD_SIZE] {
    let mut rec = [0u8; RECORD_SIZE];
    rec[0..2].copy_from_slice(&r.kind.to_ne_bytes());
    rec[4..8].copy_from_slice(&r.pid.to_ne_bytes());
    put_str(&mut rec[LINE], &r.line);
    put_str(&mut rec[ID], &r.id);
    put_str(&mut rec[USER], &r.user);
    put_str(&mut rec[HOST], &r.host);
    rec[SESSION..SESSION + 4].copy_from_slice(&r.session.to_ne_bytes());
    rec[TV_SEC..TV_SEC + 4].copy_from_slice(&r.tv_sec.to_ne_bytes());
    rec[TV_USEC..TV_USEC + 4].copy_from_slice(&r.tv_usec.to_ne_bytes());
    rec[ADDR_V6].copy_from_slice(&r.addr_v6);
    rec
}

/// Writes `records` to `path` as a utmp file (for tests and tools that build one).
///
/// # Errors
///
/// Fails when the file cannot be written.
pub fn write_file(path: &Path, records: &[Record]) -> io::Result<()> {
    let bytes: Vec<u8> = records.iter().flat_map(encode).collect();
    std::fs::write(path, bytes)
}

/// The utmp session id of a leader pid.
pub fn session_id(pid: u32) -> String {
    format!("utmp:{pid}")
}

/// The leader pid of a utmp session id, or `None` if `id` is not one.
pub fn leader_of(id: &str) -> Option<u32> {
    id.strip_prefix("utmp:")?.parse().ok()
}

/// What the process table says about the pid of a utmp record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leader {
    /// A live process with that pid, old enough to be the login's leader.
    Alive,
    /// No live process has that pid (none at all, or only the leader's zombie).
    Dead,
    /// A live process has that pid but started after the login: the pid was reused.
    Recycled,
}

/// The sessions of the USER_PROCESS records; `uid_of` resolves user names. One session
/// per leader pid: the first record wins.
///
/// `leader` says what became of a record's pid, given the login time. A record whose
/// leader is [`Leader::Alive`] is a [`SessionState::LoggedIn`] session. A record whose
/// leader is [`Leader::Dead`] is a [`SessionState::Disconnected`] session (leader `None`)
/// when its session still has processes of the record's user: `live_sessions` gets every
/// such (session id, uid) pair at once, and only when there is at least one, and returns
/// the pairs that still have a live process. Any other record is stale and left out.
pub fn sessions(
    records: &[Record],
    leader: impl Fn(u32, i64) -> Leader,
    uid_of: impl Fn(&str) -> Option<u32>,
    live_sessions: impl FnOnce(&[(u32, u32)]) -> Vec<(u32, u32)>,
) -> Vec<Session> {
    let mut seen: Vec<u32> = Vec::new();
    // The sessions in record order; a dead leader's waits for `live_sessions`.
    let mut out: Vec<(Session, Option<(u32, u32)>)> = Vec::new();
    for r in records {
        let Ok(pid) = u32::try_from(r.pid) else {
            continue;
        };
        if r.kind != USER_PROCESS || pid == 0 || r.user.is_empty() || seen.contains(&pid) {
            continue;
        }
        seen.push(pid);
        let uid = uid_of(&r.user);
        let (state, leader_pid, pending) = match (leader(pid, i64::from(r.tv_sec)), uid) {
            (Leader::Alive, _) => (SessionState::LoggedIn, Some(pid), None),
            (Leader::Dead, Some(uid)) => (SessionState::Disconnected, None, Some((pid, uid))),
            _ => continue,
        };
        let session = Session {
            id: session_id(pid),
            user: r.user.clone(),
            domain: None,
            uid,
            sid: None,
            station: (!r.line.is_empty()).then(|| r.line.clone()),
            state,
            remote_host: (!r.host.is_empty()).then(|| r.host.clone()),
            logon_time: Some(i64::from(r.tv_sec)),
            idle_seconds: None,
            // utmp has no idle time.
            idle_source: crate::idle::IdleSource::Unknown,
            class: None,
            kind: None,
            leader: leader_pid,
        };
        out.push((session, pending));
    }
    let pending: Vec<(u32, u32)> = out.iter().filter_map(|(_, p)| *p).collect();
    let live = if pending.is_empty() { Vec::new() } else { live_sessions(&pending) };
    out.into_iter().filter(|(_, p)| p.is_none_or(|p| live.contains(&p))).map(|(s, _)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: i16, pid: i32, user: &str, line: &str, host: &str) -> Record {
        Record {
            kind,
            pid,
            line: line.into(),
            id: "ts/1".into(),
            user: user.into(),
            host: host.into(),
            session: 3,
            tv_sec: 1_700_000_000,
            tv_usec: 5,
            addr_v6: [1; 16],
        }
    }

    #[test]
    fn layout_offsets_match_glibc() {
        let r = rec(USER_PROCESS, 0x0102_0304, "alice", "pts/1", "10.0.0.1");
        let b = encode(&r);
        assert_eq!(b.len(), 384);
        assert_eq!(&b[0..2], &7i16.to_ne_bytes());
        assert_eq!(&b[4..8], &0x0102_0304i32.to_ne_bytes());
        assert_eq!(&b[8..13], b"pts/1");
        assert_eq!(&b[44..49], b"alice");
        assert_eq!(&b[76..84], b"10.0.0.1");
        assert_eq!(&b[340..344], &1_700_000_000i32.to_ne_bytes());
        assert_eq!(decode(&b), Some(r));
    }

    #[test]
    fn full_width_fields_without_nul_decode() {
        let long = "u".repeat(40);
        let b = encode(&rec(USER_PROCESS, 9, &long, &"l".repeat(32), &"h".repeat(300)));
        let r = decode(&b).unwrap();
        assert_eq!(r.user, "u".repeat(32));
        assert_eq!(r.line, "l".repeat(32));
        assert_eq!(r.host, "h".repeat(256));
    }

    #[test]
    fn sessions_keep_live_user_processes_only() {
        let records = vec![
            rec(2, 0, "reboot", "~", ""),
            rec(USER_PROCESS, 100, "alice", "pts/1", "host.example"),
            rec(USER_PROCESS, 100, "alice", "pts/1", "dup"),
            rec(USER_PROCESS, 200, "bob", "tty1", ""),
            rec(DEAD_PROCESS, 300, "carol", "pts/2", ""),
            rec(USER_PROCESS, 400, "dave", "pts/3", ""),
            rec(USER_PROCESS, -5, "eve", "pts/4", ""),
        ];
        let bytes: Vec<u8> = records.iter().flat_map(encode).collect();
        let parsed = parse(&bytes);
        assert_eq!(parsed, records);
        let leader = |pid, _| if pid == 400 { Leader::Dead } else { Leader::Alive };
        let s = sessions(&parsed, leader, |u| (u == "alice").then_some(1001), |_| Vec::new());
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].id, "utmp:100");
        assert_eq!(s[0].uid, Some(1001));
        assert_eq!(s[0].remote_host.as_deref(), Some("host.example"));
        assert_eq!(s[0].station.as_deref(), Some("pts/1"));
        assert_eq!(s[0].state, SessionState::LoggedIn);
        assert_eq!(s[0].leader, Some(100));
        assert_eq!(s[0].logon_time, Some(1_700_000_000));
        assert_eq!(s[1].user, "bob");
        assert_eq!(s[1].uid, None);
        assert_eq!(s[1].remote_host, None);
        assert_eq!(leader_of("utmp:100"), Some(100));
        assert_eq!(leader_of("c2"), None);
    }

    #[test]
    fn dead_leaders_with_live_sessions_are_disconnected() {
        let records = vec![
            rec(USER_PROCESS, 100, "alice", "pts/1", "host.example"),
            // Leader dead, its session still has alice's processes.
            rec(USER_PROCESS, 200, "alice", "pts/2", "192.0.2.1"),
            // Leader dead, nothing left in its session: a stale record.
            rec(USER_PROCESS, 300, "alice", "pts/3", ""),
            // Leader dead and its user unknown: whose processes would count is unknown.
            rec(USER_PROCESS, 400, "ghost", "pts/4", ""),
            // The pid now names a younger process: never a disconnected session.
            rec(USER_PROCESS, 500, "alice", "pts/5", ""),
            // A logout record of a dead leader is no session either.
            rec(DEAD_PROCESS, 600, "alice", "pts/6", ""),
        ];
        let leader = |pid| match pid {
            100 => Leader::Alive,
            500 => Leader::Recycled,
            _ => Leader::Dead,
        };
        let asked = std::cell::RefCell::new(Vec::new());
        let s = sessions(
            &records,
            |pid, _| leader(pid),
            |u| (u == "alice").then_some(1001),
            |pending| {
                asked.borrow_mut().extend_from_slice(pending);
                // Session 300 has only another user's processes left.
                vec![(200, 1001), (300, 1002)]
            },
        );
        assert_eq!(*asked.borrow(), [(200, 1001), (300, 1001)]);
        let got: Vec<(&str, SessionState, Option<u32>)> =
            s.iter().map(|s| (s.id.as_str(), s.state, s.leader)).collect();
        assert_eq!(
            got,
            [("utmp:100", SessionState::LoggedIn, Some(100)), ("utmp:200", SessionState::Disconnected, None)]
        );
        assert_eq!(s[1].uid, Some(1001));
        assert_eq!(s[1].station.as_deref(), Some("pts/2"));
        assert_eq!(s[1].remote_host.as_deref(), Some("192.0.2.1"));
        assert_eq!(s[1].logon_time, Some(1_700_000_000));

        // Only live leaders: the session scan is never asked for.
        let s = sessions(&records[..1], |_, _| Leader::Alive, |_| Some(1001), |_| panic!("scanned for nothing"));
        assert_eq!(s.len(), 1);
        let s = sessions(&records, |_, _| Leader::Recycled, |_| Some(1001), |_| panic!("scanned for nothing"));
        assert!(s.is_empty());
    }

    #[test]
    fn only_a_regular_file_that_root_alone_can_write_is_trusted() {
        assert_eq!(untrusted(None, 0, 0o100644), None);
        assert_eq!(untrusted(None, 0, 0o100600), None);
        assert_eq!(untrusted(None, 0, 0o100444), None);
        let refused: &[(Option<&str>, u32, u32, &str)] = &[
            (None, 1000, 0o100644, "owned by uid 1000, not root"),
            (None, 0, 0o100664, "writable by its group or others (mode 0664)"),
            (None, 0, 0o100646, "writable by its group or others (mode 0646)"),
            (None, 0, 0o102666, "(mode 2666)"),
            (Some("a FIFO"), 0, 0o010644, "it is a FIFO, not a regular file"),
            (Some("a directory"), 0, 0o040755, "it is a directory"),
            (Some("a device"), 0, 0o020666, "it is a device"),
        ];
        for (kind, uid, mode, want) in refused {
            let why = untrusted(*kind, *uid, *mode).unwrap_or_else(|| panic!("{kind:?} {uid} {mode:o} trusted"));
            assert!(why.contains(want), "{why}");
            assert!(why.contains("without --utmp"), "{why}");
        }
    }

    #[test]
    fn truncated_and_garbage_input_never_panics() {
        let good = encode(&rec(USER_PROCESS, 1, "a", "b", "c"));
        for len in 0..good.len() {
            assert!(parse(&good[..len]).is_empty());
        }
        assert_eq!(parse(&[&good[..], &good[..100]].concat()).len(), 1);
        // Pseudo-random bytes, including invalid UTF-8 and no NULs.
        let mut x: u32 = 12345;
        let garbage: Vec<u8> = (0..RECORD_SIZE * 7 + 13)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let parsed = parse(&garbage);
        assert_eq!(parsed.len(), 7);
        let _ = sessions(&parsed, |_, _| Leader::Alive, |_| None, |_| Vec::new());
        let _ = sessions(&parsed, |_, _| Leader::Dead, |_| Some(1), |p| p.to_vec());
        assert!(decode(&garbage[..10]).is_none());
    }
}

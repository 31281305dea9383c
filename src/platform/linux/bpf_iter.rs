//! Every process's uids in one pass: a BPF task iterator (`iter/task`, Linux 5.8 and later).
//!
//! Reading `/proc/PID/status` costs about 10 µs per process, because the kernel formats
//! some forty lines for each; with 10,000 processes that is over 100 ms even on two CPUs.
//! The real and saved uids exist nowhere cheaper in /proc (the owner of `/proc/PID` is the
//! effective uid only, and root for a non-dumpable process). A task iterator runs a tiny
//! program inside the kernel on every task and hands back fixed-size binary records:
//! about 1 µs per process.
//!
//! The program is assembled here, by hand, from member offsets read out of the running
//! kernel's BTF ([`super::btf`]), since `task_struct`'s layout differs from one kernel build
//! to the next. It only reads: every load is checked by the verifier against BTF, and a
//! faulting load yields zero instead of a crash. It needs root (`CAP_BPF`); it is refused
//! inside most containers. Any failure, at load time or later, makes the caller fall back
//! to the /proc scan, which gives the same answers, only slower.
//!
//! Records are read only when the tool runs in the initial pid and user namespaces, where
//! the kernel's pid and uid values are the ones /proc and `kill` use.

use std::collections::HashSet;
use std::io::{self, Read};

use super::btf::Btf;
use super::passwd::Passwd;
use super::procfs::{self, ProcFs};
use super::sys;
use crate::model::Process;

/// The fixed inode numbers of the initial pid and user namespaces
/// (`PROC_PID_INIT_INO`, `PROC_USER_INIT_INO`).
const INIT_PID_NS: u64 = 0xEFFF_FFFC;
const INIT_USER_NS: u64 = 0xEFFF_FFFD;

/// `bpf_seq_write`, the helper that appends bytes to the iterator's output.
const HELPER_SEQ_WRITE: i32 = 127;

/// One record as the program writes it.
const RECORD: usize = 56;
mod at {
    pub const TGID: i16 = 0;
    pub const STATE: i16 = 4;
    pub const EXIT_STATE: i16 = 8;
    /// `signal->live`: the threads of the process still running.
    pub const LIVE: i16 = 12;
    /// Bytes 16..24, once the start time, unused: written as zeros.
    pub const UNUSED: i16 = 16;
    pub const UIDS: i16 = 24;
    pub const COMM: i16 = 40;
}

/// One process (thread group leader), as the iterator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The process id (the leader's thread id).
    pub pid: u32,
    /// Real, effective, saved and filesystem uid.
    pub uids: [u32; 4],
    /// The state letter, as `/proc/PID/status` would show it.
    pub state: char,
    /// Threads of the process that have not exited (`signal->live`).
    pub live_threads: u32,
    /// The comm (at most 15 bytes).
    pub name: String,
}

impl Task {
    /// A zombie (or a dead task): it has exited and only waits to be reaped. A main thread
    /// that exited while other threads run shows `Z` too, but the process is alive.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X') && self.live_threads == 0
    }

    /// Whether the real, effective or saved uid is `uid`.
    pub fn is_owned_by(&self, uid: u32) -> bool {
        self.uids[..3].contains(&uid)
    }
}

/// The `task_struct` and `cred` member offsets the program reads, from BTF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The BTF id of `bpf_iter_task`, the attach point.
    pub attach_btf_id: u32,
    pub pid: Field,
    pub tgid: Field,
    pub state: Field,
    pub exit_state: Field,
    pub real_cred: Field,
    pub comm: Field,
    /// `task_struct.signal` and `signal_struct.live.counter`.
    pub signal: Field,
    pub live: Field,
    /// `uid`, `euid`, `suid`, `fsuid` of `struct cred`.
    pub cred_uids: [Field; 4],
}

/// Offset and size of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub offset: i16,
    pub size: u8,
}

fn field(btf: &Btf, id: u32, path: &[&str], sizes: &[u32]) -> io::Result<Field> {
    let missing = || io::Error::new(io::ErrorKind::Unsupported, format!("BTF lacks a usable {}", path.join(".")));
    let m = btf.member_path(id, path).ok_or_else(missing)?;
    if !sizes.contains(&m.size) {
        return Err(missing());
    }
    Ok(Field { offset: i16::try_from(m.offset).map_err(|_| missing())?, size: m.size as u8 })
}

impl Layout {
    /// Reads the layout from `btf`.
    ///
    /// # Errors
    ///
    /// `Unsupported` when a type or member is missing or not of the expected size.
    pub fn from_btf(btf: &Btf) -> io::Result<Layout> {
        let unsupported = |what: &str| io::Error::new(io::ErrorKind::Unsupported, format!("BTF lacks {what}"));
        let task = btf.find_struct("task_struct").ok_or_else(|| unsupported("struct task_struct"))?;
        let cred = btf.find_struct("cred").ok_or_else(|| unsupported("struct cred"))?;
        let signal_struct = btf.find_struct("signal_struct").ok_or_else(|| unsupported("struct signal_struct"))?;
        let attach_btf_id = btf.find_func("bpf_iter_task").ok_or_else(|| unsupported("bpf_iter_task"))?;
        // `__state` since Linux 5.14, `state` (a long) before.
        let state = field(btf, task, &["__state"], &[4]).or_else(|_| field(btf, task, &["state"], &[8]))?;
        let comm = field(btf, task, &["comm"], &[16])?;
        let comm_member = btf.member(task, "comm").ok_or_else(|| unsupported("task_struct.comm"))?;
        if btf.array_of(comm_member.type_id).is_none_or(|(elem, _)| btf.size_of(elem) != Some(1)) {
            return Err(unsupported("task_struct.comm as a char array"));
        }
        let uid = |name: &str| field(btf, cred, &[name, "val"], &[4]);
        Ok(Layout {
            attach_btf_id,
            pid: field(btf, task, &["pid"], &[4])?,
            tgid: field(btf, task, &["tgid"], &[4])?,
            state,
            exit_state: field(btf, task, &["exit_state"], &[4])?,
            real_cred: field(btf, task, &["real_cred"], &[8])?,
            comm,
            signal: field(btf, task, &["signal"], &[8])?,
            live: field(btf, signal_struct, &["live", "counter"], &[4])?,
            cred_uids: [uid("uid")?, uid("euid")?, uid("suid")?, uid("fsuid")?],
        })
    }
}

/// A BPF instruction (`struct bpf_insn`, little-endian layout).
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code) | u64::from(dst | (src << 4)) << 8 | u64::from(off as u16) << 16 | u64::from(imm as u32) << 32
}

/// The size bits of a load or store of `bytes`.
fn size_bits(bytes: u8) -> u8 {
    match bytes {
        1 => 0x10,
        2 => 0x08,
        4 => 0x00,
        _ => 0x18,
    }
}

fn load(dst: u8, src: u8, f: Field) -> u64 {
    insn(0x61 | size_bits(f.size), dst, src, f.offset, 0)
}

/// Stores register `src` at `off` in the record on the stack (`r10 - RECORD + off`).
fn store(bytes: u8, src: u8, off: i16) -> u64 {
    insn(0x63 | size_bits(bytes), 10, src, off - RECORD as i16, 0)
}

/// Assembles the program: for each thread group leader, one record of `RECORD` bytes.
pub fn program(l: &Layout) -> Vec<u64> {
    const DW: Field = Field { offset: 0, size: 8 };
    let mut p = Vec::with_capacity(64);
    // Jumps to the final `r0 = 0; exit`, patched once its position is known.
    let mut to_exit = Vec::new();
    p.push(load(6, 1, DW)); // r6 = ctx->meta
    p.push(load(7, 1, Field { offset: 8, size: 8 })); // r7 = ctx->task
    to_exit.push(p.len());
    p.push(insn(0x15, 7, 0, 0, 0)); // if r7 == 0 goto exit (end of iteration)
    p.push(load(2, 7, l.pid));
    p.push(load(3, 7, l.tgid));
    to_exit.push(p.len());
    p.push(insn(0x5d, 2, 3, 0, 0)); // if pid != tgid goto exit: a thread, not a process
    p.push(store(4, 3, at::TGID));
    for (f, slot) in [(l.state, at::STATE), (l.exit_state, at::EXIT_STATE)] {
        p.push(load(2, 7, f));
        p.push(store(4, 2, slot));
    }
    // Live threads: 0 unless task->signal says otherwise (the helper may only read
    // initialised stack bytes).
    p.push(insn(0x62, 10, 0, at::LIVE - RECORD as i16, 0));
    p.push(load(9, 7, l.signal)); // r9 = task->signal
    p.push(insn(0x15, 9, 0, 2, 0)); // if r9 == 0 skip the next two
    p.push(load(2, 9, l.live));
    p.push(store(4, 2, at::LIVE));
    p.push(insn(0x7a, 10, 0, at::UNUSED - RECORD as i16, 0)); // the helper reads all of the record
    for i in 0..16 {
        p.push(load(2, 7, Field { offset: l.comm.offset + i, size: 1 }));
        p.push(store(1, 2, at::COMM + i));
    }
    p.push(load(8, 7, l.real_cred)); // r8 = task->real_cred
    to_exit.push(p.len());
    p.push(insn(0x15, 8, 0, 0, 0)); // if r8 == 0 goto exit
    for (i, f) in l.cred_uids.iter().enumerate() {
        p.push(load(2, 8, *f));
        p.push(store(4, 2, at::UIDS + 4 * i as i16));
    }
    p.push(load(1, 6, DW)); // r1 = meta->seq
    p.push(insn(0xbf, 2, 10, 0, 0)); // r2 = r10
    p.push(insn(0x07, 2, 0, 0, -(RECORD as i32))); // r2 -= RECORD
    p.push(insn(0xb7, 3, 0, 0, RECORD as i32)); // r3 = RECORD
    p.push(insn(0x85, 0, 0, 0, HELPER_SEQ_WRITE));
    let exit = p.len();
    p.push(insn(0xb7, 0, 0, 0, 0)); // r0 = 0
    p.push(insn(0x95, 0, 0, 0, 0)); // exit
    for j in to_exit {
        let off = (exit - j - 1) as i16;
        p[j] |= u64::from(off as u16) << 16;
    }
    p
}

fn u32_at(rec: &[u8], off: i16) -> u32 {
    let at = off as usize;
    u32::from_ne_bytes(rec[at..at + 4].try_into().expect("4 bytes"))
}

/// The state letter `/proc` shows for `state | exit_state` (`task_state_index`).
pub fn state_letter(state: u32, exit_state: u32) -> char {
    const TASK_REPORT: u32 = 0x7f;
    const TASK_IDLE: u32 = 0x0402;
    if state == TASK_IDLE {
        return 'I';
    }
    let bits = (state | exit_state) & TASK_REPORT;
    let index = (u32::BITS - bits.leading_zeros()) as usize;
    ['R', 'S', 'D', 'T', 't', 'X', 'Z', 'P'][index]
}

/// Decodes the records the program wrote. A trailing partial record is ignored.
pub fn decode(bytes: &[u8]) -> Vec<Task> {
    bytes
        .chunks_exact(RECORD)
        .map(|rec| {
            let comm = &rec[at::COMM as usize..at::COMM as usize + 16];
            let name = comm.split(|&b| b == 0).next().unwrap_or_default();
            Task {
                pid: u32_at(rec, at::TGID),
                uids: std::array::from_fn(|i| u32_at(rec, at::UIDS + 4 * i as i16)),
                state: state_letter(u32_at(rec, at::STATE), u32_at(rec, at::EXIT_STATE)),
                live_threads: u32_at(rec, at::LIVE),
                name: String::from_utf8_lossy(name).into_owned(),
            }
        })
        .collect()
}

/// A loaded task iterator; each [`TaskIter::tasks`] call is one fresh pass.
#[derive(Debug)]
pub struct TaskIter {
    link: std::os::fd::OwnedFd,
}

impl TaskIter {
    /// Loads the program, when this kernel, these privileges and these namespaces allow.
    ///
    /// # Errors
    ///
    /// `Unsupported` outside the initial namespaces, on a big-endian machine, or without
    /// BTF; `PermissionDenied` without `CAP_BPF`; `InvalidInput` with the verifier's log
    /// when it refuses the program.
    pub fn open() -> io::Result<TaskIter> {
        if cfg!(target_endian = "big") {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "big-endian BPF is not assembled here"));
        }
        if sys::namespace_inodes()? != (INIT_PID_NS, INIT_USER_NS) {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "not in the initial pid and user namespaces"));
        }
        let layout = Layout::from_btf(&Btf::load_vmlinux()?)?;
        let insns = program(&layout);
        let link = match sys::bpf_task_iter_link(&insns, layout.attach_btf_id, &mut []) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::EACCES) => {
                // Load again with a log, to say why.
                let mut log = vec![0u8; 64 * 1024];
                let retry = sys::bpf_task_iter_link(&insns, layout.attach_btf_id, &mut log);
                let text = String::from_utf8_lossy(log.split(|&b| b == 0).next().unwrap_or_default()).into_owned();
                retry.map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("verifier: {e}: {text}")))?
            }
            other => other?,
        };
        Ok(TaskIter { link })
    }

    /// Every process (thread group leader) on the machine, kernel threads included.
    ///
    /// # Errors
    ///
    /// When the iterator cannot be started or read.
    pub fn tasks(&self) -> io::Result<Vec<Task>> {
        let mut file = sys::bpf_iter_open(&self.link)?;
        let mut bytes = Vec::with_capacity(1 << 20);
        file.read_to_end(&mut bytes)?;
        Ok(decode(&bytes))
    }
}

impl TaskIter {
    /// Every process [`TaskIter::tasks`] reports, plus any of `pids` (what `/proc` listed,
    /// [`ProcFs::pids`]) that the iterator did not show, read from their `status` and
    /// `stat` one by one.
    ///
    /// `/proc` stays the reference for which processes exist: a kernel may hide a task
    /// from iterators (here, the sandbox's PID 1 is hidden), and then this costs one
    /// directory read more than the iterator alone.
    ///
    /// # Errors
    ///
    /// When the iterator cannot be read.
    pub fn scan(&self, procfs: &ProcFs, pids: &[u32]) -> io::Result<Vec<Task>> {
        let mut tasks = self.tasks()?;
        let seen: HashSet<u32> = tasks.iter().map(|t| t.pid).collect();
        for &pid in pids.iter().filter(|pid| !seen.contains(pid)) {
            let Some(st) = procfs.status(pid) else {
                continue; // gone meanwhile
            };
            tasks.push(Task {
                pid,
                uids: st.uids,
                state: st.state,
                live_threads: if st.is_dead() { 0 } else { st.threads.max(1) },
                name: st.name,
            });
        }
        Ok(tasks)
    }

    /// Every process, as the model has it (see [`TaskIter::scan`]).
    ///
    /// # Errors
    ///
    /// As [`TaskIter::scan`].
    pub fn list_processes(&self, procfs: &ProcFs, pids: &[u32], passwd: &Passwd) -> io::Result<Vec<Process>> {
        let mut out: Vec<Process> = self
            .scan(procfs, pids)?
            .into_iter()
            .map(|t| {
                let dead = t.is_dead();
                procfs::process(t.pid, t.uids, (t.state, dead), t.name, passwd)
            })
            .collect();
        out.sort_by_key(|p| p.pid);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::linux::btf::tests::Builder;

    fn fake_layout_btf() -> Vec<u8> {
        crate::platform::linux::btf::tests::sample()
    }

    #[test]
    fn reads_the_layout_from_btf() {
        let l = Layout::from_btf(&Btf::parse(fake_layout_btf()).unwrap()).unwrap();
        assert_eq!(l.state, Field { offset: 24, size: 4 });
        assert_eq!(l.tgid, Field { offset: 1284, size: 4 });
        assert_eq!(l.comm, Field { offset: 2016, size: 16 });
        assert_eq!(l.cred_uids.map(|f| f.offset), [4, 20, 12, 28]);
    }

    #[test]
    fn a_missing_member_is_unsupported() {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        b.record("task_struct", false, 8, &[("pid", int, 0)]);
        b.record("cred", false, 8, &[]);
        b.func("bpf_iter_task");
        let err = Layout::from_btf(&Btf::parse(b.build()).unwrap()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    }

    #[test]
    fn the_program_jumps_land_on_the_exit() {
        let l = Layout::from_btf(&Btf::parse(fake_layout_btf()).unwrap()).unwrap();
        let p = program(&l);
        let exit = p.len() - 2;
        assert_eq!(p[exit + 1] & 0xff, 0x95);
        let (mut to_exit, mut local) = (0, 0);
        for (i, ins) in p.iter().enumerate() {
            let code = (ins & 0xff) as u8;
            if code == 0x15 || code == 0x5d {
                let off = ((ins >> 16) & 0xffff) as u16 as i16;
                let target = i as i64 + 1 + i64::from(off);
                if target == exit as i64 {
                    to_exit += 1;
                } else {
                    // The null check of task->signal skips its two instructions only.
                    assert_eq!((off, target < exit as i64), (2, true), "jump at {i}");
                    local += 1;
                }
            }
        }
        assert_eq!((to_exit, local), (3, 1));
        // Every store into the record stays inside it.
        for ins in &p {
            if (ins & 0x07) as u8 == 0x03 {
                let off = ((ins >> 16) & 0xffff) as u16 as i16;
                assert!((-(RECORD as i16)..0).contains(&off), "store at {off}");
            }
        }
    }

    fn record(
        tgid: u32,
        (state, exit_state, live): (u32, u32, u32),
        start: u64,
        uids: [u32; 4],
        comm: &[u8],
    ) -> Vec<u8> {
        let mut r = Vec::new();
        for w in [tgid, state, exit_state, live] {
            r.extend_from_slice(&w.to_ne_bytes());
        }
        r.extend_from_slice(&start.to_ne_bytes());
        for u in uids {
            r.extend_from_slice(&u.to_ne_bytes());
        }
        let mut c = [0u8; 16];
        c[..comm.len()].copy_from_slice(comm);
        r.extend_from_slice(&c);
        r
    }

    #[test]
    fn decodes_records() {
        let mut bytes = record(42, (1, 0, 1), 5_000_000_000, [1000, 0, 1000, 0], b"bash");
        bytes.extend(record(43, (0, 32, 0), 7, [1001; 4], b"fifteen-bytes-x"));
        bytes.extend(record(2, (0x402, 0, 1), 1, [0; 4], b"kthreadd"));
        // A main thread that exited while two other threads run: Z, but alive.
        bytes.extend(record(44, (0, 32, 2), 9, [1001; 4], b"python3"));
        bytes.extend_from_slice(&[1, 2, 3]); // a partial record
        let tasks = decode(&bytes);
        assert_eq!(tasks.len(), 4);
        assert_eq!((tasks[3].state, tasks[3].live_threads, tasks[3].is_dead()), ('Z', 2, false));
        assert_eq!(
            tasks[0],
            Task { pid: 42, uids: [1000, 0, 1000, 0], state: 'S', live_threads: 1, name: "bash".into() }
        );
        assert!(tasks[0].is_owned_by(0) && tasks[0].is_owned_by(1000) && !tasks[0].is_owned_by(1001));
        assert!(tasks[1].is_dead());
        assert_eq!(tasks[1].name, "fifteen-bytes-x");
        assert_eq!((tasks[2].pid, tasks[2].state), (2, 'I'));
    }

    #[test]
    fn state_letters_follow_the_kernel_table() {
        let table = [(0, 0, 'R'), (1, 0, 'S'), (2, 0, 'D'), (4, 0, 'T'), (8, 0, 't'), (0, 16, 'X'), (0, 32, 'Z')];
        for (state, exit, letter) in table {
            assert_eq!(state_letter(state, exit), letter, "{state:#x}/{exit:#x}");
        }
        assert_eq!(state_letter(0x402, 0), 'I');
        // A task killed while in D keeps the exit state's letter.
        assert_eq!(state_letter(2, 32), 'Z');
        // TASK_WAKEKILL (0x80) and other high bits are not reported.
        assert_eq!(state_letter(0x82, 0), 'D');
    }
}

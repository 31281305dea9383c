//! A reader of the kernel's BTF (`/sys/kernel/btf/vmlinux`): just enough to find a
//! function's type id and the byte offset and size of a struct member, which the task
//! iterator program ([`super::bpf_iter`]) needs because `task_struct`'s layout differs
//! between kernel builds.
//!
//! The format is `include/uapi/linux/btf.h`: a header, then a type section of variable-size
//! records (type id = position, starting at 1), then a string section. Nothing here trusts
//! the input: every read is bounds-checked, and a malformed file gives `None` or an error,
//! never a panic.

use std::io;

/// Where the running kernel publishes its own BTF.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xEB9F;
const TYPE_HEADER: usize = 12;

/// The kinds this reader follows (`BTF_KIND_*`).
mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

/// A struct member found by [`Btf::member`]: where it is, how big, and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Byte offset from the start of the outermost struct.
    pub offset: u32,
    /// Size in bytes of the member's type.
    pub size: u32,
    /// The member's type id, with typedefs and qualifiers resolved.
    pub type_id: u32,
}

/// Parsed BTF: the raw bytes and where each type record starts.
#[derive(Debug)]
pub struct Btf {
    data: Vec<u8>,
    /// Byte offset in `data` of each type record; index 0 is the void type (unused).
    types: Vec<usize>,
    strings: std::ops::Range<usize>,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed BTF: {what}"))
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// How many bytes follow the 12-byte header of a type record of `kind` with `vlen` items.
fn trailer_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        kind::INT | kind::VAR | kind::DECL_TAG => 4,
        kind::ARRAY => 12,
        kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * vlen,
        kind::ENUM | kind::FUNC_PROTO => 8 * vlen,
        kind::PTR
        | kind::FWD
        | kind::TYPEDEF
        | kind::VOLATILE
        | kind::CONST
        | kind::RESTRICT
        | kind::FUNC
        | kind::FLOAT
        | kind::TYPE_TAG => 0,
        _ => return None,
    })
}

impl Btf {
    /// Reads and parses the running kernel's BTF.
    ///
    /// # Errors
    ///
    /// Fails when the file is missing (a kernel without `CONFIG_DEBUG_INFO_BTF`) or malformed.
    pub fn load_vmlinux() -> io::Result<Btf> {
        Btf::parse(std::fs::read(VMLINUX)?)
    }

    /// Parses a BTF blob (little-endian, as every kernel this tool runs on writes it).
    ///
    /// # Errors
    ///
    /// Fails on a bad magic, a section outside the blob, or an unknown type kind.
    pub fn parse(data: Vec<u8>) -> io::Result<Btf> {
        if u16_at(&data, 0) != Some(MAGIC) {
            return Err(invalid("bad magic (or a big-endian blob)"));
        }
        let field = |at| u32_at(&data, at).map(|v| v as usize).ok_or_else(|| invalid("short header"));
        let hdr_len = field(4)?;
        let (type_off, type_len, str_off, str_len) = (field(8)?, field(12)?, field(16)?, field(20)?);
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off).ok_or_else(|| invalid("section offset"))?;
            let end = start.checked_add(len).filter(|&e| e <= data.len()).ok_or_else(|| invalid("section bounds"))?;
            Ok::<_, io::Error>(start..end)
        };
        let type_range = section(type_off, type_len)?;
        let strings = section(str_off, str_len)?;
        let mut types = Vec::with_capacity(type_len / 16);
        types.push(0);
        let mut at = type_range.start;
        while at < type_range.end {
            let info = u32_at(&data, at + 4).ok_or_else(|| invalid("truncated type"))?;
            let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
            let len = TYPE_HEADER + trailer_len(kind, vlen).ok_or_else(|| invalid("unknown type kind"))?;
            if at + len > type_range.end {
                return Err(invalid("type record runs past its section"));
            }
            types.push(at);
            at += len;
        }
        Ok(Btf { data, types, strings })
    }

    /// The number of types, the void type included.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether there is no type but void.
    pub fn is_empty(&self) -> bool {
        self.types.len() <= 1
    }

    fn name(&self, name_off: u32) -> &[u8] {
        let start = self.strings.start.saturating_add(name_off as usize);
        let tail = self.data.get(start..self.strings.end).unwrap_or_default();
        tail.split(|&b| b == 0).next().unwrap_or_default()
    }

    /// (name offset, info, size-or-type) of type `id`.
    fn header(&self, id: u32) -> Option<(u32, u32, u32)> {
        let at = *self.types.get(id as usize).filter(|_| id != 0)?;
        Some((u32_at(&self.data, at)?, u32_at(&self.data, at + 4)?, u32_at(&self.data, at + 8)?))
    }

    fn kind_of(info: u32) -> u32 {
        (info >> 24) & 0x1f
    }

    /// The id of the first type of `kind` named `name` (`kind` is a `BTF_KIND_*` value).
    pub fn find(&self, wanted_kind: u32, name: &str) -> Option<u32> {
        (1..self.types.len() as u32).find(|&id| {
            self.header(id).is_some_and(|(name_off, info, _)| {
                Self::kind_of(info) == wanted_kind && self.name(name_off) == name.as_bytes()
            })
        })
    }

    /// The id of the function named `name`.
    pub fn find_func(&self, name: &str) -> Option<u32> {
        self.find(kind::FUNC, name)
    }

    /// The id of the struct named `name`.
    pub fn find_struct(&self, name: &str) -> Option<u32> {
        self.find(kind::STRUCT, name)
    }

    /// `id` with typedefs, qualifiers and type tags peeled off.
    fn resolve(&self, mut id: u32) -> Option<u32> {
        for _ in 0..32 {
            let (_, info, next) = self.header(id)?;
            match Self::kind_of(info) {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => id = next,
                _ => return Some(id),
            }
        }
        None
    }

    /// The size in bytes of type `id`.
    pub fn size_of(&self, id: u32) -> Option<u32> {
        self.size_in(id, 0)
    }

    /// `size_of`, giving up on arrays nested deeper than any C type (or cyclic ones).
    fn size_in(&self, id: u32, depth: u32) -> Option<u32> {
        let id = self.resolve(id)?;
        let (_, info, size) = self.header(id)?;
        match Self::kind_of(info) {
            kind::INT | kind::STRUCT | kind::UNION | kind::ENUM | kind::ENUM64 | kind::FLOAT => Some(size),
            kind::PTR => Some(8),
            kind::ARRAY if depth < 16 => {
                let at = self.types[id as usize] + TYPE_HEADER;
                let (elem, nelems) = (u32_at(&self.data, at)?, u32_at(&self.data, at + 8)?);
                self.size_in(elem, depth + 1)?.checked_mul(nelems)
            }
            _ => None,
        }
    }

    /// The element type and element count of array type `id`.
    pub fn array_of(&self, id: u32) -> Option<(u32, u32)> {
        let id = self.resolve(id)?;
        let (_, info, _) = self.header(id)?;
        if Self::kind_of(info) != kind::ARRAY {
            return None;
        }
        let at = self.types[id as usize] + TYPE_HEADER;
        Some((self.resolve(u32_at(&self.data, at)?)?, u32_at(&self.data, at + 8)?))
    }

    /// The member `name` of struct or union `id`, looking into anonymous struct and union
    /// members as C does. `None` when absent or when it is a bitfield.
    pub fn member(&self, id: u32, name: &str) -> Option<Member> {
        self.member_in(id, name, 0, 0)
    }

    fn member_in(&self, id: u32, name: &str, base: u32, depth: u32) -> Option<Member> {
        let id = self.resolve(id)?;
        let (_, info, _) = self.header(id)?;
        let k = Self::kind_of(info);
        if (k != kind::STRUCT && k != kind::UNION) || depth > 8 {
            return None;
        }
        let bitfields = info & 0x8000_0000 != 0;
        let start = self.types[id as usize] + TYPE_HEADER;
        for i in 0..(info & 0xffff) as usize {
            let at = start + 12 * i;
            let (name_off, ty, raw) =
                (u32_at(&self.data, at)?, u32_at(&self.data, at + 4)?, u32_at(&self.data, at + 8)?);
            let (bit_offset, bit_size) = if bitfields { (raw & 0xff_ffff, raw >> 24) } else { (raw, 0) };
            let member_name = self.name(name_off);
            if member_name.is_empty() {
                if bit_offset % 8 == 0
                    && let Some(found) = self.member_in(ty, name, base.checked_add(bit_offset / 8)?, depth + 1)
                {
                    return Some(found);
                }
            } else if member_name == name.as_bytes() {
                if bit_size != 0 || bit_offset % 8 != 0 {
                    return None;
                }
                let type_id = self.resolve(ty)?;
                let offset = base.checked_add(bit_offset / 8)?;
                return Some(Member { offset, size: self.size_of(type_id)?, type_id });
            }
        }
        None
    }

    /// Follows a path of member names from struct `id` (`["uid", "val"]`), adding offsets.
    pub fn member_path(&self, id: u32, path: &[&str]) -> Option<Member> {
        let (first, rest) = path.split_first()?;
        let mut found = self.member(id, first)?;
        for name in rest {
            let inner = self.member(found.type_id, name)?;
            found = Member { offset: found.offset.checked_add(inner.offset)?, ..inner };
        }
        Some(found)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a BTF blob type by type, for tests here and in `bpf_iter`.
    #[derive(Default)]
    pub(crate) struct Builder {
        types: Vec<u8>,
        strings: Vec<u8>,
        next_id: u32,
    }

    impl Builder {
        pub(crate) fn new() -> Builder {
            Builder { types: Vec::new(), strings: vec![0], next_id: 1 }
        }

        fn string(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }

        fn push(&mut self, name: &str, kind: u32, vlen: u32, flag: bool, size_or_type: u32, tail: &[u32]) -> u32 {
            let name_off = self.string(name);
            let info = (kind << 24) | vlen | if flag { 0x8000_0000 } else { 0 };
            for word in [name_off, info, size_or_type].iter().chain(tail) {
                self.types.extend_from_slice(&word.to_le_bytes());
            }
            self.next_id += 1;
            self.next_id - 1
        }

        pub(crate) fn int(&mut self, name: &str, size: u32) -> u32 {
            self.push(name, kind::INT, 0, false, size, &[size * 8])
        }

        pub(crate) fn ptr(&mut self, to: u32) -> u32 {
            self.push("", kind::PTR, 0, false, to, &[])
        }

        pub(crate) fn typedef(&mut self, name: &str, to: u32) -> u32 {
            self.push(name, kind::TYPEDEF, 0, false, to, &[])
        }

        pub(crate) fn array(&mut self, elem: u32, n: u32) -> u32 {
            self.push("", kind::ARRAY, 0, false, 0, &[elem, elem, n])
        }

        pub(crate) fn func(&mut self, name: &str) -> u32 {
            let proto = self.push("", kind::FUNC_PROTO, 0, false, 0, &[]);
            self.push(name, kind::FUNC, 0, false, proto, &[])
        }

        /// A struct (or union) of `size` bytes with (name, type, byte offset) members.
        pub(crate) fn record(&mut self, name: &str, union: bool, size: u32, members: &[(&str, u32, u32)]) -> u32 {
            let mut tail = Vec::new();
            for &(m, ty, off) in members {
                tail.extend([self.string(m), ty, off * 8]);
            }
            let kind = if union { kind::UNION } else { kind::STRUCT };
            self.push(name, kind, members.len() as u32, false, size, &tail)
        }

        pub(crate) fn bitfield_struct(&mut self, name: &str, member: &str, ty: u32) -> u32 {
            let m = self.string(member);
            self.push(name, kind::STRUCT, 1, true, 4, &[m, ty, 3 << 24])
        }

        pub(crate) fn build(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&MAGIC.to_le_bytes());
            out.extend_from_slice(&[1, 0]);
            for word in [24u32, 0, self.types.len() as u32, self.types.len() as u32, self.strings.len() as u32] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    /// Writes the blob of [`finds_members_through_typedefs_and_anonymous_unions`] to
    /// `$LOGOFF_WRITE_BTF_SEED`, to seed the fuzz corpus.
    #[test]
    fn write_seed_when_asked() {
        let Some(path) = std::env::var_os("LOGOFF_WRITE_BTF_SEED") else { return };
        std::fs::write(path, sample()).unwrap();
    }

    /// A small BTF with the `task_struct` and `cred` members the task iterator reads.
    pub(crate) fn sample() -> Vec<u8> {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        let u64t = b.int("unsigned long long", 8);
        let chr = b.int("char", 1);
        let kuid = b.record("", false, 4, &[("val", int, 0)]);
        let kuid_t = b.typedef("kuid_t", kuid);
        let cred = b.record(
            "cred",
            false,
            40,
            &[("uid", kuid_t, 4), ("suid", kuid_t, 12), ("euid", kuid_t, 20), ("fsuid", kuid_t, 28)],
        );
        let cred_ptr = b.ptr(cred);
        let comm = b.array(chr, 16);
        let atomic = b.record("", false, 4, &[("counter", int, 0)]);
        let atomic_t = b.typedef("atomic_t", atomic);
        let signal = b.record("signal_struct", false, 64, &[("nr_threads", int, 4), ("live", atomic_t, 8)]);
        let signal_ptr = b.ptr(signal);
        b.record(
            "task_struct",
            false,
            4096,
            &[
                ("__state", int, 24),
                ("exit_state", int, 1200),
                ("pid", int, 1280),
                ("tgid", int, 1284),
                ("start_boottime", u64t, 1600),
                ("real_cred", cred_ptr, 2000),
                ("comm", comm, 2016),
                ("signal", signal_ptr, 2040),
            ],
        );
        b.func("bpf_iter_task");
        b.build()
    }

    #[test]
    fn finds_members_through_typedefs_and_anonymous_unions() {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        let u64t = b.int("unsigned long long", 8);
        let chr = b.int("char", 1);
        let kuid = b.record("", false, 4, &[("val", int, 0)]);
        let kuid_t = b.typedef("kuid_t", kuid);
        let cred = b.record("cred", false, 16, &[("usage", int, 0), ("uid", kuid_t, 4), ("euid", kuid_t, 8)]);
        let cred_ptr = b.ptr(cred);
        let comm = b.array(chr, 16);
        let anon = b.record("", true, 8, &[("start_boottime", u64t, 0), ("other", int, 0)]);
        let task = b.record(
            "task_struct",
            false,
            64,
            &[("pid", int, 0), ("tgid", int, 4), ("", anon, 8), ("real_cred", cred_ptr, 16), ("comm", comm, 24)],
        );
        let func = b.func("bpf_iter_task");
        let btf = Btf::parse(b.build()).unwrap();

        assert_eq!(btf.find_struct("task_struct"), Some(task));
        assert_eq!(btf.find_struct("nope"), None);
        assert_eq!(btf.find_func("bpf_iter_task"), Some(func));
        assert_eq!(btf.find_func("task_struct"), None, "the kind must match too");
        assert_eq!(btf.member(task, "tgid"), Some(Member { offset: 4, size: 4, type_id: int }));
        assert_eq!(btf.member(task, "start_boottime"), Some(Member { offset: 8, size: 8, type_id: u64t }));
        assert_eq!(btf.member(task, "real_cred").map(|m| (m.offset, m.size)), Some((16, 8)));
        assert_eq!(btf.member(task, "comm").map(|m| (m.offset, m.size)), Some((24, 16)));
        assert_eq!(btf.array_of(comm), Some((chr, 16)));
        assert_eq!(btf.member(task, "missing"), None);
        assert_eq!(btf.member_path(cred, &["euid", "val"]), Some(Member { offset: 8, size: 4, type_id: int }));
        assert_eq!(btf.member_path(cred, &["euid", "nope"]), None);
        assert_eq!(btf.len(), (func + 1) as usize);
    }

    #[test]
    fn a_cyclic_array_has_no_size() {
        let mut b = Builder::new();
        // Type 1 is an array of itself; type 2 a typedef of itself.
        let arr = b.array(1, 4);
        let td = b.typedef("loop", 2);
        let btf = Btf::parse(b.build()).unwrap();
        assert_eq!(btf.size_of(arr), None);
        assert_eq!(btf.size_of(td), None);
        assert_eq!(btf.size_of(0), None);
        assert_eq!(btf.size_of(99), None);
    }

    #[test]
    fn refuses_bitfields() {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        let s = b.bitfield_struct("flags", "bits", int);
        let btf = Btf::parse(b.build()).unwrap();
        assert_eq!(btf.member(s, "bits"), None);
    }

    #[test]
    fn rejects_malformed_blobs_without_panicking() {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        b.record("s", false, 4, &[("a", int, 0)]);
        let good = b.build();
        assert!(Btf::parse(good.clone()).is_ok());
        assert!(Btf::parse(Vec::new()).is_err());
        assert!(Btf::parse(vec![0x9f, 0xeb]).is_err());
        let mut bad_magic = good.clone();
        bad_magic[0] = 0;
        assert!(Btf::parse(bad_magic).is_err());
        // Every truncation either parses (a shorter, valid prefix is impossible here since
        // the header names the lengths) or fails cleanly.
        for cut in 0..good.len() {
            assert!(Btf::parse(good[..cut].to_vec()).is_err(), "cut at {cut}");
        }
        // An unknown kind.
        let mut unknown = good.clone();
        unknown[24 + 7] = 31;
        assert!(Btf::parse(unknown).is_err());
    }
}

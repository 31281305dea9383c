//! The pure rules of scheduled logoffs on Windows, compiled and tested on every OS: whom a
//! job file's security descriptor may trust, the command line of a job's service, and its
//! name. `jobs.rs` reads the descriptors and talks to the Service Control Manager.

/// `NT AUTHORITY\SYSTEM`.
pub(crate) const SYSTEM: &str = "S-1-5-18";
/// `BUILTIN\Administrators`, the default owner of what an elevated administrator creates.
pub(crate) const ADMINISTRATORS: &str = "S-1-5-32-544";
/// `NT SERVICE\TrustedInstaller`, which owns the system's own files.
pub(crate) const TRUSTED_INSTALLER: &str = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464";

/// The security descriptor of the job directory (SDDL): the DACL protected from what
/// `%ProgramData%` passes down (where Users may create files), full control for SYSTEM and
/// Administrators alone, inherited by every file and folder in it.
pub(crate) const DIR_SDDL: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/// Access rights that change a file's contents, its descriptor or its existence (or, on a
/// directory, what is in it): `FILE_WRITE_DATA`/`FILE_ADD_FILE`,
/// `FILE_APPEND_DATA`/`FILE_ADD_SUBDIRECTORY`, `FILE_DELETE_CHILD`, `DELETE`, `WRITE_DAC`,
/// `WRITE_OWNER`, `GENERIC_ALL`, `GENERIC_WRITE`, `MAXIMUM_ALLOWED`.
pub(crate) const WRITE_RIGHTS: u32 =
    0x2 | 0x4 | 0x40 | 0x0001_0000 | 0x0004_0000 | 0x0008_0000 | 0x1000_0000 | 0x4000_0000 | 0x0200_0000;

/// `ACCESS_ALLOWED_ACE_TYPE`.
pub(crate) const ACCESS_ALLOWED: u8 = 0;
/// `INHERIT_ONLY_ACE`: the entry applies to children only.
pub(crate) const INHERIT_ONLY: u8 = 0x8;

/// One entry of a DACL, as read from a descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ace {
    /// `AceType`.
    pub kind: u8,
    /// `AceFlags`.
    pub flags: u8,
    /// The access mask.
    pub mask: u32,
    /// The trustee, `S-1-…`; empty for an entry type that names none this reads.
    pub sid: String,
}

/// Why a file or directory of the job directory cannot be trusted, or `None`: it is owned
/// by someone other than SYSTEM, Administrators or `me` (the account the tool runs as), has
/// no DACL (anyone may do anything), or grants a write right to anyone else.
pub(crate) fn untrusted(owner: Option<&str>, dacl: Option<&[Ace]>, me: Option<&str>) -> Option<String> {
    let trusted = |sid: &str| sid == SYSTEM || sid == ADMINISTRATORS || Some(sid) == me;
    match owner {
        Some(o) if trusted(o) || o == TRUSTED_INSTALLER => {}
        Some(o) => return Some(format!("owned by {o}, not by SYSTEM or Administrators")),
        None => return Some("its owner cannot be read".into()),
    }
    let Some(aces) = dacl else {
        return Some("it has no DACL: anyone may write it".into());
    };
    for ace in aces {
        let applies = ace.kind == ACCESS_ALLOWED && ace.flags & INHERIT_ONLY == 0;
        if applies && ace.mask & WRITE_RIGHTS != 0 && !trusted(&ace.sid) && ace.sid != TRUSTED_INSTALLER {
            return Some(format!("writable by {} (access mask {:#x})", ace.sid, ace.mask));
        }
    }
    None
}

/// One argument quoted for a command line that `CommandLineToArgvW` (and Rust's std) split
/// back into exactly `arg`.
pub(crate) fn quote_arg(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains([' ', '\t', '\n', '\u{b}', '"']) {
        return arg.to_string();
    }
    let mut out = String::from('"');
    let mut backslashes = 0;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                out.push_str(&"\\".repeat(backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            c => {
                out.push_str(&"\\".repeat(backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    out.push_str(&"\\".repeat(backslashes * 2));
    out.push('"');
    out
}

/// The service's command line: the program and its arguments, quoted.
pub(crate) fn command_line(exe: &str, args: &[String]) -> String {
    std::iter::once(exe).chain(args.iter().map(String::as_str)).map(quote_arg).collect::<Vec<_>>().join(" ")
}

/// The name of job `id`'s service.
pub(crate) fn service_name(id: &str) -> String {
    format!("logoff-users-job-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ace(mask: u32, sid: &str) -> Ace {
        Ace { kind: ACCESS_ALLOWED, flags: 0, mask, sid: sid.into() }
    }

    #[test]
    fn only_system_administrators_or_we_may_own_or_write_a_job_file() {
        let me = Some("S-1-5-21-1-2-3-1000");
        let ours = [ace(0x1f01ff, SYSTEM), ace(0x1f01ff, ADMINISTRATORS)];
        assert_eq!(untrusted(Some(SYSTEM), Some(&ours), me), None);
        assert_eq!(untrusted(Some(ADMINISTRATORS), Some(&ours), None), None);
        assert_eq!(untrusted(me, Some(&ours), me), None, "a test's own directory");
        let bob = "S-1-5-21-1-2-3-1105";
        assert!(untrusted(Some(bob), Some(&ours), me).unwrap().starts_with(&format!("owned by {bob}")));
        assert!(untrusted(None, Some(&ours), me).is_some());
        assert!(untrusted(Some(SYSTEM), None, me).unwrap().contains("no DACL"));
        // What %ProgramData% passes down: Users (S-1-5-32-545) may add files.
        let users = [ace(0x1f01ff, SYSTEM), ace(0x2 | 0x4 | 0x100000, "S-1-5-32-545")];
        assert!(untrusted(Some(SYSTEM), Some(&users), me).unwrap().starts_with("writable by S-1-5-32-545"));
        // Everyone with GENERIC_ALL; Authenticated Users with DELETE.
        assert!(untrusted(Some(SYSTEM), Some(&[ace(0x1000_0000, "S-1-1-0")]), me).is_some());
        assert!(untrusted(Some(SYSTEM), Some(&[ace(0x0001_0000, "S-1-5-11")]), me).is_some());
        // Reading, inherit-only entries and deny entries are no reason to refuse.
        let fine = [
            ace(0x1200a9, "S-1-5-32-545"),
            Ace { kind: ACCESS_ALLOWED, flags: INHERIT_ONLY, mask: 0x1f01ff, sid: "S-1-3-0".into() },
            Ace { kind: 1, flags: 0, mask: 0x1f01ff, sid: "S-1-1-0".into() },
            ace(0x1f01ff, TRUSTED_INSTALLER),
        ];
        assert_eq!(untrusted(Some(TRUSTED_INSTALLER), Some(&fine), me), None);
    }

    /// Splits a command line as `CommandLineToArgvW` does (the rules since 2008).
    fn split(cmdline: &str) -> Vec<String> {
        let (mut args, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
        let chars: Vec<char> = cmdline.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                let n = chars[i..].iter().take_while(|&&c| c == '\\').count();
                if chars.get(i + n) == Some(&'"') {
                    cur.push_str(&"\\".repeat(n / 2));
                    if n % 2 == 1 {
                        cur.push('"');
                        i += n + 1;
                    } else {
                        i += n;
                    }
                } else {
                    cur.push_str(&"\\".repeat(n));
                    i += n;
                }
                any = true;
                continue;
            }
            if c == '"' {
                if quoted && chars.get(i + 1) == Some(&'"') {
                    cur.push('"');
                    i += 2;
                    continue;
                }
                quoted = !quoted;
                any = true;
            } else if (c == ' ' || c == '\t') && !quoted {
                if any {
                    args.push(std::mem::take(&mut cur));
                    any = false;
                }
            } else {
                cur.push(c);
                any = true;
            }
            i += 1;
        }
        if any {
            args.push(cur);
        }
        args
    }

    #[test]
    fn the_service_command_line_splits_back_into_its_arguments() {
        let exe = r"C:\Program Files\logoff-users\logoff-users.exe";
        let args: Vec<String> =
            ["--run-job", "0a1b2c3d", "--job-dir", r"C:\ProgramData\logoff-users\jobs", "--service"]
                .map(String::from)
                .to_vec();
        let line = command_line(exe, &args);
        assert!(line.starts_with(r#""C:\Program Files\logoff-users\logoff-users.exe" --run-job 0a1b2c3d"#), "{line}");
        let mut want = vec![exe.to_string()];
        want.extend(args);
        assert_eq!(split(&line), want);
        for odd in ["", "a b", r"a\", r"a b\", r#"say "hi""#, r#"\\"\"#, r"C:\dir with space\\", "tab\there"] {
            assert_eq!(split(&command_line("x.exe", &[odd.to_string()])), ["x.exe", odd], "{odd:?}");
        }
        assert_eq!(service_name("0a1b2c3d"), "logoff-users-job-0a1b2c3d");
    }
}

//! The local account database, `/etc/passwd`, read as a file.
//!
//! The tool deliberately does not call NSS (`getpwnam`): it must work in a static musl build,
//! and it only ever acts on local accounts that own processes here. Accounts that exist only
//! in LDAP or SSSD have no entry, so they show with a uid and no name.

use std::collections::HashMap;
use std::path::Path;

/// One `/etc/passwd` entry, the fields this backend needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The login name.
    pub name: String,
    /// The uid.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
}

/// The passwd entries, by uid and by name.
#[derive(Debug, Clone, Default)]
pub struct Passwd {
    entries: Vec<Entry>,
    by_uid: HashMap<u32, usize>,
}

impl Passwd {
    /// Reads `path` (normally `/etc/passwd`). A missing or unreadable file gives an empty
    /// table: names are then unknown, which is reported, not fatal.
    pub fn load(path: &Path) -> Passwd {
        std::fs::read(path).map(|bytes| Passwd::parse(&String::from_utf8_lossy(&bytes))).unwrap_or_default()
    }

    /// Parses passwd text; malformed lines (and NIS `+`/`-` lines) are skipped.
    pub fn parse(text: &str) -> Passwd {
        let mut table = Passwd::default();
        for line in text.lines() {
            let mut fields = line.split(':');
            let (Some(name), Some(_pw), Some(uid), Some(gid)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if name.is_empty() || name.starts_with(['+', '-', '#']) {
                continue;
            }
            let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse()) else {
                continue;
            };
            // The first entry for a uid names it, as getpwuid does.
            table.by_uid.entry(uid).or_insert(table.entries.len());
            table.entries.push(Entry { name: name.to_string(), uid, gid });
        }
        table
    }

    /// The entry of `uid`.
    pub fn by_uid(&self, uid: u32) -> Option<&Entry> {
        self.by_uid.get(&uid).map(|&i| &self.entries[i])
    }

    /// The entry named `name` (exact match, as login does).
    pub fn by_name(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_skips_junk() {
        let p = Passwd::parse(
            "root:x:0:0:root:/root:/bin/bash\n\
             # comment\n\
             +nisuser::::::\n\
             broken line\n\
             alice:x:1001:1001:Alice,,,:/home/alice:/bin/sh\n\
             alias:x:1001:50::/:/bin/sh\n\
             bad:x:notanumber:1::/:/bin/sh\n",
        );
        assert_eq!(p.by_uid(0).unwrap().name, "root");
        assert_eq!(p.by_uid(1001).unwrap().name, "alice");
        assert_eq!(p.by_name("alias").unwrap().gid, 50);
        assert!(p.by_name("bad").is_none());
        assert!(p.by_name("+nisuser").is_none());
        assert!(p.by_uid(7).is_none());
    }
}

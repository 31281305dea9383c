//! The Linux drain: `/run/nologin`, which `pam_nologin` reads (Debian's sshd and login PAM
//! stacks include it): while it exists, every login but root's is refused and the refused
//! user is shown its text. It lives on a tmpfs, so a restart ends the drain.
//!
//! The record of what this tool wrote is `/run/logoff-users/drain.json` (a directory only
//! root can read), written before `/run/nologin` and atomically (a temporary file, fsync,
//! rename): a tool that dies after writing either leaves a state `--undrain` undoes. The
//! file is created with `O_EXCL`, so an existing one (someone else's, or a shutdown's) is
//! never overwritten; `--undrain` removes it only while it holds exactly the text this tool
//! wrote. `/etc/nologin` (the persistent form) is only ever read.
//!
//! Decisions are `crate::drain`'s; this module reads and writes the files.

use std::io::{ErrorKind as IoKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::drain::{
    DrainAction, DrainDecision, DrainRecord, DrainReport, DrainRequest, DrainStatus, RECORD_VERSION, UndrainDecision,
    decide_drain, decide_undrain, printable,
};
use crate::error::{Error, Result};

/// Where the drain lives and where its record goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nologin {
    /// The file `pam_nologin` checks first (`/run/nologin`, also `/var/run/nologin`).
    pub nologin: PathBuf,
    /// The persistent one it checks next (`/etc/nologin`), only ever read.
    pub etc_nologin: PathBuf,
    /// The directory of the record (`/run/logoff-users`).
    pub state_dir: PathBuf,
}

impl Nologin {
    /// The system's paths.
    pub fn system() -> Nologin {
        Nologin {
            nologin: PathBuf::from("/run/nologin"),
            etc_nologin: PathBuf::from("/etc/nologin"),
            state_dir: PathBuf::from("/run/logoff-users"),
        }
    }

    fn record_path(&self) -> PathBuf {
        self.state_dir.join("drain.json")
    }

    /// What is in force: the content of `/run/nologin` (`None`: absent; a symlink or
    /// anything but a regular file counts as present and not ours), whether `/etc/nologin`
    /// exists, and the record.
    fn observe(&self) -> Result<Observed> {
        let nologin = match std::fs::symlink_metadata(&self.nologin) {
            Ok(m) if m.file_type().is_file() => Some(
                std::fs::read(&self.nologin)
                    .map_err(|e| Error::from_io(format!("read {}", self.nologin.display()), &e))?,
            ),
            Ok(_) => Some(Vec::new()),
            Err(e) if e.kind() == IoKind::NotFound => None,
            Err(e) => return Err(Error::from_io(format!("read {}", self.nologin.display()), &e)),
        };
        let etc = self.etc_nologin.symlink_metadata().is_ok();
        let record = self.read_record()?;
        Ok(Observed { nologin, etc, record })
    }

    fn read_record(&self) -> Result<Option<DrainRecord>> {
        let path = self.record_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(None),
            // Not root (`--list` by a user): whose drain it is cannot be told.
            Err(e) if e.kind() == IoKind::PermissionDenied => return Ok(None),
            Err(e) => return Err(Error::from_io(format!("read {}", path.display()), &e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::new(
                crate::error::ErrorKind::Os,
                format!("read the drain record {}", path.display()),
                format!("{e}; remove it if /run/nologin is not this tool's"),
            )
        })
    }

    /// Writes the record atomically: a new temporary file (mode 0600), fsync, rename.
    fn write_record(&self, record: &DrainRecord) -> Result<()> {
        let action = || format!("write the drain record in {}", self.state_dir.display());
        match std::fs::DirBuilder::new().mode(0o700).create(&self.state_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == IoKind::AlreadyExists => {}
            Err(e) => return Err(Error::from_io(action(), &e)),
        }
        let meta = std::fs::symlink_metadata(&self.state_dir).map_err(|e| Error::from_io(action(), &e))?;
        if !meta.is_dir() || meta.permissions().mode() & 0o022 != 0 {
            return Err(Error::new(
                crate::error::ErrorKind::PermissionDenied,
                action(),
                "it is not a directory that only its owner can write",
            ));
        }
        let tmp = self.state_dir.join(format!("drain.json.tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let text = serde_json::to_string_pretty(record).expect("the record serializes");
        let written = (|| {
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.record_path())?;
            std::fs::File::open(&self.state_dir)?.sync_all()
        })();
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::from_io(action(), &e)
        })
    }

    fn remove_record(&self) -> Result<()> {
        match std::fs::remove_file(self.record_path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == IoKind::NotFound => Ok(()),
            Err(e) => Err(Error::from_io(format!("remove {}", self.record_path().display()), &e)),
        }
    }

    /// Whether new logons are refused, by what, and whether by this tool.
    ///
    /// # Errors
    ///
    /// When the files cannot be read.
    pub fn status(&self) -> Result<DrainStatus> {
        Ok(self.observe()?.status(self))
    }

    /// Writes `/run/nologin` with the request's text, unless logons are refused already.
    ///
    /// # Errors
    ///
    /// When a file cannot be read or written; nothing of this tool's is left in force then.
    pub fn drain(&self, req: &DrainRequest) -> Result<DrainReport> {
        let seen = self.observe()?;
        match decide_drain(seen.draining(), seen.ours_in_force()) {
            DrainDecision::KeepOurs => Ok(DrainReport::new(
                DrainAction::AlreadyOurs,
                seen.status(self),
                "this tool's drain was in force already",
            )),
            DrainDecision::LeaveTheirs => {
                // A record whose drain is gone (the file replaced) is stale.
                if seen.record.is_some() {
                    self.remove_record()?;
                }
                let status = self.observe()?.status(self);
                let detail = format!(
                    "new logons are refused already ({}); nothing changed",
                    status.mechanism.as_deref().unwrap_or("?")
                );
                Ok(DrainReport::new(DrainAction::AlreadyDraining, status, detail))
            }
            DrainDecision::Apply => self.apply(req),
        }
    }

    fn apply(&self, req: &DrainRequest) -> Result<DrainReport> {
        let text = nologin_text(req);
        let record = DrainRecord {
            version: RECORD_VERSION,
            by: req.by.clone(),
            at: req.at,
            set: format!("{} written", self.nologin.display()),
            previous: format!("no {}", self.nologin.display()),
            previous_value: None,
            set_value: None,
            text: Some(text.clone()),
        };
        // The record first: a tool killed between the two leaves either a record alone
        // (which --undrain drops) or both (which --undrain undoes), never a drain it cannot
        // tell from someone else's.
        self.write_record(&record)?;
        let created =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&self.nologin).and_then(
                |mut f| {
                    f.write_all(text.as_bytes())?;
                    f.sync_all()
                },
            );
        match created {
            Ok(()) => {
                let detail = format!("wrote {}: logins of every user but root are refused", self.nologin.display());
                Ok(DrainReport::new(DrainAction::Drained, self.observe()?.status(self), detail))
            }
            // Someone wrote one in between: theirs stays.
            Err(e) if e.kind() == IoKind::AlreadyExists => {
                self.remove_record()?;
                let detail = format!("{} appeared meanwhile; left as it is", self.nologin.display());
                Ok(DrainReport::new(DrainAction::AlreadyDraining, self.observe()?.status(self), detail))
            }
            Err(e) => {
                // A partial file of ours would refuse logins with a broken text: remove it.
                if self.observe().is_ok_and(|s| s.nologin.is_some_and(|n| text.as_bytes().starts_with(&n))) {
                    let _ = std::fs::remove_file(&self.nologin);
                }
                let _ = self.remove_record();
                Err(Error::from_io(format!("write {}", self.nologin.display()), &e))
            }
        }
    }

    /// Removes this tool's `/run/nologin` (only while it holds the text written), and the
    /// record.
    ///
    /// # Errors
    ///
    /// When a file cannot be read or removed.
    pub fn undrain(&self) -> Result<DrainReport> {
        let seen = self.observe()?;
        let (action, detail) = match decide_undrain(seen.record.is_some(), seen.ours_in_force(), seen.draining()) {
            UndrainDecision::Restore => {
                std::fs::remove_file(&self.nologin)
                    .or_else(|e| if e.kind() == IoKind::NotFound { Ok(()) } else { Err(e) })
                    .map_err(|e| Error::from_io(format!("remove {}", self.nologin.display()), &e))?;
                self.remove_record()?;
                let r = seen.record.as_ref().expect("a record to restore");
                let when = crate::text::format_time(r.at);
                (
                    DrainAction::Undrained,
                    format!("removed {} (written by {} at {when} UTC)", self.nologin.display(), r.by),
                )
            }
            UndrainDecision::ChangedSince => {
                self.remove_record()?;
                let now = match &seen.nologin {
                    Some(_) => format!("{} holds another text now; left in place", self.nologin.display()),
                    None => format!("{} was removed already", self.nologin.display()),
                };
                (DrainAction::ChangedSince, format!("this tool's drain is no longer in force as written: {now}"))
            }
            UndrainDecision::NotOurs => {
                let what = seen.mechanism(self);
                (
                    DrainAction::NotOurs,
                    format!("{what} was not written by this tool: left in place (remove it to allow logins)"),
                )
            }
            UndrainDecision::NothingToDo => (DrainAction::NotDraining, "new logons are not refused".to_string()),
        };
        Ok(DrainReport::new(action, self.observe()?.status(self), detail))
    }
}

/// What was read.
struct Observed {
    nologin: Option<Vec<u8>>,
    etc: bool,
    record: Option<DrainRecord>,
}

impl Observed {
    fn draining(&self) -> bool {
        self.nologin.is_some() || self.etc
    }

    fn ours_in_force(&self) -> bool {
        match (&self.record, &self.nologin) {
            (Some(r), Some(n)) => r.text.as_deref().is_some_and(|t| t.as_bytes() == n.as_slice()),
            _ => false,
        }
    }

    fn mechanism(&self, paths: &Nologin) -> String {
        let shown = |p: &Path| p.display().to_string();
        match (&self.nologin, self.etc) {
            (Some(_), true) => format!("{} and {}", shown(&paths.nologin), shown(&paths.etc_nologin)),
            (Some(_), false) => shown(&paths.nologin),
            (None, true) => shown(&paths.etc_nologin),
            (None, false) => format!("no {}", shown(&paths.nologin)),
        }
    }

    fn status(&self, paths: &Nologin) -> DrainStatus {
        DrainStatus {
            draining: self.draining(),
            mechanism: Some(self.mechanism(paths)),
            ours: self.record.clone().filter(|_| self.ours_in_force()),
        }
    }
}

/// What `/run/nologin` says: the request's text (without control characters but for
/// newlines and tabs) and since when.
fn nologin_text(req: &DrainRequest) -> String {
    let text = printable(req.text.trim_end());
    format!("{text}\n(new logins refused by logoff-users since {} UTC)\n", crate::text::format_time(req.at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> Nologin {
        Nologin { nologin: dir.join("nologin"), etc_nologin: dir.join("etc-nologin"), state_dir: dir.join("state") }
    }

    fn request() -> DrainRequest {
        DrainRequest {
            text: "Patching at 22:00\x1b[2J".into(),
            by: "root (via sudo from admin)".into(),
            at: 1_795_000_000,
        }
    }

    #[test]
    fn drain_then_undrain_restores_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        assert_eq!(
            p.status().unwrap(),
            DrainStatus { draining: false, mechanism: Some(format!("no {}", p.nologin.display())), ours: None }
        );
        let r = p.drain(&request()).unwrap();
        assert_eq!(r.action, DrainAction::Drained, "{r:?}");
        assert!(r.status.draining && r.status.ours.is_some());
        let text = std::fs::read_to_string(&p.nologin).unwrap();
        assert_eq!(text, "Patching at 22:00[2J\n(new logins refused by logoff-users since 2026-11-18 11:06 UTC)\n");
        let record: DrainRecord = serde_json::from_str(&std::fs::read_to_string(p.record_path()).unwrap()).unwrap();
        assert_eq!(
            (record.by.as_str(), record.at, record.text.as_deref()),
            ("root (via sudo from admin)", 1_795_000_000, Some(text.as_str()))
        );
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&p.state_dir), mode(&p.record_path()), mode(&p.nologin)), (0o700, 0o600, 0o644));
        // A second drain keeps it as it is.
        assert_eq!(p.drain(&request()).unwrap().action, DrainAction::AlreadyOurs);
        let u = p.undrain().unwrap();
        assert_eq!(u.action, DrainAction::Undrained, "{u:?}");
        assert!(!p.nologin.exists() && !p.record_path().exists());
        assert!(!u.status.draining);
        assert_eq!(p.undrain().unwrap().action, DrainAction::NotDraining);
    }

    #[test]
    fn someone_elses_nologin_is_never_overwritten_nor_removed() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        std::fs::write(&p.nologin, "System is going down for reboot\n").unwrap();
        let r = p.drain(&request()).unwrap();
        assert_eq!(r.action, DrainAction::AlreadyDraining);
        assert!(r.status.draining && r.status.ours.is_none());
        assert!(!p.record_path().exists());
        let u = p.undrain().unwrap();
        assert_eq!(u.action, DrainAction::NotOurs);
        assert!(!u.succeeded(crate::drain::DrainStep::Undrain), "logons stay refused");
        assert_eq!(std::fs::read_to_string(&p.nologin).unwrap(), "System is going down for reboot\n");
        // /etc/nologin counts as a drain too, and is only read.
        std::fs::remove_file(&p.nologin).unwrap();
        std::fs::write(&p.etc_nologin, "closed\n").unwrap();
        assert_eq!(p.drain(&request()).unwrap().action, DrainAction::AlreadyDraining);
        assert!(!p.nologin.exists());
    }

    #[test]
    fn an_undrain_after_a_change_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        p.drain(&request()).unwrap();
        // The admin replaced the text: it is theirs now.
        std::fs::write(&p.nologin, "closed until Monday\n").unwrap();
        assert!(p.status().unwrap().ours.is_none());
        let u = p.undrain().unwrap();
        assert_eq!(u.action, DrainAction::ChangedSince, "{u:?}");
        assert_eq!(std::fs::read_to_string(&p.nologin).unwrap(), "closed until Monday\n");
        assert!(!p.record_path().exists(), "the stale record is dropped");
    }

    #[test]
    fn a_tool_killed_between_record_and_file_leaves_an_undoable_state() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        // Killed after the record, before /run/nologin: the record alone.
        p.drain(&request()).unwrap();
        std::fs::remove_file(&p.nologin).unwrap();
        assert_eq!(p.undrain().unwrap().action, DrainAction::ChangedSince);
        assert!(!p.record_path().exists());
        // A drain after such a death applies afresh.
        p.drain(&request()).unwrap();
        std::fs::remove_file(&p.nologin).unwrap();
        assert_eq!(p.drain(&request()).unwrap().action, DrainAction::Drained);
        assert_eq!(p.undrain().unwrap().action, DrainAction::Undrained);
    }

    #[test]
    fn a_symlink_counts_as_someone_elses() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        std::os::unix::fs::symlink("/etc/passwd", &p.nologin).unwrap();
        assert_eq!(p.drain(&request()).unwrap().action, DrainAction::AlreadyDraining);
        assert_eq!(p.undrain().unwrap().action, DrainAction::NotOurs);
        assert!(p.nologin.symlink_metadata().is_ok());
    }

    #[test]
    fn a_record_directory_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        std::fs::create_dir(&p.state_dir).unwrap();
        std::fs::set_permissions(&p.state_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = p.drain(&request()).unwrap_err();
        assert!(e.to_string().contains("only its owner can write"), "{e}");
        assert!(!p.nologin.exists(), "nothing in force after a failure");
    }
}

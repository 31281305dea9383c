//! The Windows drain: the RD Session Host logon mode that `change logon /drainuntilrestart`
//! sets, `TSServerDrainMode` = 1 under `HKLM\SYSTEM\CurrentControlSet\Control\Terminal
//! Server`. New remote logons are refused (existing users may still reconnect to their own
//! sessions, administrators can still log on with `/admin`), and a restart allows logons
//! again, as `/run/nologin` on Linux. `WinStationsDisabled` (`change logon /disable`) is
//! only read.
//!
//! The record (who, when, the previous `TSServerDrainMode`) is a JSON value in a volatile
//! key, `HKLM\SOFTWARE\logoff-users\Drain`, written before the mode: it is gone at the
//! restart together with the drain. `--undrain` writes the previous value back (or deletes
//! the value where there was none) only while the mode is still the one written.
//!
//! Decisions are `crate::drain`'s; key names and values are `super::convert`'s.

use super::convert::{
    DRAIN_MODE_VALUE, DRAIN_RECORD_KEY, DRAIN_UNTIL_RESTART, STATIONS_DISABLED_VALUE, TERMINAL_SERVER_KEY,
    WINLOGON_KEY, drain_mode_text, logons_refused, stations_disabled,
};
use super::registry::{Key, Root, Value};
use crate::drain::{
    DrainAction, DrainDecision, DrainRecord, DrainReport, DrainRequest, DrainStatus, RECORD_VERSION, UndrainDecision,
    decide_drain, decide_undrain,
};
use crate::error::{Error, ErrorKind, Result};

/// The value of the record in [`DRAIN_RECORD_KEY`].
const RECORD_VALUE: &str = "Record";

/// Where the drain mode and the record live (under `HKEY_LOCAL_MACHINE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainKeys {
    /// The key of `TSServerDrainMode`.
    pub terminal_server: String,
    /// The key of `WinStationsDisabled`.
    pub winlogon: String,
    /// The record's volatile key.
    pub record: String,
}

impl DrainKeys {
    /// The system's keys.
    pub fn system() -> DrainKeys {
        DrainKeys {
            terminal_server: TERMINAL_SERVER_KEY.to_string(),
            winlogon: WINLOGON_KEY.to_string(),
            record: DRAIN_RECORD_KEY.to_string(),
        }
    }

    fn observe(&self) -> Result<Observed> {
        let read = |path: &str, name: &str| -> Result<Option<Value>> {
            let action = || format!("read HKLM\\{path}\\{name}");
            match Key::open(Root::LocalMachine, path, false).map_err(|e| Error::from_io(action(), &e))? {
                Some(key) => key.value(name).map_err(|e| Error::from_io(action(), &e)),
                None => Ok(None),
            }
        };
        let mode = match read(&self.terminal_server, DRAIN_MODE_VALUE)? {
            None => None,
            Some(Value::Dword(n)) => Some(n),
            Some(other) => {
                return Err(Error::new(
                    ErrorKind::Os,
                    format!("read HKLM\\{}\\{DRAIN_MODE_VALUE}", self.terminal_server),
                    format!("not a REG_DWORD: {other:?}"),
                ));
            }
        };
        let disabled = match read(&self.winlogon, STATIONS_DISABLED_VALUE)? {
            Some(Value::Text(t)) => stations_disabled(Some(&t), None),
            Some(Value::Dword(n)) => stations_disabled(None, Some(n)),
            _ => false,
        };
        let record = match read(&self.record, RECORD_VALUE)? {
            Some(Value::Text(t)) => Some(serde_json::from_str::<DrainRecord>(&t).map_err(|e| {
                Error::new(
                    ErrorKind::Os,
                    format!("read the drain record HKLM\\{}", self.record),
                    format!("{e}; delete the key if the drain mode is not this tool's"),
                )
            })?),
            _ => None,
        };
        Ok(Observed { mode, disabled, record })
    }

    /// Whether new logons are refused, by what, and whether by this tool.
    ///
    /// # Errors
    ///
    /// A registry error.
    pub fn status(&self) -> Result<DrainStatus> {
        Ok(self.observe()?.status())
    }

    /// Sets drain until restart, unless logons are refused already.
    ///
    /// # Errors
    ///
    /// A registry error; nothing of this tool's is left in force then.
    pub fn drain(&self, req: &DrainRequest) -> Result<DrainReport> {
        let seen = self.observe()?;
        match decide_drain(seen.refused(), seen.ours_in_force()) {
            DrainDecision::KeepOurs => {
                Ok(DrainReport::new(DrainAction::AlreadyOurs, seen.status(), "this tool's drain was in force already"))
            }
            DrainDecision::LeaveTheirs => {
                if seen.record.is_some() {
                    self.delete_record()?;
                }
                let status = self.observe()?.status();
                let detail = format!(
                    "new logons are refused already ({}); nothing changed",
                    status.mechanism.as_deref().unwrap_or("?")
                );
                Ok(DrainReport::new(DrainAction::AlreadyDraining, status, detail))
            }
            DrainDecision::Apply => self.apply(req, seen.mode),
        }
    }

    fn apply(&self, req: &DrainRequest, previous: Option<u32>) -> Result<DrainReport> {
        let action = || format!("set HKLM\\{}\\{DRAIN_MODE_VALUE}", self.terminal_server);
        let Some(ts) =
            Key::open(Root::LocalMachine, &self.terminal_server, true).map_err(|e| Error::from_io(action(), &e))?
        else {
            return Err(Error::new(
                ErrorKind::NotFound,
                action(),
                format!("HKLM\\{} does not exist: Remote Desktop Services is not set up here", self.terminal_server),
            ));
        };
        let record = DrainRecord {
            version: RECORD_VERSION,
            by: req.by.clone(),
            at: req.at,
            set: drain_mode_text(Some(DRAIN_UNTIL_RESTART)),
            previous: drain_mode_text(previous),
            previous_value: previous,
            set_value: Some(DRAIN_UNTIL_RESTART),
            text: None,
        };
        // The record first, so that a tool killed in between leaves a state --undrain
        // undoes (see `crate::drain`).
        self.write_record(&record)?;
        if let Err(e) = ts.set_dword(DRAIN_MODE_VALUE, DRAIN_UNTIL_RESTART) {
            let _ = self.delete_record();
            return Err(Error::from_io(action(), &e));
        }
        let detail = format!(
            "set {} (was: {}): new remote logons are refused until --undrain or a restart",
            record.set, record.previous
        );
        Ok(DrainReport::new(DrainAction::Drained, self.observe()?.status(), detail))
    }

    fn write_record(&self, record: &DrainRecord) -> Result<()> {
        let action = || format!("write the drain record HKLM\\{}", self.record);
        let key = Key::create(Root::LocalMachine, &self.record, true).map_err(|e| Error::from_io(action(), &e))?;
        let text = serde_json::to_string(record).expect("the record serializes");
        key.set_text(RECORD_VALUE, &text).map_err(|e| Error::from_io(action(), &e))
    }

    fn delete_record(&self) -> Result<()> {
        Key::delete(Root::LocalMachine, &self.record)
            .map(|_| ())
            .map_err(|e| Error::from_io(format!("delete the drain record HKLM\\{}", self.record), &e))
    }

    /// Writes back the drain mode that was there before this tool's drain (deletes the value
    /// where there was none), only while the mode is the one written; drops the record.
    ///
    /// # Errors
    ///
    /// A registry error.
    pub fn undrain(&self) -> Result<DrainReport> {
        let seen = self.observe()?;
        let (action, detail) = match decide_undrain(seen.record.is_some(), seen.ours_in_force(), seen.refused()) {
            UndrainDecision::Restore => {
                let r = seen.record.as_ref().expect("a record to restore");
                let act = || format!("restore HKLM\\{}\\{DRAIN_MODE_VALUE}", self.terminal_server);
                let key = Key::open(Root::LocalMachine, &self.terminal_server, true)
                    .map_err(|e| Error::from_io(act(), &e))?
                    .ok_or_else(|| Error::new(ErrorKind::NotFound, act(), "the key is gone"))?;
                match r.previous_value {
                    Some(v) => key.set_dword(DRAIN_MODE_VALUE, v).map_err(|e| Error::from_io(act(), &e))?,
                    None => {
                        key.delete_value(DRAIN_MODE_VALUE).map_err(|e| Error::from_io(act(), &e))?;
                    }
                }
                self.delete_record()?;
                let when = crate::text::format_time(r.at);
                (DrainAction::Undrained, format!("restored {} (drained by {} at {when} UTC)", r.previous, r.by))
            }
            UndrainDecision::ChangedSince => {
                self.delete_record()?;
                let now = drain_mode_text(seen.mode);
                (
                    DrainAction::ChangedSince,
                    format!("this tool's drain is no longer in force as set ({now} now); left as it is"),
                )
            }
            UndrainDecision::NotOurs => (
                DrainAction::NotOurs,
                format!(
                    "{} was not set by this tool: left in place (change logon /enable allows logons)",
                    seen.mechanism()
                ),
            ),
            UndrainDecision::NothingToDo => (DrainAction::NotDraining, "new logons are not refused".to_string()),
        };
        Ok(DrainReport::new(action, self.observe()?.status(), detail))
    }
}

/// What was read.
struct Observed {
    mode: Option<u32>,
    disabled: bool,
    record: Option<DrainRecord>,
}

impl Observed {
    fn refused(&self) -> bool {
        logons_refused(self.mode, self.disabled)
    }

    fn ours_in_force(&self) -> bool {
        self.record.as_ref().is_some_and(|r| r.set_value.is_some() && r.set_value == self.mode)
    }

    fn mechanism(&self) -> String {
        let mode = drain_mode_text(self.mode);
        if self.disabled { format!("{STATIONS_DISABLED_VALUE} = 1 (change logon /disable); {mode}") } else { mode }
    }

    fn status(&self) -> DrainStatus {
        DrainStatus {
            draining: self.refused(),
            mechanism: Some(self.mechanism()),
            ours: self.record.clone().filter(|_| self.ours_in_force()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys of the test's own under `HKEY_LOCAL_MACHINE`, in the throwaway Wine prefix of
    /// `ci/windows.sh` (on Windows, in a key no system reads).
    fn keys(name: &str) -> DrainKeys {
        let base = format!(r"SOFTWARE\logoff-users-test\{name}");
        DrainKeys {
            terminal_server: format!(r"{base}\ts"),
            winlogon: format!(r"{base}\winlogon"),
            record: format!(r"{base}\record"),
        }
    }

    fn request() -> DrainRequest {
        DrainRequest { text: "x".into(), by: "VM\\root".into(), at: 1_795_000_000 }
    }

    fn mode(k: &DrainKeys) -> Option<Value> {
        Key::open(Root::LocalMachine, &k.terminal_server, false).unwrap().unwrap().value(DRAIN_MODE_VALUE).unwrap()
    }

    #[test]
    fn drain_sets_until_restart_and_undrain_restores_the_previous_mode() {
        for (name, previous) in [("absent", None), ("zero", Some(0))] {
            let k = keys(name);
            let ts = Key::create(Root::LocalMachine, &k.terminal_server, true).unwrap();
            let _ = ts.delete_value(DRAIN_MODE_VALUE);
            if let Some(v) = previous {
                ts.set_dword(DRAIN_MODE_VALUE, v).unwrap();
            }
            let r = k.drain(&request()).unwrap();
            assert_eq!(r.action, DrainAction::Drained, "{name}: {r:?}");
            assert_eq!(mode(&k), Some(Value::Dword(1)), "{name}");
            assert_eq!(r.status.ours.as_ref().unwrap().previous_value, previous);
            assert_eq!(k.drain(&request()).unwrap().action, DrainAction::AlreadyOurs);
            let u = k.undrain().unwrap();
            assert_eq!(u.action, DrainAction::Undrained, "{name}: {u:?}");
            assert_eq!(mode(&k), previous.map(Value::Dword), "{name}: exactly what was there");
            assert!(!Key::exists(Root::LocalMachine, &k.record).unwrap());
        }
    }

    #[test]
    fn an_admins_drain_is_left_alone() {
        let k = keys("theirs");
        let ts = Key::create(Root::LocalMachine, &k.terminal_server, true).unwrap();
        ts.set_dword(DRAIN_MODE_VALUE, 2).unwrap();
        assert_eq!(k.drain(&request()).unwrap().action, DrainAction::AlreadyDraining);
        assert_eq!(k.undrain().unwrap().action, DrainAction::NotOurs);
        assert_eq!(mode(&k), Some(Value::Dword(2)));
        // Ours, then changed by an admin (change logon /drain): left as it is.
        ts.set_dword(DRAIN_MODE_VALUE, 0).unwrap();
        k.drain(&request()).unwrap();
        ts.set_dword(DRAIN_MODE_VALUE, 2).unwrap();
        assert_eq!(k.undrain().unwrap().action, DrainAction::ChangedSince);
        assert_eq!(mode(&k), Some(Value::Dword(2)));
    }
}

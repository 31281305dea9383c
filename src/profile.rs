//! Was the profile really unloaded? After a user's sessions are gone, Windows still has to
//! save and unload the user's registry hive (`HKEY_USERS\<SID>`) and, where FSLogix is
//! installed, detach the profile container. A reboot before that ends leaves a profile in
//! use, and the user gets a temporary profile next morning. So a run waits for both to be
//! gone and reports, per user, `profile_unloaded`: `true`, `false` (still loaded at the
//! deadline: a failure, exit 1), or `"unknown"` (it could not be told).
//!
//! This module holds the model and the judgement, which are pure; the backend observes
//! ([`Backend::profile_state`](crate::backend::Backend::profile_state)), and
//! `run::profile` polls. A profile is never deleted, nor its hive unloaded by force.

use serde::{Serialize, Serializer};

use crate::error::Error;

/// What the backend saw of one user's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileState {
    /// `HKEY_USERS\<SID>` is there: the hive is loaded.
    pub hive_loaded: bool,
    /// FSLogix still holds the user's container; `None` where FSLogix is not installed.
    pub fslogix_held: Option<bool>,
}

impl ProfileState {
    /// Whether anything of the profile is still loaded.
    pub fn loaded(&self) -> bool {
        self.hive_loaded || self.fslogix_held == Some(true)
    }

    /// What is still loaded, for messages (`HKEY_USERS\S-1-5-...`, `FSLogix`).
    pub fn what_is_loaded(&self, sid: &str) -> String {
        let mut what = Vec::new();
        if self.hive_loaded {
            what.push(format!("HKEY_USERS\\{sid}"));
        }
        if self.fslogix_held == Some(true) {
            what.push(format!("FSLogix session state of {sid}"));
        }
        what.join(" and ")
    }
}

/// The verdict on one user's profile: `true`, `false` or `"unknown"` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileUnloaded {
    /// Hive and FSLogix state gone: safe to reboot as far as this user goes.
    Yes,
    /// Still loaded at the deadline.
    No,
    /// It could not be told (no SID known for the account, a registry error, a remote
    /// server).
    Unknown,
}

impl Serialize for ProfileUnloaded {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ProfileUnloaded::Yes => s.serialize_bool(true),
            ProfileUnloaded::No => s.serialize_bool(false),
            ProfileUnloaded::Unknown => s.serialize_str("unknown"),
        }
    }
}

/// One look at a user's profile: its SID and state, `None` where profiles are not
/// checked, or why it could not be told.
pub type Observation = Result<Option<(String, ProfileState)>, Error>;

/// Where one user's check stands after an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Decided, with what to say about it.
    Done(ProfileUnloaded, String),
    /// Still loaded; look again until the deadline.
    Wait,
    /// The platform has no profiles to check (Linux): nothing to report.
    NotApplicable,
}

/// Judges one observation of `sid`'s profile: gone is done; loaded is a wait, or a
/// failure once the deadline has passed; an error is unknown at once (a lookup that failed
/// does not get better by asking again).
pub fn judge(seen: &Observation, deadline_passed: bool) -> Judgement {
    match seen {
        Ok(None) => Judgement::NotApplicable,
        Ok(Some((_, state))) if !state.loaded() => {
            let fslogix = if state.fslogix_held.is_some() { " and FSLogix released it" } else { "" };
            Judgement::Done(ProfileUnloaded::Yes, format!("unloaded (hive gone{fslogix})"))
        }
        Ok(Some((sid, state))) if deadline_passed => {
            Judgement::Done(ProfileUnloaded::No, format!("{} still loaded", state.what_is_loaded(sid)))
        }
        Ok(Some(_)) => Judgement::Wait,
        Err(e) => Judgement::Done(ProfileUnloaded::Unknown, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const SID: &str = "S-1-5-21-1-2-3-1001";

    fn seen(hive: bool, fslogix: Option<bool>) -> Observation {
        Ok(Some((SID.to_string(), ProfileState { hive_loaded: hive, fslogix_held: fslogix })))
    }

    #[test]
    fn the_judgement_table() {
        use Judgement::{Done, NotApplicable, Wait};
        use ProfileUnloaded::{No, Unknown, Yes};
        let table: Vec<(Observation, bool, Judgement)> = vec![
            (seen(false, None), false, Done(Yes, "unloaded (hive gone)".into())),
            (seen(false, Some(false)), true, Done(Yes, "unloaded (hive gone and FSLogix released it)".into())),
            (seen(true, None), false, Wait),
            (seen(false, Some(true)), false, Wait),
            (seen(true, None), true, Done(No, format!("HKEY_USERS\\{SID} still loaded"))),
            (
                seen(true, Some(true)),
                true,
                Done(No, format!("HKEY_USERS\\{SID} and FSLogix session state of {SID} still loaded")),
            ),
            (seen(false, Some(true)), true, Done(No, format!("FSLogix session state of {SID} still loaded"))),
            (Ok(None), false, NotApplicable),
            (
                Err(Error::new(ErrorKind::NotFound, "find the SID of CORP\\bob", "no such account")),
                false,
                Done(Unknown, "could not find the SID of CORP\\bob: no such account".into()),
            ),
        ];
        for (observed, deadline, want) in table {
            assert_eq!(judge(&observed, deadline), want, "{observed:?} {deadline}");
        }
    }

    #[test]
    fn json_is_true_false_or_unknown() {
        let json = |p: ProfileUnloaded| serde_json::to_string(&p).unwrap();
        assert_eq!((json(ProfileUnloaded::Yes), json(ProfileUnloaded::No)), ("true".into(), "false".into()));
        assert_eq!(json(ProfileUnloaded::Unknown), "\"unknown\"");
    }
}

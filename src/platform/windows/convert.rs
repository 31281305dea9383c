//! Conversion of what the Windows Terminal Services (WTS) API reports into the
//! [`crate::model`] types, on plain Rust structs.
//!
//! This module is compiled on every OS, so that the conversions (connect states, FILETIME
//! and LARGE_INTEGER times, idle time, client addresses, which sessions to skip, which
//! processes a termination may touch and when a pid is confirmed, which server names are this
//! machine, what an administrator sees) are unit-tested on Linux too, from recorded data.
//! The Windows backend (`platform/windows/backend.rs` over `wts.rs`) copies each OS
//! structure into a [`RawSession`] or [`RawProcess`] and calls in here.
//!
//! Nothing here calls the OS, and nothing here is `unsafe`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::backend::Sparing;
use crate::error::ErrorKind;
use crate::idle::{Idle, IdleSource, Wake};
use crate::model::{Process, Session, SessionState, SessionType};
use crate::protect::{is_service_sid, service_account};
use crate::userlist::eq_fold;

/// `AF_INET` as Winsock numbers it.
pub const AF_INET: u32 = 2;
/// `AF_INET6` as Winsock numbers it (not Linux's 10).
pub const AF_INET6: u32 = 23;

/// 100-nanosecond intervals from 1601-01-01 (the FILETIME epoch) to 1970-01-01.
const FILETIME_UNIX_EPOCH: i64 = 116_444_736_000_000_000;
/// FILETIME ticks per second.
const FILETIME_TICKS_PER_SECOND: i64 = 10_000_000;

/// One value of `WTS_CONNECTSTATE_CLASS`: its number, its name in `wtsapi32.h`, and the
/// model state it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectState {
    /// The numeric value the API returns.
    pub value: i32,
    /// The enumerator's name in `wtsapi32.h`.
    pub name: &'static str,
    /// The model's state.
    pub state: SessionState,
}

/// Every `WTS_CONNECTSTATE_CLASS` value, in numeric order.
pub const CONNECT_STATES: [ConnectState; 10] = [
    ConnectState { value: 0, name: "WTSActive", state: SessionState::Active },
    ConnectState { value: 1, name: "WTSConnected", state: SessionState::Connected },
    ConnectState { value: 2, name: "WTSConnectQuery", state: SessionState::ConnectQuery },
    ConnectState { value: 3, name: "WTSShadow", state: SessionState::Shadow },
    ConnectState { value: 4, name: "WTSDisconnected", state: SessionState::Disconnected },
    ConnectState { value: 5, name: "WTSIdle", state: SessionState::Idle },
    ConnectState { value: 6, name: "WTSListen", state: SessionState::Listen },
    ConnectState { value: 7, name: "WTSReset", state: SessionState::Reset },
    ConnectState { value: 8, name: "WTSDown", state: SessionState::Down },
    ConnectState { value: 9, name: "WTSInit", state: SessionState::Init },
];

/// The model state of a `WTS_CONNECTSTATE_CLASS` value; `Unknown` for a value this table
/// does not know.
pub fn session_state(value: i32) -> SessionState {
    CONNECT_STATES.iter().find(|c| c.value == value).map_or(SessionState::Unknown, |c| c.state)
}

/// The times of `WTSINFOEX_LEVEL1_W` (from `WTSSessionInfoEx`), each a LARGE_INTEGER
/// counting 100 ns intervals since 1601-01-01 UTC; 0 means "never" or "not recorded".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSessionTimes {
    /// `LogonTime`.
    pub logon_time: i64,
    /// `ConnectTime`.
    pub connect_time: i64,
    /// `DisconnectTime`.
    pub disconnect_time: i64,
    /// `LastInputTime`.
    pub last_input_time: i64,
    /// `CurrentTime`: the server's clock when it answered, which idle time is measured
    /// against (the local clock may differ from a remote server's).
    pub current_time: i64,
}

/// `WTS_CLIENT_ADDRESS` (from `WTSClientAddress`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientAddress {
    /// `AddressFamily`: [`AF_INET`], [`AF_INET6`], or something else (`AF_UNSPEC` for the
    /// console).
    pub family: u32,
    /// `Address`: for `AF_INET`, the IPv4 address sits at bytes 2..6; for `AF_INET6`, the
    /// IPv6 address is bytes 0..16.
    pub address: [u8; 20],
}

/// Everything the backend learned about one session, as the WTS API said it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSession {
    /// `WTS_SESSION_INFOW.SessionId`.
    pub session_id: u32,
    /// `WTS_SESSION_INFOW.pWinStationName` (`Console`, `RDP-Tcp#3`, `Services`).
    pub station: String,
    /// `WTS_SESSION_INFOW.State`, a `WTS_CONNECTSTATE_CLASS` value.
    pub state: i32,
    /// `WTSUserName`; empty when no user is logged on.
    pub user: String,
    /// `WTSDomainName`: the account's domain, or the computer name for a local account.
    pub domain: String,
    /// `WTSSessionInfoEx`, when the server answered it.
    pub times: Option<RawSessionTimes>,
    /// `WTSClientAddress`, when the server answered it.
    pub client_address: Option<RawClientAddress>,
    /// `WTSClientName`; empty for the console.
    pub client_name: String,
    /// `WTSClientProtocolType`: 0 console, 1 (legacy) ICA, 2 RDP.
    pub protocol: Option<u16>,
}

/// Why a WTS session is not a user session, or `None` when it is one.
///
/// Session 0 holds the services; a listener (`RDP-Tcp`) is a template that never has a
/// user; a session with no user name is a logon screen or an idle station.
pub fn skip_reason(raw: &RawSession) -> Option<&'static str> {
    if raw.session_id == 0 {
        Some("session 0 is the services session")
    } else if session_state(raw.state) == SessionState::Listen {
        Some("a listener session has no user")
    } else if raw.user.trim().is_empty() {
        Some("no user is logged on")
    } else {
        None
    }
}

/// Converts a WTS session to a model session, or `None` when [`skip_reason`] says it is
/// not a user session.
pub fn to_session(raw: &RawSession) -> Option<Session> {
    if skip_reason(raw).is_some() {
        return None;
    }
    let times = raw.times.unwrap_or_default();
    let remote_host =
        raw.client_address.as_ref().and_then(client_address_string).or_else(|| non_empty(&raw.client_name));
    let state = session_state(raw.state);
    let mut session = Session {
        id: raw.session_id.to_string(),
        user: raw.user.clone(),
        domain: non_empty(&raw.domain),
        uid: None,
        sid: None,
        station: non_empty(&raw.station),
        state,
        remote_host,
        logon_time: filetime_to_unix(times.logon_time),
        idle_seconds: None,
        idle_source: IdleSource::Unknown,
        class: None,
        kind: raw.protocol.and_then(protocol_type),
        leader: None,
    };
    session.set_idle(raw.times.map_or(Idle::UNKNOWN, |t| idle_of(&t, state)));
    Some(session)
}

/// The session type of a `WTSClientProtocolType` value.
pub fn protocol_type(protocol: u16) -> Option<SessionType> {
    match protocol {
        0 => Some(SessionType::Console),
        1 => Some(SessionType::Ica),
        2 => Some(SessionType::Rdp),
        _ => None,
    }
}

/// A FILETIME or LARGE_INTEGER time (100 ns since 1601) as seconds since the Unix epoch;
/// `None` for 0, which WTS uses for "never".
pub fn filetime_to_unix(ticks: i64) -> Option<i64> {
    if ticks <= 0 {
        return None;
    }
    Some((ticks - FILETIME_UNIX_EPOCH).div_euclid(FILETIME_TICKS_PER_SECOND))
}

/// The idle time of a session, measured against the server's own `CurrentTime` (see
/// [`crate::idle`] for the rules):
///
/// - from `LastInputTime` when the server recorded one;
/// - a *disconnected* session without one has been idle since its `DisconnectTime`. Only a
///   disconnected one: a session that was disconnected once and reconnected keeps its old
///   `DisconnectTime`, which says nothing of its input since;
/// - unknown otherwise (the console reports no last-input time), when the server gave no
///   `CurrentTime`, or when its clock is behind the input time.
pub fn idle_of(times: &RawSessionTimes, state: SessionState) -> Idle {
    if times.current_time <= 0 {
        return Idle::UNKNOWN;
    }
    let (since, source) = if times.last_input_time > 0 {
        (times.last_input_time, IdleSource::LastInput)
    } else if state == SessionState::Disconnected && times.disconnect_time > 0 {
        (times.disconnect_time, IdleSource::Disconnect)
    } else {
        return Idle::UNKNOWN;
    };
    if since > times.current_time {
        return Idle::UNKNOWN;
    }
    u64::try_from((times.current_time - since) / FILETIME_TICKS_PER_SECOND)
        .map_or(Idle::UNKNOWN, |secs| Idle::known(secs, source))
}

/// When this machine last woke from sleep, from what Windows says (see [`crate::idle`]):
/// `last_wake` is `CallNtPowerInformation(LastWakeTime)`, the interrupt time (100 ns
/// units since boot, sleep included) of the last wake, 0 or `None` when there was none
/// or the call failed; `ticks_ms` is `GetTickCount64` (since boot, sleep included);
/// `unbiased` is `QueryUnbiasedInterruptTime` (100 ns units, sleep left out), `None`
/// when it failed.
pub fn wake_of(last_wake: Option<u64>, ticks_ms: u64, unbiased: Option<u64>) -> Wake {
    let since_boot_100ns = ticks_ms.saturating_mul(10_000);
    if let Some(at) = last_wake.filter(|&t| t > 0 && t <= since_boot_100ns) {
        return Wake::WokeAgo((since_boot_100ns - at) / 10_000_000);
    }
    match unbiased {
        // Awake time and time since boot agree: it never slept.
        Some(awake) if ticks_ms.saturating_sub(awake / 10_000) < crate::idle::SLEPT_THRESHOLD_MS => Wake::NeverSlept,
        _ => Wake::Unknown,
    }
}

/// The textual form of a client address; `None` for a family this does not know or an
/// all-zero address (the console reports one).
pub fn client_address_string(addr: &RawClientAddress) -> Option<String> {
    match addr.family {
        AF_INET => {
            let ip = Ipv4Addr::new(addr.address[2], addr.address[3], addr.address[4], addr.address[5]);
            (!ip.is_unspecified()).then(|| ip.to_string())
        }
        AF_INET6 => {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&addr.address[..16]);
            let ip = Ipv6Addr::from(bytes);
            (!ip.is_unspecified()).then(|| ip.to_string())
        }
        _ => None,
    }
}

/// One process as `WTSEnumerateProcessesExW` (level 1) reported it, with its owner SID
/// already in string form and its account already looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawProcess {
    /// `ProcessId`.
    pub pid: u32,
    /// `SessionId`.
    pub session_id: u32,
    /// `pProcessName`.
    pub name: String,
    /// `pUserSid`, as `ConvertSidToStringSidW` wrote it; `None` when the server gave none
    /// (it gives none for processes the caller may not query).
    pub sid: Option<String>,
    /// The account name `LookupAccountSidW` found for the SID.
    pub user: Option<String>,
    /// The domain `LookupAccountSidW` found for the SID.
    pub domain: Option<String>,
}

/// Converts a WTS process to a model process.
pub fn to_process(raw: &RawProcess) -> Process {
    Process {
        pid: raw.pid,
        user: raw.user.clone(),
        domain: raw.domain.clone(),
        uid: None,
        euid: None,
        suid: None,
        sid: raw.sid.clone(),
        session_id: Some(raw.session_id.to_string()),
        name: raw.name.clone(),
        zombie: false,
        uninterruptible: false,
    }
}

/// The pids of `processes` that a termination of the account `owner_sid` should end:
/// those whose owner SID is `owner_sid` exactly, minus what `sparing` spares (the run's
/// one rule: the tool's pids, the services session unless asked, the tool's own session).
/// Never any process of a service account, even if `owner_sid` names one.
pub fn select_for_termination(processes: &[RawProcess], owner_sid: &str, sparing: &Sparing) -> Vec<u32> {
    if is_service_sid(owner_sid) {
        return Vec::new();
    }
    processes
        .iter()
        .filter(|p| p.sid.as_deref().is_some_and(|sid| sid.eq_ignore_ascii_case(owner_sid)))
        .filter(|p| !sparing.spares(&to_process(p)))
        // pid 0 (Idle) and 4 (System) are never a user's, but a confused server could say so.
        .filter(|p| p.pid > 4)
        .map(|p| p.pid)
        .collect()
}

/// The pids of `listing` to open for termination in this round: [`select_for_termination`],
/// minus `held`, the pids this termination already ended and still holds handles to. A held
/// pid cannot name another process, so one still listed is the same process on its way out:
/// it is waited for, never targeted again (`TerminateProcess` on it would fail with access
/// denied).
pub fn termination_candidates(listing: &[RawProcess], owner_sid: &str, sparing: &Sparing, held: &[u32]) -> Vec<u32> {
    select_for_termination(listing, owner_sid, sparing).into_iter().filter(|pid| !held.contains(pid)).collect()
}

/// Which of the `opened` pids may be terminated: those that a listing taken after they were
/// opened (while their handles pin them) still shows as the owner's, and not spared. A pid
/// listed under another owner was reused between the first listing and the open: its
/// handle is another process's, and is closed untouched.
pub fn confirmed_for_termination(
    listing_after_open: &[RawProcess],
    owner_sid: &str,
    sparing: &Sparing,
    opened: &[u32],
) -> Vec<u32> {
    let theirs = select_for_termination(listing_after_open, owner_sid, sparing);
    opened.iter().copied().filter(|pid| theirs.contains(pid)).collect()
}

/// What a failed termination of one process means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminationFailure {
    /// The process is gone or on its way out: not a failure.
    Exited,
    /// The process lives on: a real failure (a protected process, or no right to it).
    Failed,
}

/// What the Win32 error `code` of `OpenProcess`, `TerminateProcess` or `WTSTerminateProcess`
/// means, given whether the process is known to have exited (its handle is signalled, or
/// this termination already ended that pid). `TerminateProcess` on a process that has
/// exited while handles keep it fails with `ERROR_ACCESS_DENIED`; a pid that no process has
/// gives `ERROR_INVALID_PARAMETER`.
pub fn termination_failure(code: u32, exited: bool) -> TerminationFailure {
    match code {
        win32::ERROR_INVALID_PARAMETER => TerminationFailure::Exited,
        win32::ERROR_ACCESS_DENIED if exited => TerminationFailure::Exited,
        _ => TerminationFailure::Failed,
    }
}

/// Whether a process listing shows processes of the system's own accounts (SYSTEM, LOCAL
/// SERVICE, NETWORK SERVICE), which every Windows host runs in session 0: the sign that the
/// caller is an administrator there. `WTSEnumerateProcessesExW`: "The caller must be a member
/// of the Administrators group to enumerate processes that are running under another user
/// session"; a non-administrator sees only its own processes (or gets access denied).
/// Listing sessions is no such probe: Remote Desktop Users may query every session.
pub fn shows_system_processes(listing: &[RawProcess]) -> bool {
    listing.iter().filter_map(|p| p.sid.as_deref()).any(|sid| service_account(sid).is_some())
}

/// Whether `AdjustTokenPrivileges` enabled the privilege: it returns `ok` TRUE even when it
/// could not, and then sets the last error `code` to `ERROR_NOT_ALL_ASSIGNED` (the token does
/// not hold it). `Err(code)` when the call failed.
pub fn debug_privilege_held(ok: bool, code: u32) -> Result<bool, u32> {
    match (ok, code) {
        (false, code) => Err(code),
        (true, win32::ERROR_NOT_ALL_ASSIGNED) => Ok(false),
        (true, _) => Ok(true),
    }
}

/// What to add to an access-denied termination error on this machine, given whether
/// `SeDebugPrivilege` could be enabled (`None`: not known). Without it an elevated
/// administrator cannot open other users' processes; SYSTEM holds it.
pub fn debug_privilege_hint(held: Option<bool>) -> Option<&'static str> {
    match held {
        Some(false) => Some(
            "this process does not hold SeDebugPrivilege (\"Debug programs\"), which an administrator \
             needs to end other users' processes; run it as SYSTEM, or grant the right to the Administrators group",
        ),
        _ => None,
    }
}

/// Whether the `--server` name `host` is this machine: `.`, `localhost`, a loopback address
/// (`127.0.0.0/8`, `::1`, bracketed or not), or one of `own_names` (the NetBIOS and DNS
/// names, compared ignoring case, a trailing dot allowed). Such a run is a local run: the
/// tool's own session and processes are protected as they are without `--server`.
pub fn is_this_machine(host: &str, own_names: &[String]) -> bool {
    let host = host.trim();
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return match ip {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        };
    }
    if host == "." {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if eq_fold(name, "localhost") {
        return true;
    }
    !name.is_empty() && own_names.iter().any(|own| eq_fold(own.trim_end_matches('.'), name))
}

/// The Win32 error codes the backend tells apart, by number (windows-sys only exists on
/// Windows; a Windows test checks these against it).
pub mod win32 {
    /// Access is denied.
    pub const ERROR_ACCESS_DENIED: u32 = 5;
    /// The network path was not found.
    pub const ERROR_BAD_NETPATH: u32 = 53;
    /// The request is not supported.
    pub const ERROR_NOT_SUPPORTED: u32 = 50;
    /// The parameter is incorrect (`OpenProcess` of a pid that has exited).
    pub const ERROR_INVALID_PARAMETER: u32 = 87;
    /// This function is not supported on this system (Wine's stubs).
    pub const ERROR_CALL_NOT_IMPLEMENTED: u32 = 120;
    /// Not all privileges or groups referenced are assigned to the caller.
    pub const ERROR_NOT_ALL_ASSIGNED: u32 = 1300;
    /// No mapping between account names and security IDs was done.
    pub const ERROR_NONE_MAPPED: u32 = 1332;
    /// The RPC server is unavailable.
    pub const RPC_S_SERVER_UNAVAILABLE: u32 = 1722;
    /// The remote procedure call failed.
    pub const RPC_S_CALL_FAILED: u32 = 1726;
    /// The remote procedure call failed and did not execute.
    pub const RPC_S_CALL_FAILED_DNE: u32 = 1727;
    /// There are no more endpoints available from the endpoint mapper.
    pub const EPT_S_NOT_REGISTERED: u32 = 1753;
    /// The specified session cannot be found.
    pub const ERROR_CTX_WINSTATION_NOT_FOUND: u32 = 7022;
}

/// The error kind of a Win32 error code: what the tool does about it.
pub fn error_kind(code: u32) -> ErrorKind {
    use win32::*;
    match code {
        ERROR_ACCESS_DENIED => ErrorKind::PermissionDenied,
        ERROR_CTX_WINSTATION_NOT_FOUND => ErrorKind::NotFound,
        ERROR_CALL_NOT_IMPLEMENTED | ERROR_NOT_SUPPORTED => ErrorKind::Unsupported,
        ERROR_BAD_NETPATH
        | RPC_S_SERVER_UNAVAILABLE
        | RPC_S_CALL_FAILED
        | RPC_S_CALL_FAILED_DNE
        | EPT_S_NOT_REGISTERED => ErrorKind::Unreachable,
        _ => ErrorKind::Os,
    }
}

/// The key under `HKEY_LOCAL_MACHINE` that holds the RD Session Host's logon mode.
pub const TERMINAL_SERVER_KEY: &str = r"SYSTEM\CurrentControlSet\Control\Terminal Server";
/// The value `change logon /drain` (2) and `/drainuntilrestart` (1) set, and `/enable`
/// clears (0).
pub const DRAIN_MODE_VALUE: &str = "TSServerDrainMode";
/// What `--drain` writes: drain until restart, as `change logon /drainuntilrestart` does.
pub const DRAIN_UNTIL_RESTART: u32 = 1;
/// The key of `WinStationsDisabled`, which `change logon /disable` sets ("1").
pub const WINLOGON_KEY: &str = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon";
/// Remote logons disabled altogether (`change logon /disable`); only ever read.
pub const STATIONS_DISABLED_VALUE: &str = "WinStationsDisabled";
/// Where a drain of this tool is recorded: a volatile key (gone at the restart, with the
/// drain itself), holding the record as JSON in the value `Record`.
pub const DRAIN_RECORD_KEY: &str = r"SOFTWARE\logoff-users\Drain";

/// `TSServerDrainMode` as people read it.
pub fn drain_mode_text(mode: Option<u32>) -> String {
    match mode {
        None => format!("no {DRAIN_MODE_VALUE} (allow all connections)"),
        Some(0) => format!("{DRAIN_MODE_VALUE} = 0 (allow all connections)"),
        Some(1) => format!("{DRAIN_MODE_VALUE} = 1 (drain until restart)"),
        Some(2) => format!("{DRAIN_MODE_VALUE} = 2 (drain)"),
        Some(n) => format!("{DRAIN_MODE_VALUE} = {n} (unknown)"),
    }
}

/// Whether new logons are refused: a drain mode (any value but 0: one this table does not
/// know is not taken for "allowed"), or remote logons disabled (`WinStationsDisabled`, a
/// string "1", or a DWORD 1 on some systems).
pub fn logons_refused(mode: Option<u32>, stations_disabled: bool) -> bool {
    stations_disabled || mode.is_some_and(|m| m != 0)
}

/// Whether a `WinStationsDisabled` value disables logons.
pub fn stations_disabled(text: Option<&str>, dword: Option<u32>) -> bool {
    text.is_some_and(|t| t.trim() == "1") || dword == Some(1)
}

/// FSLogix's per-session keys of a user, under `HKEY_LOCAL_MACHINE`: the profile
/// container's and the Office container's (ODFC).
pub fn fslogix_session_keys(sid: &str) -> [String; 2] {
    [format!(r"SOFTWARE\FSLogix\Profiles\Sessions\{sid}"), format!(r"SOFTWARE\FSLogix\ODFC\Sessions\{sid}")]
}

/// The key whose presence says FSLogix is installed.
pub const FSLOGIX_APPS_KEY: &str = r"SOFTWARE\FSLogix\Apps";

/// Whether FSLogix still holds a user's container: its session key is there with a
/// `RefCount` that is not 0 (one without `RefCount` counts as held: the value is not
/// documented, and a key FSLogix left is not proof of a detach).
pub fn fslogix_holds(key_exists: bool, ref_count: Option<u32>) -> bool {
    key_exists && ref_count != Some(0)
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `WTS_CONNECTSTATE_CLASS` value of a model state, if the state is a WTS one.
    pub fn connect_state_value(state: SessionState) -> Option<i32> {
        CONNECT_STATES.iter().find(|c| c.state == state).map(|c| c.value)
    }

    /// The `wtsapi32.h` name of a `WTS_CONNECTSTATE_CLASS` value.
    pub fn connect_state_name(value: i32) -> Option<&'static str> {
        CONNECT_STATES.iter().find(|c| c.value == value).map(|c| c.name)
    }

    /// The `WTS_CONNECTSTATE_CLASS` value of a `wtsapi32.h` name (`"WTSActive"`).
    pub fn connect_state_from_name(name: &str) -> Option<i32> {
        CONNECT_STATES.iter().find(|c| c.name == name).map(|c| c.value)
    }

    /// 2024-03-01T12:00:00Z as FILETIME ticks.
    const NOON: i64 = 133_537_680_000_000_000;
    const NOON_UNIX: i64 = 1_709_294_400;

    #[test]
    fn connect_state_table_round_trips() {
        for (i, c) in CONNECT_STATES.iter().enumerate() {
            assert_eq!(c.value, i as i32, "the table is in numeric order");
            assert_eq!(session_state(c.value), c.state);
            assert_eq!(connect_state_value(c.state), Some(c.value));
            assert_eq!(connect_state_name(c.value), Some(c.name));
            assert_eq!(connect_state_from_name(c.name), Some(c.value));
            assert_eq!(SessionState::parse(c.state.as_str()), c.state);
        }
        assert_eq!(session_state(10), SessionState::Unknown);
        assert_eq!(session_state(-1), SessionState::Unknown);
        assert_eq!(connect_state_value(SessionState::Closing), None);
        assert_eq!(connect_state_from_name("WTSBogus"), None);
    }

    #[test]
    fn filetime_converts_to_unix_seconds() {
        assert_eq!(filetime_to_unix(NOON), Some(NOON_UNIX));
        assert_eq!(filetime_to_unix(FILETIME_UNIX_EPOCH), Some(0));
        assert_eq!(filetime_to_unix(FILETIME_UNIX_EPOCH + 9_999_999), Some(0));
        // Before 1970 rounds down, not toward zero.
        assert_eq!(filetime_to_unix(FILETIME_UNIX_EPOCH - 1), Some(-1));
        assert_eq!(filetime_to_unix(0), None);
    }

    #[test]
    fn idle_is_measured_against_the_servers_clock() {
        use SessionState::{Active, Disconnected};
        let secs = |n: i64| n * FILETIME_TICKS_PER_SECOND;
        let times = |last_input: i64, disconnect: i64, current: i64| RawSessionTimes {
            logon_time: NOON - secs(3600),
            connect_time: NOON - secs(3600),
            disconnect_time: disconnect,
            last_input_time: last_input,
            current_time: current,
        };
        let table: &[(&str, RawSessionTimes, SessionState, Idle)] = &[
            ("input 125 s ago", times(NOON - secs(125) - 5, 0, NOON), Active, Idle::known(125, IdleSource::LastInput)),
            // The console: no last-input time. Unknown, not idle since 1601.
            ("no input time, never disconnected", times(0, 0, NOON), Active, Idle::UNKNOWN),
            (
                "disconnected 600 s ago",
                times(0, NOON - secs(600), NOON),
                Disconnected,
                Idle::known(600, IdleSource::Disconnect),
            ),
            // Disconnected yesterday and reconnected since: the old DisconnectTime says
            // nothing of its input now.
            ("active, an old disconnect", times(0, NOON - secs(86_400), NOON), Active, Idle::UNKNOWN),
            (
                "disconnected with an input time",
                times(NOON - secs(900), NOON - secs(600), NOON),
                Disconnected,
                Idle::known(900, IdleSource::LastInput),
            ),
            ("input in the future", times(NOON + secs(1), 0, NOON), Active, Idle::UNKNOWN),
            ("no current time", times(NOON - secs(125), 0, 0), Active, Idle::UNKNOWN),
        ];
        for (what, t, state, want) in table {
            assert_eq!(idle_of(t, *state), *want, "{what}");
        }
    }

    /// Values as Windows reports them: `CallNtPowerInformation(LastWakeTime)` in interrupt
    /// time (100 ns), `GetTickCount64` in ms, `QueryUnbiasedInterruptTime` in 100 ns.
    #[test]
    fn the_last_wake_from_power_information() {
        // (what, LastWakeTime, GetTickCount64, QueryUnbiasedInterruptTime, wake)
        type Row = (&'static str, Option<u64>, u64, Option<u64>, Wake);
        let table: &[Row] = &[
            // Up 2 h, never slept: LastWakeTime 0, the unbiased time agrees with the ticks.
            ("never slept", Some(0), 7_200_000, Some(72_000_000_000), Wake::NeverSlept),
            // Up 12 h, 10 h of them asleep; woke at 11 h 58 m since boot: 120 s ago.
            ("woke 2 min ago", Some(430_800_000_000), 43_200_000, Some(72_000_000_000), Wake::WokeAgo(120)),
            // The call failed (Wine), the clocks agree: no sleep.
            ("no power information, never slept", None, 7_200_000, Some(71_999_990_000), Wake::NeverSlept),
            // The call failed and the clocks disagree by 10 h: it slept, when is unknown.
            ("no power information, slept", None, 43_200_000, Some(72_000_000_000), Wake::Unknown),
            ("nothing known", None, 43_200_000, None, Wake::Unknown),
            // A wake time past the tick count is not believed.
            ("a wake in the future", Some(500_000_000_000), 43_200_000, Some(432_000_000_000), Wake::NeverSlept),
        ];
        for (what, last_wake, ticks, unbiased, want) in table {
            assert_eq!(wake_of(*last_wake, *ticks, *unbiased), *want, "{what}");
        }
    }

    #[test]
    fn drain_modes_as_change_logon_sets_them() {
        // (TSServerDrainMode, WinStationsDisabled) -> refused
        let table = [
            ((None, false), false),
            ((Some(0), false), false),
            ((Some(1), false), true),
            ((Some(2), false), true),
            ((Some(7), false), true),
            ((Some(0), true), true),
        ];
        for ((mode, disabled), want) in table {
            assert_eq!(logons_refused(mode, disabled), want, "{mode:?} {disabled}");
        }
        assert_eq!(drain_mode_text(Some(DRAIN_UNTIL_RESTART)), "TSServerDrainMode = 1 (drain until restart)");
        assert_eq!(drain_mode_text(None), "no TSServerDrainMode (allow all connections)");
        assert!(stations_disabled(Some("1"), None) && stations_disabled(None, Some(1)));
        assert!(!stations_disabled(Some("0"), None) && !stations_disabled(None, None));
    }

    #[test]
    fn fslogix_holds_a_container_while_its_session_key_counts_a_reference() {
        assert!(fslogix_holds(true, Some(1)));
        assert!(fslogix_holds(true, None));
        assert!(!fslogix_holds(true, Some(0)));
        assert!(!fslogix_holds(false, None));
        assert_eq!(
            fslogix_session_keys("S-1-5-21-1-2-3-1001")[0],
            r"SOFTWARE\FSLogix\Profiles\Sessions\S-1-5-21-1-2-3-1001"
        );
    }

    #[test]
    fn client_addresses_render_per_family() {
        let mut a = RawClientAddress { family: AF_INET, address: [0; 20] };
        a.address[2..6].copy_from_slice(&[192, 168, 0, 1]);
        assert_eq!(client_address_string(&a).as_deref(), Some("192.168.0.1"));

        let mut b = RawClientAddress { family: AF_INET6, address: [0; 20] };
        b.address[0] = 0xff;
        b.address[1] = 0xff;
        b.address[15] = 1;
        assert_eq!(client_address_string(&b).as_deref(), Some("ffff::1"));

        assert_eq!(client_address_string(&RawClientAddress { family: AF_INET, address: [0; 20] }), None);
        assert_eq!(client_address_string(&RawClientAddress { family: 0, address: [7; 20] }), None);
        assert_eq!(client_address_string(&RawClientAddress { family: 10, address: [7; 20] }), None);
    }

    /// A recorded `--dump-raw` style listing of an RDS host: services, a listener, the
    /// console logon screen, an RDP user, a disconnected domain user.
    const RECORDED: &str = r#"[
      {"session_id": 0, "station": "Services", "state": 4},
      {"session_id": 65536, "station": "RDP-Tcp", "state": 6},
      {"session_id": 1, "station": "Console", "state": 1, "protocol": 0},
      {"session_id": 2, "station": "RDP-Tcp#7", "state": 0, "user": "jsmith", "domain": "CORP",
       "times": {"logon_time": 133537644000000000, "connect_time": 133537644000000000,
                 "last_input_time": 133537678800000000, "current_time": 133537680000000000},
       "client_address": {"family": 2, "address": [0,0,10,1,2,3,0,0,0,0,0,0,0,0,0,0,0,0,0,0]},
       "client_name": "LAPTOP-42", "protocol": 2},
      {"session_id": 3, "station": "", "state": 4, "user": "jsmith", "domain": "RDSH01",
       "times": {"logon_time": 133537644000000000, "disconnect_time": 133537674000000000,
                 "current_time": 133537680000000000},
       "client_address": {"family": 0, "address": [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]},
       "client_name": "KIOSK", "protocol": 2}
    ]"#;

    #[test]
    fn recorded_sessions_convert_and_skip() {
        let raw: Vec<RawSession> = serde_json::from_str(RECORDED).unwrap();
        assert_eq!(skip_reason(&raw[0]), Some("session 0 is the services session"));
        assert_eq!(skip_reason(&raw[1]), Some("a listener session has no user"));
        assert_eq!(skip_reason(&raw[2]), Some("no user is logged on"));
        let sessions: Vec<Session> = raw.iter().filter_map(to_session).collect();
        assert_eq!(sessions.len(), 2);

        let rdp = &sessions[0];
        assert_eq!(rdp.id, "2");
        assert_eq!(rdp.user, "jsmith");
        assert_eq!(rdp.domain.as_deref(), Some("CORP"));
        assert_eq!(rdp.station.as_deref(), Some("RDP-Tcp#7"));
        assert_eq!(rdp.state, SessionState::Active);
        assert_eq!(rdp.remote_host.as_deref(), Some("10.1.2.3"));
        assert_eq!(rdp.logon_time, Some(NOON_UNIX - 3600));
        assert_eq!((rdp.idle_seconds, rdp.idle_source), (Some(120), IdleSource::LastInput));
        assert_eq!(rdp.kind, Some(SessionType::Rdp));

        // Same name, other domain: a different account, and the domain must say so.
        let local = &sessions[1];
        assert_eq!(local.id, "3");
        assert_eq!(local.domain.as_deref(), Some("RDSH01"));
        assert!(!crate::identity::same_account(local, rdp));
        assert_eq!(local.state, SessionState::Disconnected);
        assert_eq!(local.station, None);
        assert_eq!(local.remote_host.as_deref(), Some("KIOSK"), "falls back to the client name");
        assert_eq!((local.idle_seconds, local.idle_source), (Some(600), IdleSource::Disconnect));
    }

    #[test]
    fn a_session_without_times_has_none() {
        let raw = RawSession { session_id: 5, state: 0, user: "a".into(), ..RawSession::default() };
        let s = to_session(&raw).unwrap();
        assert_eq!((s.logon_time, s.idle_seconds, s.remote_host, s.domain, s.kind), (None, None, None, None, None));
    }

    fn proc(pid: u32, session_id: u32, sid: Option<&str>) -> RawProcess {
        RawProcess {
            pid,
            session_id,
            name: format!("p{pid}.exe"),
            sid: sid.map(str::to_string),
            ..RawProcess::default()
        }
    }

    const ALICE: &str = "S-1-5-21-1004336348-1177238915-682003330-1001";
    const BOB: &str = "S-1-5-21-1004336348-1177238915-682003330-1002";

    #[test]
    fn termination_takes_only_the_owners_processes() {
        let procs = [
            proc(4, 0, Some("S-1-5-18")),
            proc(700, 0, Some(ALICE)),  // a service running as alice
            proc(1000, 2, Some(ALICE)), // alice's shell
            proc(1001, 2, Some(&ALICE.to_lowercase())),
            proc(1002, 3, Some(BOB)),
            proc(1003, 1, Some(ALICE)), // alice in the tool's own session
            proc(1004, 2, Some(ALICE)), // spared
            proc(1005, 2, None),        // owner unknown: never taken
        ];
        let sparing = Sparing { pids: vec![1004], sessions: vec!["0".into(), "1".into()] };
        assert_eq!(select_for_termination(&procs, ALICE, &sparing), vec![1000, 1001]);

        let with_services = Sparing { pids: vec![1004], sessions: vec!["1".into()] };
        assert_eq!(select_for_termination(&procs, ALICE, &with_services), vec![700, 1000, 1001]);

        assert_eq!(select_for_termination(&procs, BOB, &sparing), vec![1002]);
    }

    #[test]
    fn termination_refuses_service_accounts() {
        let procs = [proc(900, 0, Some("S-1-5-18")), proc(901, 2, Some("S-1-5-19")), proc(902, 2, Some("S-1-5-20"))];
        let sparing = Sparing::default();
        for (sid, _) in crate::protect::SERVICE_SIDS {
            assert!(is_service_sid(sid));
            assert!(select_for_termination(&procs, sid, &sparing).is_empty(), "{sid}");
        }
        assert!(is_service_sid("s-1-5-18"));
        assert!(is_service_sid("S-1-5-90-0-1"), "DWM-1");
        assert!(is_service_sid("S-1-5-96-0-0"), "UMFD-0");
        assert!(!is_service_sid("S-1-5-180"));
        assert!(!is_service_sid(ALICE));
    }

    #[test]
    fn a_pid_is_confirmed_only_while_held_and_still_the_owners() {
        let sparing = Sparing { pids: vec![], sessions: vec!["0".into()] };
        let first = [proc(1000, 2, Some(ALICE)), proc(1001, 2, Some(ALICE)), proc(1002, 2, Some(ALICE))];
        // 1002 was terminated in an earlier round and its handle is held: still listed while
        // it exits, it is not a candidate again.
        assert_eq!(termination_candidates(&first, ALICE, &sparing, &[1002]), vec![1000, 1001]);
        // Between the first listing and the open, 1001 exited and its pid went to a SYSTEM
        // service; the listing taken while holding the handles says so: not terminated.
        let after_open = [proc(1000, 2, Some(ALICE)), proc(1001, 0, Some("S-1-5-18"))];
        assert_eq!(confirmed_for_termination(&after_open, ALICE, &sparing, &[1000, 1001]), vec![1000]);
        // Reused by another user in a user session: not terminated either.
        let by_bob = [proc(1000, 2, Some(BOB)), proc(1001, 3, Some(ALICE))];
        assert_eq!(confirmed_for_termination(&by_bob, ALICE, &sparing, &[1000, 1001]), vec![1001]);
        // A pid that moved into a spared session is not confirmed.
        let moved = [proc(1000, 0, Some(ALICE))];
        assert!(confirmed_for_termination(&moved, ALICE, &sparing, &[1000]).is_empty());
        // Only what was opened is confirmed, whatever else the listing shows.
        assert_eq!(confirmed_for_termination(&first, ALICE, &sparing, &[1001]), vec![1001]);
    }

    #[test]
    fn an_exiting_process_is_not_a_failure() {
        use win32::*;
        assert_eq!(termination_failure(ERROR_ACCESS_DENIED, true), TerminationFailure::Exited);
        assert_eq!(termination_failure(ERROR_ACCESS_DENIED, false), TerminationFailure::Failed);
        assert_eq!(termination_failure(ERROR_INVALID_PARAMETER, false), TerminationFailure::Exited);
        assert_eq!(termination_failure(RPC_S_SERVER_UNAVAILABLE, true), TerminationFailure::Failed);
        assert_eq!(termination_failure(31, false), TerminationFailure::Failed);
    }

    #[test]
    fn an_administrator_sees_the_systems_processes() {
        let admin = [proc(4, 0, Some("S-1-5-18")), proc(1000, 2, Some(ALICE))];
        assert!(shows_system_processes(&admin));
        assert!(shows_system_processes(&[proc(900, 0, Some("s-1-5-19"))]));
        assert!(shows_system_processes(&[proc(900, 0, Some("S-1-5-20"))]));
        // A non-administrator's own processes only, or processes without owners: no.
        assert!(!shows_system_processes(&[proc(1000, 2, Some(ALICE)), proc(1001, 2, None)]));
        assert!(!shows_system_processes(&[]));
        // A DWM window manager is per session, not proof of seeing session 0.
        assert!(!shows_system_processes(&[proc(700, 1, Some("S-1-5-90-0-1"))]));
        assert!(!shows_system_processes(&[proc(700, 1, Some("S-1-5-180"))]));
    }

    #[test]
    fn adjust_token_privileges_says_not_held_through_the_last_error() {
        assert_eq!(debug_privilege_held(true, 0), Ok(true));
        assert_eq!(debug_privilege_held(true, win32::ERROR_NOT_ALL_ASSIGNED), Ok(false));
        assert_eq!(debug_privilege_held(false, 6), Err(6));
    }

    #[test]
    fn a_missing_debug_privilege_is_named() {
        assert!(debug_privilege_hint(Some(false)).is_some_and(|h| h.contains("SeDebugPrivilege")));
        assert_eq!(debug_privilege_hint(Some(true)), None);
        assert_eq!(debug_privilege_hint(None), None);
    }

    #[test]
    fn this_machine_by_any_of_its_names() {
        let own = vec!["RDSH01".to_string(), "rdsh01".to_string(), "rdsh01.corp.example.com".to_string()];
        for host in [
            ".",
            "localhost",
            "LOCALHOST",
            "localhost.",
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
            "rdsh01",
            "RdSh01",
            "RDSH01.CORP.EXAMPLE.COM",
            "rdsh01.corp.example.com.",
            " rdsh01 ",
        ] {
            assert!(is_this_machine(host, &own), "{host}");
        }
        for host in
            ["rdsh02", "rdsh01.other.example.com", "10.0.0.5", "::2", "", "..", "rdsh", "localhost2", "[rdsh01]"]
        {
            assert!(!is_this_machine(host, &own), "{host}");
        }
        // Without its own names, only the loopback forms.
        assert!(is_this_machine("localhost", &[]));
        assert!(!is_this_machine("rdsh01", &[]));
        // Unicode case folding, as for user names.
        assert!(is_this_machine("ÄRZTE-PC", &["ärzte-pc".to_string()]));
    }

    #[test]
    fn processes_convert() {
        let raw = RawProcess {
            pid: 1000,
            session_id: 2,
            name: "explorer.exe".into(),
            sid: Some(ALICE.into()),
            user: Some("alice".into()),
            domain: Some("CORP".into()),
        };
        let p = to_process(&raw);
        assert_eq!(p.pid, 1000);
        assert_eq!(p.session_id.as_deref(), Some("2"));
        assert_eq!(p.sid.as_deref(), Some(ALICE));
        assert_eq!((p.user.as_deref(), p.domain.as_deref()), (Some("alice"), Some("CORP")));
        assert_eq!(p.name, "explorer.exe");
    }

    #[test]
    fn win32_errors_map_to_kinds() {
        assert_eq!(error_kind(5), ErrorKind::PermissionDenied);
        assert_eq!(error_kind(7022), ErrorKind::NotFound);
        assert_eq!(error_kind(120), ErrorKind::Unsupported);
        assert_eq!(error_kind(1722), ErrorKind::Unreachable);
        assert_eq!(error_kind(53), ErrorKind::Unreachable);
        assert_eq!(error_kind(1332), ErrorKind::Os);
        assert_eq!(error_kind(31), ErrorKind::Os);
    }

    #[test]
    fn protocol_names() {
        let name = |p: u16| protocol_type(p).map(SessionType::as_str);
        assert_eq!(name(0), Some("console"));
        assert_eq!(name(2), Some("rdp"));
        assert_eq!(name(9), None);
    }
}

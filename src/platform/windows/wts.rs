//! Small, safe wrappers over the Windows Terminal Services API (`wtsapi32`) and the few
//! Win32 security, token and process calls the Windows backend needs.
//!
//! All of the crate's Windows `unsafe` lives here. Every wrapper returns `io::Result`, whose
//! `Display` on Windows is the system's own message text (std formats it with
//! `FormatMessageW`), and copies what the OS returned into owned Rust values before the OS
//! buffer is freed by an RAII guard: [`WtsMemory`] (`WTSFreeMemory`), [`WtsMemoryEx`]
//! (`WTSFreeMemoryExW`), [`LocalMemory`] (`LocalFree`), [`NetBuffer`] (`NetApiBufferFree`)
//! and [`Handle`] (`CloseHandle`). Only the W (UTF-16) APIs are used.
//!
//! What the values mean (states, times, addresses, which sessions count) is decided in
//! `super::convert`, not here.

use std::ffi::c_void;
use std::io;
use std::mem::size_of;
use std::ptr;

use windows_sys::Win32::Foundation::{
    BOOL, CloseHandle, ERROR_CALL_NOT_IMPLEMENTED, ERROR_INSUFFICIENT_BUFFER, ERROR_MORE_DATA, FALSE, GetLastError,
    HANDLE, LUID, LocalFree, WAIT_OBJECT_0,
};
use windows_sys::Win32::NetworkManagement::NetManagement::{NetApiBufferFree, NetWkstaGetInfo, WKSTA_INFO_100};
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::Win32::Security::{
    AdjustTokenPrivileges, CheckTokenMembership, CopySid, CreateWellKnownSid, GetLengthSid, GetTokenInformation,
    IsValidSid, LUID_AND_ATTRIBUTES, LookupAccountNameW, LookupAccountSidW, LookupPrivilegeValueW, PSID, SE_DEBUG_NAME,
    SE_PRIVILEGE_ENABLED, SECURITY_MAX_SID_SIZE, SID_NAME_USE, TOKEN_ADJUST_PRIVILEGES, TOKEN_PRIVILEGES, TOKEN_QUERY,
    TOKEN_USER, TokenUser, WELL_KNOWN_SID_TYPE, WinBuiltinAdministratorsSid, WinLocalSystemSid,
};
use windows_sys::Win32::System::Power::{CallNtPowerInformation, LastWakeTime};
use windows_sys::Win32::System::RemoteDesktop::{
    ProcessIdToSessionId, WTS_CLIENT_ADDRESS, WTS_CURRENT_SERVER_HANDLE, WTS_CURRENT_SESSION, WTS_INFO_CLASS,
    WTS_PROCESS_INFO_EXW, WTS_PROCESS_INFOW, WTS_SESSION_INFO_1W, WTS_TYPE_CLASS, WTSClientAddress,
    WTSClientProtocolType, WTSCloseServer, WTSDisconnectSession, WTSEnumerateProcessesExW, WTSEnumerateProcessesW,
    WTSEnumerateSessionsExW, WTSFreeMemory, WTSFreeMemoryExW, WTSINFOEXW, WTSLogoffSession, WTSOpenServerW,
    WTSQuerySessionInformationW, WTSSendMessageW, WTSSessionId, WTSSessionInfoEx, WTSTerminateProcess,
    WTSTypeProcessInfoLevel1, WTSTypeSessionInfoLevel1,
};
use windows_sys::Win32::System::SystemInformation::{
    COMPUTER_NAME_FORMAT, ComputerNameDnsFullyQualified, ComputerNameDnsHostname, ComputerNameNetBIOS,
    ComputerNamePhysicalDnsFullyQualified, ComputerNamePhysicalDnsHostname, ComputerNamePhysicalNetBIOS,
    GetComputerNameExW, GetTickCount64,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetCurrentProcessId, OpenProcess, OpenProcessToken, PROCESS_SYNCHRONIZE, PROCESS_TERMINATE,
    TerminateProcess, WaitForSingleObject,
};
use windows_sys::Win32::System::WindowsProgramming::QueryUnbiasedInterruptTime;
use windows_sys::Win32::UI::WindowsAndMessaging::MB_OK;

pub use windows_sys::Win32::System::RemoteDesktop::{WTSClientName, WTSDomainName, WTSUserName};

use super::convert::{RawClientAddress, RawSessionTimes};
use crate::idle::Wake;

/// `WTS_ANY_SESSION` from `wtsapi32.h`, which windows-sys does not define: enumerate the
/// processes of every session.
const WTS_ANY_SESSION: u32 = 0xFFFF_FFFE;

/// The exit code a terminated process gets.
const TERMINATED_EXIT_CODE: u32 = 1;

/// A NUL-terminated UTF-16 copy of `s`.
pub(crate) fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// The string in `buf` up to its first NUL (or all of it).
pub(crate) fn from_wide_buf(buf: &[u16]) -> String {
    let len = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..len])
}

/// Copies a NUL-terminated UTF-16 string; an empty string for a null pointer.
///
/// # Safety
///
/// `p` must be null or point to a readable, NUL-terminated UTF-16 string.
unsafe fn from_wide_ptr(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut len = 0;
    // SAFETY: the caller promises a NUL-terminated string, so every index up to and
    // including the NUL is readable.
    unsafe {
        while *p.add(len) != 0 {
            len += 1;
        }
        String::from_utf16_lossy(std::slice::from_raw_parts(p, len))
    }
}

/// The calling thread's last Win32 error.
fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// The outcome of a sizing call (null buffers, zero lengths): failing with
/// `ERROR_INSUFFICIENT_BUFFER` is what it is for; any other failure is an error.
fn sizing_result(ok: BOOL) -> io::Result<()> {
    if ok == FALSE {
        let err = last_error();
        if err.raw_os_error() != Some(ERROR_INSUFFICIENT_BUFFER as i32) {
            return Err(err);
        }
    }
    Ok(())
}

/// A buffer the WTS API allocated, freed with `WTSFreeMemory`.
struct WtsMemory(*mut c_void);

impl Drop for WtsMemory {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from a WTS function documented to be freed with
            // WTSFreeMemory, and it is freed exactly once, here.
            unsafe { WTSFreeMemory(self.0) };
        }
    }
}

/// The array `WTSEnumerateSessionsExW` or `WTSEnumerateProcessesExW` allocated at level 1,
/// freed with `WTSFreeMemoryExW(class, ..)` (`WTSTypeSessionInfoLevel1` or
/// `WTSTypeProcessInfoLevel1`), which also frees the names and SIDs the entries point to
/// (`WTSFreeMemory` is not enough for it).
struct WtsMemoryEx<T> {
    class: WTS_TYPE_CLASS,
    ptr: *mut T,
    count: u32,
}

impl<T> WtsMemoryEx<T> {
    /// The entries `api` returned: none for a null or empty answer, an error for an answer
    /// at another `level` than 1.
    fn entries(&self, api: &str, level: u32) -> io::Result<&[T]> {
        if self.ptr.is_null() || self.count == 0 {
            return Ok(&[]);
        }
        if level != 1 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{api} answered level {level}")));
        }
        // SAFETY: on success the buffer holds count level-1 entries of T, alive until self
        // drops.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr, self.count as usize) })
    }
}

impl<T> Drop for WtsMemoryEx<T> {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: ptr and count are what the level-1 call of class returned, freed
            // exactly once.
            unsafe { WTSFreeMemoryExW(self.class, self.ptr.cast(), self.count) };
        }
    }
}

/// A buffer allocated with `LocalAlloc` by the OS (`ConvertSidToStringSidW`), freed with
/// `LocalFree`.
pub(crate) struct LocalMemory(pub(crate) *mut c_void);

impl Drop for LocalMemory {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from an API documented to be freed with LocalFree,
            // freed exactly once.
            unsafe { LocalFree(self.0) };
        }
    }
}

/// A buffer the NetApi allocated, freed with `NetApiBufferFree`.
struct NetBuffer(*mut u8);

impl Drop for NetBuffer {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from NetWkstaGetInfo, freed exactly once.
            unsafe { NetApiBufferFree(self.0.cast()) };
        }
    }
}

/// A kernel object handle, closed with `CloseHandle`.
#[derive(Debug)]
pub(crate) struct Handle(pub(crate) HANDLE);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by this module and is closed exactly once.
        unsafe { CloseHandle(self.0) };
    }
}

/// A security identifier, copied out of an OS buffer into memory this process owns.
///
/// The words are `u32` so that the copy has the 4-byte alignment a `SID` needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sid {
    words: Vec<u32>,
}

impl Sid {
    /// Copies the SID at `psid`.
    ///
    /// # Safety
    ///
    /// `psid` must be null or point to a readable SID.
    pub(crate) unsafe fn copy_from(psid: PSID) -> io::Result<Sid> {
        // SAFETY: the caller promises psid is null or a readable SID; IsValidSid checks the
        // revision and the sub-authority count before GetLengthSid trusts them.
        let len = unsafe {
            if psid.is_null() || IsValidSid(psid) == FALSE {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "not a valid SID"));
            }
            GetLengthSid(psid)
        };
        let mut words = vec![0u32; (len as usize).div_ceil(4)];
        // SAFETY: words holds at least len bytes, and psid is a valid SID of len bytes.
        if unsafe { CopySid(len, words.as_mut_ptr().cast(), psid) } == FALSE {
            return Err(last_error());
        }
        Ok(Sid { words })
    }

    /// A pointer for APIs that read a SID. They take a `PSID` (a mutable pointer) but do not
    /// write through it.
    pub(crate) fn as_psid(&self) -> PSID {
        self.words.as_ptr().cast_mut().cast()
    }

    /// The string form, `S-1-5-21-…`, from `ConvertSidToStringSidW`.
    ///
    /// # Errors
    ///
    /// The OS error of `ConvertSidToStringSidW`.
    pub fn to_string_sid(&self) -> io::Result<String> {
        let mut out: *mut u16 = ptr::null_mut();
        // SAFETY: self holds a valid SID; out receives a LocalAlloc'd string that the
        // guard frees.
        if unsafe { ConvertSidToStringSidW(self.as_psid(), &mut out) } == FALSE {
            return Err(last_error());
        }
        let guard = LocalMemory(out.cast());
        // SAFETY: on success out is a NUL-terminated UTF-16 string, alive until guard drops.
        let text = unsafe { from_wide_ptr(out) };
        drop(guard);
        Ok(text)
    }
}

/// One entry of `WTSEnumerateSessionsExW` at level 1 (`WTS_SESSION_INFO_1W`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    /// `SessionId`.
    pub id: u32,
    /// `pSessionName`: the window station (`Console`, `RDP-Tcp#3`, `Services`).
    pub station: String,
    /// `State`, a `WTS_CONNECTSTATE_CLASS` value.
    pub state: i32,
    /// `pUserName`; empty when no user is logged on (the API gives NULL then).
    pub user: String,
    /// `pDomainName`; empty when no user is logged on.
    pub domain: String,
}

/// One entry of `WTSEnumerateProcessesExW` at level 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessEntry {
    /// `ProcessId`.
    pub pid: u32,
    /// `SessionId`.
    pub session_id: u32,
    /// `pProcessName`.
    pub name: String,
    /// `pUserSid`; `None` when the server gave none.
    pub sid: Option<Sid>,
}

/// An RD Session Host server: this machine (`WTS_CURRENT_SERVER_HANDLE`) or one opened with
/// `WTSOpenServerW`, closed with `WTSCloseServer` on drop.
#[derive(Debug)]
pub struct Server {
    handle: HANDLE,
    /// The remote server's name; `None` for this machine.
    name: Option<String>,
}

impl Server {
    /// This machine.
    pub fn local() -> Server {
        Server { handle: WTS_CURRENT_SERVER_HANDLE, name: None }
    }

    /// Opens the RD Session Host server `name`.
    ///
    /// `WTSOpenServerW` does not contact the server; an unreachable one shows on the first
    /// call that uses the handle.
    ///
    /// # Errors
    ///
    /// The OS error when no handle could be made.
    pub fn open(name: &str) -> io::Result<Server> {
        let wname = wide(name);
        // SAFETY: wname is NUL-terminated and outlives the call.
        let handle = unsafe { WTSOpenServerW(wname.as_ptr()) };
        if handle.is_null() {
            return Err(last_error());
        }
        Ok(Server { handle, name: Some(name.to_string()) })
    }

    /// The remote server's name, `None` for this machine.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The server name as the account and NetApi functions take it: null for this machine.
    fn system_name(&self) -> Option<Vec<u16>> {
        self.name.as_deref().map(wide)
    }

    /// Lists the sessions, with their user, domain, station and state, in one call:
    /// `WTSEnumerateSessionsExW` at level 1 (Windows 7 / Server 2008 R2 and later), instead of
    /// `WTSEnumerateSessionsW` and three queries per session.
    ///
    /// # Errors
    ///
    /// The OS error: an unreachable server (RPC), or access denied.
    pub fn enumerate_sessions(&self) -> io::Result<Vec<SessionEntry>> {
        // "pLevel: This parameter is reserved. Always set this parameter to one." On return
        // it holds the level of the answer.
        let mut level = 1u32;
        let mut info: *mut WTS_SESSION_INFO_1W = ptr::null_mut();
        let mut count = 0u32;
        // SAFETY: the out-pointers are valid; the handle is open for self's lifetime.
        if unsafe { WTSEnumerateSessionsExW(self.handle, &mut level, 0, &mut info, &mut count) } == FALSE {
            return Err(last_error());
        }
        let guard = WtsMemoryEx { class: WTSTypeSessionInfoLevel1, ptr: info, count };
        let entries = guard.entries("WTSEnumerateSessionsExW", level)?;
        Ok(entries
            .iter()
            .map(|e| {
                // SAFETY: each pointer is null or a NUL-terminated string inside the buffer
                // the guard keeps alive; all are copied out.
                let (station, user, domain) = unsafe {
                    (from_wide_ptr(e.pSessionName), from_wide_ptr(e.pUserName), from_wide_ptr(e.pDomainName))
                };
                SessionEntry { id: e.SessionId, station, state: e.State, user, domain }
            })
            .collect())
    }

    /// Runs `WTSQuerySessionInformationW` and hands the buffer and its size in bytes to
    /// `read`, before the buffer is freed.
    fn query<T>(
        &self,
        id: u32,
        class: WTS_INFO_CLASS,
        read: impl FnOnce(*const u8, usize) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut buf: *mut u16 = ptr::null_mut();
        let mut bytes = 0u32;
        // SAFETY: the out-pointers are valid; the handle is open for self's lifetime.
        if unsafe { WTSQuerySessionInformationW(self.handle, id, class, &mut buf, &mut bytes) } == FALSE {
            return Err(last_error());
        }
        let _guard = WtsMemory(buf.cast());
        if buf.is_null() {
            return read(ptr::null(), 0);
        }
        read(buf.cast_const().cast(), bytes as usize)
    }

    /// Reads a fixed-size answer of type `T` from a query, checking the size the server
    /// reported.
    fn query_value<T: Copy>(&self, id: u32, class: WTS_INFO_CLASS) -> io::Result<T> {
        self.query(id, class, |p, bytes| {
            if p.is_null() || bytes < size_of::<T>() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the server answered {bytes} bytes, expected {}", size_of::<T>()),
                ));
            }
            // SAFETY: p points to at least size_of::<T>() readable bytes; T is plain data
            // (Copy, repr(C)); the WTS buffer need not be aligned for T, so read unaligned.
            Ok(unsafe { ptr::read_unaligned(p.cast::<T>()) })
        })
    }

    /// A string-valued session property (`WTSUserName`, `WTSDomainName`, `WTSClientName`).
    ///
    /// # Errors
    ///
    /// The OS error; `ERROR_CTX_WINSTATION_NOT_FOUND` when the session is gone.
    pub fn query_string(&self, id: u32, class: WTS_INFO_CLASS) -> io::Result<String> {
        self.query(id, class, |p, bytes| {
            if p.is_null() {
                return Ok(String::new());
            }
            // SAFETY: the server returned bytes readable bytes of UTF-16; the string ends at
            // the first NUL or at the end of the buffer, whichever comes first.
            let units = unsafe { std::slice::from_raw_parts(p.cast::<u16>(), bytes / 2) };
            Ok(from_wide_buf(units))
        })
    }

    /// The times of `WTSSessionInfoEx` (`WTSINFOEX_LEVEL1_W`).
    ///
    /// # Errors
    ///
    /// The OS error, or `InvalidData` for an answer at a level other than 1.
    pub fn query_times(&self, id: u32) -> io::Result<RawSessionTimes> {
        let info: WTSINFOEXW = self.query_value(id, WTSSessionInfoEx)?;
        if info.Level != 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("WTSSessionInfoEx answered level {}", info.Level),
            ));
        }
        // SAFETY: Level 1 says the union holds WTSInfoExLevel1, its only member.
        let l1 = unsafe { info.Data.WTSInfoExLevel1 };
        Ok(RawSessionTimes {
            logon_time: l1.LogonTime,
            connect_time: l1.ConnectTime,
            disconnect_time: l1.DisconnectTime,
            last_input_time: l1.LastInputTime,
            current_time: l1.CurrentTime,
        })
    }

    /// `WTSClientAddress`.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn query_client_address(&self, id: u32) -> io::Result<RawClientAddress> {
        let a: WTS_CLIENT_ADDRESS = self.query_value(id, WTSClientAddress)?;
        Ok(RawClientAddress { family: a.AddressFamily, address: a.Address })
    }

    /// `WTSClientProtocolType`: 0 console, 1 ICA, 2 RDP.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn query_protocol(&self, id: u32) -> io::Result<u16> {
        self.query_value::<u16>(id, WTSClientProtocolType)
    }

    /// Asks the server to log session `id` off, without waiting (`bWait = FALSE`: waiting
    /// is known to hang). The caller verifies that the session is gone.
    ///
    /// # Errors
    ///
    /// The OS error: access denied without the Reset permission, or
    /// `ERROR_CTX_WINSTATION_NOT_FOUND` for a session that is gone.
    pub fn logoff_session(&self, id: u32) -> io::Result<()> {
        // SAFETY: plain values; the handle is open for self's lifetime.
        if unsafe { WTSLogoffSession(self.handle, id, FALSE) } == FALSE {
            return Err(last_error());
        }
        Ok(())
    }

    /// Disconnects session `id`, keeping it, without waiting (bWait = FALSE).
    ///
    /// # Errors
    ///
    /// The OS error: access denied without the Disconnect permission, or no such session.
    pub fn disconnect_session(&self, id: u32) -> io::Result<()> {
        // SAFETY: plain values; the handle is open for self's lifetime.
        if unsafe { WTSDisconnectSession(self.handle, id, FALSE) } == FALSE {
            return Err(last_error());
        }
        Ok(())
    }

    /// Shows a message box (OK button) in session `id`, without waiting for an answer; the
    /// box closes itself after `timeout_seconds`.
    ///
    /// # Errors
    ///
    /// The OS error: access denied without the Message permission.
    pub fn send_message(&self, id: u32, title: &str, text: &str, timeout_seconds: u32) -> io::Result<()> {
        let wtitle = wide(title);
        let wtext = wide(text);
        // The lengths are in bytes, without the NUL.
        let title_bytes = u32::try_from((wtitle.len() - 1) * 2).unwrap_or(u32::MAX);
        let text_bytes = u32::try_from((wtext.len() - 1) * 2).unwrap_or(u32::MAX);
        let mut response = 0;
        // SAFETY: both strings are NUL-terminated, their byte lengths are right, and they
        // outlive the call; response is a valid out-pointer.
        let ok = unsafe {
            WTSSendMessageW(
                self.handle,
                id,
                wtitle.as_ptr(),
                title_bytes,
                wtext.as_ptr(),
                text_bytes,
                MB_OK,
                timeout_seconds,
                &mut response,
                FALSE,
            )
        };
        if ok == FALSE {
            return Err(last_error());
        }
        Ok(())
    }

    /// Lists every process on the server with `WTSEnumerateProcessesExW` at level 1.
    ///
    /// # Errors
    ///
    /// The OS error; access denied for a caller that is not an administrator there (or
    /// only its own processes: see [`super::convert::shows_system_processes`]).
    pub fn enumerate_processes(&self) -> io::Result<Vec<ProcessEntry>> {
        self.enumerate_processes_in(WTS_ANY_SESSION)
    }

    /// Lists the processes of one session (`session`), or of every session
    /// (`WTS_ANY_SESSION`), with `WTSEnumerateProcessesExW` at level 1.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn enumerate_processes_in(&self, session: u32) -> io::Result<Vec<ProcessEntry>> {
        let mut level = 1u32;
        let mut info: *mut u16 = ptr::null_mut();
        let mut count = 0u32;
        // SAFETY: the out-pointers are valid; level 1 asks for WTS_PROCESS_INFO_EXW entries.
        let ok = unsafe { WTSEnumerateProcessesExW(self.handle, &mut level, session, &mut info, &mut count) };
        if ok == FALSE {
            let err = last_error();
            if err.raw_os_error() == Some(ERROR_CALL_NOT_IMPLEMENTED as i32) {
                let all = self.enumerate_processes_v1()?;
                return Ok(all.into_iter().filter(|p| session == WTS_ANY_SESSION || p.session_id == session).collect());
            }
            return Err(err);
        }
        let guard = WtsMemoryEx { class: WTSTypeProcessInfoLevel1, ptr: info.cast::<WTS_PROCESS_INFO_EXW>(), count };
        let entries = guard.entries("WTSEnumerateProcessesExW", level)?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            // SAFETY: pProcessName is null or a NUL-terminated string, and pUserSid null or a
            // SID, both inside the buffer the guard keeps alive; both are copied out.
            let (name, sid) = unsafe { (from_wide_ptr(e.pProcessName), Sid::copy_from(e.pUserSid).ok()) };
            out.push(ProcessEntry { pid: e.ProcessId, session_id: e.SessionId, name, sid });
        }
        Ok(out)
    }

    /// Lists the processes with the older `WTSEnumerateProcessesW`, for a server that does
    /// not implement the Ex call (Wine implements only this one, locally, without SIDs).
    fn enumerate_processes_v1(&self) -> io::Result<Vec<ProcessEntry>> {
        let mut info: *mut WTS_PROCESS_INFOW = ptr::null_mut();
        let mut count = 0u32;
        // SAFETY: the out-pointers are valid; the handle is open for self's lifetime.
        if unsafe { WTSEnumerateProcessesW(self.handle, 0, 1, &mut info, &mut count) } == FALSE {
            return Err(last_error());
        }
        let _guard = WtsMemory(info.cast());
        if info.is_null() || count == 0 {
            return Ok(Vec::new());
        }
        // SAFETY: on success info points to count entries, alive until _guard drops.
        let entries = unsafe { std::slice::from_raw_parts(info, count as usize) };
        Ok(entries
            .iter()
            .map(|e| ProcessEntry {
                pid: e.ProcessId,
                session_id: e.SessionId,
                // SAFETY: pProcessName is null or a NUL-terminated string inside the buffer
                // _guard keeps alive; it is copied out.
                name: unsafe { from_wide_ptr(e.pProcessName) },
                // SAFETY: pUserSid is null or a SID inside the same buffer; it is copied out.
                sid: unsafe { Sid::copy_from(e.pUserSid) }.ok(),
            })
            .collect())
    }

    /// Terminates process `pid` on a remote server with `WTSTerminateProcess`, which takes a
    /// bare pid (a process handle cannot cross machines): the caller must have confirmed the
    /// pid's owner as late as it can. On this machine use [`ProcessHandle`].
    ///
    /// # Errors
    ///
    /// The OS error: `ERROR_INVALID_PARAMETER` for a pid that no longer exists, access
    /// denied for a protected (or exiting) process.
    pub fn terminate_remote_process(&self, pid: u32) -> io::Result<()> {
        // SAFETY: plain values; the handle is open for self's lifetime.
        if unsafe { WTSTerminateProcess(self.handle, pid, TERMINATED_EXIT_CODE) } == FALSE {
            return Err(last_error());
        }
        Ok(())
    }

    /// The server's NetBIOS computer name: the domain its local accounts are reported in.
    ///
    /// # Errors
    ///
    /// The OS error of `GetComputerNameExW`, or the NetApi status of `NetWkstaGetInfo`
    /// for a remote server.
    pub fn computer_name(&self) -> io::Result<String> {
        let Some(system) = self.system_name() else {
            return local_computer_name();
        };
        let mut buf: *mut u8 = ptr::null_mut();
        // SAFETY: system is NUL-terminated; buf receives a NetApi buffer the guard frees.
        let status = unsafe { NetWkstaGetInfo(system.as_ptr(), 100, &mut buf) };
        let guard = NetBuffer(buf);
        if status != 0 {
            return Err(io::Error::from_raw_os_error(status as i32));
        }
        if guard.0.is_null() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "NetWkstaGetInfo returned no data"));
        }
        // SAFETY: at level 100 the buffer is a WKSTA_INFO_100 whose strings live in the
        // same buffer, alive until guard drops.
        Ok(unsafe { from_wide_ptr((*guard.0.cast::<WKSTA_INFO_100>()).wki100_computername) })
    }

    /// The account (name, domain) of `sid`, resolved by the server (`LookupAccountSidW`).
    ///
    /// # Errors
    ///
    /// The OS error: `ERROR_NONE_MAPPED` for a SID no account has.
    pub fn lookup_account_sid(&self, sid: &Sid) -> io::Result<(String, String)> {
        let system = self.system_name();
        let system_ptr = system.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        let mut name_len = 0u32;
        let mut domain_len = 0u32;
        let mut use_: SID_NAME_USE = 0;
        // SAFETY: a sizing call: null buffers with zero lengths; the lengths are valid
        // out-pointers.
        let ok = unsafe {
            LookupAccountSidW(
                system_ptr,
                sid.as_psid(),
                ptr::null_mut(),
                &mut name_len,
                ptr::null_mut(),
                &mut domain_len,
                &mut use_,
            )
        };
        sizing_result(ok)?;
        let mut name = vec![0u16; name_len.max(1) as usize];
        let mut domain = vec![0u16; domain_len.max(1) as usize];
        name_len = name.len() as u32;
        domain_len = domain.len() as u32;
        // SAFETY: the buffers hold the lengths passed with them.
        let ok = unsafe {
            LookupAccountSidW(
                system_ptr,
                sid.as_psid(),
                name.as_mut_ptr(),
                &mut name_len,
                domain.as_mut_ptr(),
                &mut domain_len,
                &mut use_,
            )
        };
        if ok == FALSE {
            return Err(last_error());
        }
        Ok((from_wide_buf(&name), from_wide_buf(&domain)))
    }

    /// The SID of the account `name` (`DOMAIN\user` or `user`), resolved by the server
    /// (`LookupAccountNameW`).
    ///
    /// # Errors
    ///
    /// The OS error: `ERROR_NONE_MAPPED` for an unknown account.
    pub fn lookup_account_name(&self, name: &str) -> io::Result<Sid> {
        let system = self.system_name();
        let system_ptr = system.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        let wname = wide(name);
        let mut sid_bytes = 0u32;
        let mut domain_len = 0u32;
        let mut use_: SID_NAME_USE = 0;
        // SAFETY: a sizing call: null buffers with zero lengths; wname is NUL-terminated.
        let ok = unsafe {
            LookupAccountNameW(
                system_ptr,
                wname.as_ptr(),
                ptr::null_mut(),
                &mut sid_bytes,
                ptr::null_mut(),
                &mut domain_len,
                &mut use_,
            )
        };
        sizing_result(ok)?;
        let mut words = vec![0u32; (sid_bytes.max(4) as usize).div_ceil(4)];
        let mut domain = vec![0u16; domain_len.max(1) as usize];
        sid_bytes = (words.len() * 4) as u32;
        domain_len = domain.len() as u32;
        // SAFETY: the buffers hold the lengths passed with them; words is 4-byte aligned.
        let ok = unsafe {
            LookupAccountNameW(
                system_ptr,
                wname.as_ptr(),
                words.as_mut_ptr().cast(),
                &mut sid_bytes,
                domain.as_mut_ptr(),
                &mut domain_len,
                &mut use_,
            )
        };
        if ok == FALSE {
            return Err(last_error());
        }
        Ok(Sid { words })
    }
}

/// A process on this machine, opened for termination. While the handle is open the process
/// object stays, so its pid cannot name another process: whatever is confirmed about the pid
/// after the open (its owner, in a fresh listing) holds for this handle.
#[derive(Debug)]
pub struct ProcessHandle {
    handle: Handle,
    pid: u32,
}

impl ProcessHandle {
    /// `OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE)`.
    ///
    /// # Errors
    ///
    /// The OS error: `ERROR_INVALID_PARAMETER` for a pid no process has, access denied for
    /// a protected process (or another user's, without `SeDebugPrivilege`).
    pub fn open(pid: u32) -> io::Result<ProcessHandle> {
        // SAFETY: plain values; a null result is checked.
        let handle = unsafe { OpenProcess(PROCESS_TERMINATE | PROCESS_SYNCHRONIZE, FALSE, pid) };
        if handle.is_null() {
            return Err(last_error());
        }
        Ok(ProcessHandle { handle: Handle(handle), pid })
    }

    /// The pid the handle was opened for.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `TerminateProcess` through the handle. Termination is asynchronous: the process may
    /// linger for a moment.
    ///
    /// # Errors
    ///
    /// The OS error; access denied also for a process that has already exited while some
    /// handle (this one) keeps it (see [`ProcessHandle::has_exited`]).
    pub fn terminate(&self) -> io::Result<()> {
        // SAFETY: the handle is valid and has PROCESS_TERMINATE access.
        if unsafe { TerminateProcess(self.handle.0, TERMINATED_EXIT_CODE) } == FALSE {
            return Err(last_error());
        }
        Ok(())
    }

    /// Whether the process has exited (a wait with a zero timeout on its handle).
    pub fn has_exited(&self) -> bool {
        self.wait(0)
    }

    /// Waits up to `ms` milliseconds for the process to exit; whether it has.
    pub fn wait(&self, ms: u32) -> bool {
        // SAFETY: the handle is valid and has SYNCHRONIZE access.
        unsafe { WaitForSingleObject(self.handle.0, ms) == WAIT_OBJECT_0 }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.name.is_some() {
            // SAFETY: the handle came from WTSOpenServerW and is closed exactly once.
            unsafe { WTSCloseServer(self.handle) };
        }
    }
}

/// This machine's NetBIOS name (`GetComputerNameExW(ComputerNameNetBIOS)`).
fn local_computer_name() -> io::Result<String> {
    computer_name_ex(ComputerNameNetBIOS)
}

/// One of this machine's names, `GetComputerNameExW(format)`.
fn computer_name_ex(format: COMPUTER_NAME_FORMAT) -> io::Result<String> {
    let mut buf = vec![0u16; 64];
    loop {
        let mut len = buf.len() as u32;
        // SAFETY: buf holds len UTF-16 units.
        if unsafe { GetComputerNameExW(format, buf.as_mut_ptr(), &mut len) } != FALSE {
            return Ok(from_wide_buf(&buf[..len as usize]));
        }
        let err = last_error();
        // On ERROR_MORE_DATA, len is the size needed, NUL included.
        if err.raw_os_error() != Some(ERROR_MORE_DATA as i32) || len as usize <= buf.len() {
            return Err(err);
        }
        buf.resize(len as usize, 0);
    }
}

/// This machine's own names, for telling `--server` names of this machine from remote ones:
/// the NetBIOS name, the DNS host name and the fully qualified DNS name, each also in its
/// physical form (a cluster node's own, where the logical one is the cluster's). Names that
/// cannot be read are left out.
pub fn local_names() -> Vec<String> {
    let formats = [
        ComputerNameNetBIOS,
        ComputerNameDnsHostname,
        ComputerNameDnsFullyQualified,
        ComputerNamePhysicalNetBIOS,
        ComputerNamePhysicalDnsHostname,
        ComputerNamePhysicalDnsFullyQualified,
    ];
    let mut names: Vec<String> = Vec::new();
    for name in formats.into_iter().filter_map(|f| computer_name_ex(f).ok()) {
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The WTS session this process runs in: `WTSQuerySessionInformationW(WTS_CURRENT_SESSION,
/// WTSSessionId)` on this machine, or `ProcessIdToSessionId` where WTS does not answer.
///
/// # Errors
///
/// The OS error of `ProcessIdToSessionId`.
pub fn current_session_id() -> io::Result<u32> {
    if let Ok(id) = Server::local().query_value::<u32>(WTS_CURRENT_SESSION, WTSSessionId) {
        return Ok(id);
    }
    let mut session = 0u32;
    // SAFETY: GetCurrentProcessId cannot fail; session is a valid out-pointer.
    if unsafe { ProcessIdToSessionId(GetCurrentProcessId(), &mut session) } == FALSE {
        return Err(last_error());
    }
    Ok(session)
}

/// `CallNtPowerInformation(LastWakeTime)`: the interrupt time (100 ns units since boot,
/// sleep included) of the last wake from sleep; 0 when the machine has not slept.
///
/// # Errors
///
/// The NTSTATUS of a failed call, as an error (Wine does not implement it).
fn last_wake_time() -> io::Result<u64> {
    let mut value = 0u64;
    // SAFETY: LastWakeTime takes no input and writes one ULONGLONG into the output buffer,
    // which is `value`, of that size.
    let status = unsafe {
        CallNtPowerInformation(LastWakeTime, ptr::null(), 0, (&mut value as *mut u64).cast(), size_of::<u64>() as u32)
    };
    if status != 0 {
        return Err(io::Error::other(format!("CallNtPowerInformation(LastWakeTime) returned {status:#x}")));
    }
    Ok(value)
}

/// When this machine last woke from sleep ([`super::convert::wake_of`]).
pub fn wake() -> Wake {
    // SAFETY: GetTickCount64 has no arguments and cannot fail.
    let ticks = unsafe { GetTickCount64() };
    let mut unbiased = 0u64;
    // SAFETY: unbiased is a valid out-pointer.
    let unbiased = (unsafe { QueryUnbiasedInterruptTime(&mut unbiased) } != FALSE).then_some(unbiased);
    super::convert::wake_of(last_wake_time().ok(), ticks, unbiased)
}

/// This process's token, opened with `access`.
fn own_token(access: u32) -> io::Result<Handle> {
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no closing; token is a
    // valid out-pointer.
    if unsafe { OpenProcessToken(GetCurrentProcess(), access, &mut token) } == FALSE {
        return Err(last_error());
    }
    Ok(Handle(token))
}

/// The user SID of this process's token (`GetTokenInformation(TokenUser)`): who the tool
/// runs as, whatever the environment says.
///
/// # Errors
///
/// The OS error of `OpenProcessToken` or `GetTokenInformation`.
pub fn token_user() -> io::Result<Sid> {
    let token = own_token(TOKEN_QUERY)?;
    let mut needed = 0u32;
    // SAFETY: a sizing call: a null buffer of length 0; needed is a valid out-pointer.
    sizing_result(unsafe { GetTokenInformation(token.0, TokenUser, ptr::null_mut(), 0, &mut needed) })?;
    // u64 words: the TOKEN_USER at the start needs pointer alignment.
    let mut buf = vec![0u64; (needed as usize).div_ceil(8).max(1)];
    let len = (buf.len() * 8) as u32;
    // SAFETY: buf holds len bytes, aligned for TOKEN_USER; the token has TOKEN_QUERY.
    if unsafe { GetTokenInformation(token.0, TokenUser, buf.as_mut_ptr().cast(), len, &mut needed) } == FALSE {
        return Err(last_error());
    }
    // SAFETY: on success the buffer starts with a TOKEN_USER whose Sid points into the
    // same buffer, alive until the copy is made.
    unsafe { Sid::copy_from((*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid) }
}

/// Whether this process's token holds the well-known group or account `kind`
/// (`CheckTokenMembership`, which counts a deny-only group, as in a UAC-filtered token,
/// as not held).
fn token_is_member(kind: WELL_KNOWN_SID_TYPE) -> io::Result<bool> {
    let mut words = [0u32; (SECURITY_MAX_SID_SIZE as usize).div_ceil(4)];
    let mut len = SECURITY_MAX_SID_SIZE;
    // SAFETY: words holds SECURITY_MAX_SID_SIZE bytes, 4-byte aligned; no domain SID is
    // needed for these well-known SIDs.
    if unsafe { CreateWellKnownSid(kind, ptr::null_mut(), words.as_mut_ptr().cast(), &mut len) } == FALSE {
        return Err(last_error());
    }
    let mut member: BOOL = FALSE;
    // SAFETY: a null token means this thread's (or process's) own; the SID was just built;
    // member is a valid out-pointer.
    if unsafe { CheckTokenMembership(ptr::null_mut(), words.as_mut_ptr().cast(), &mut member) } == FALSE {
        return Err(last_error());
    }
    Ok(member != FALSE)
}

/// Whether this process may act as an administrator here: its token holds
/// `BUILTIN\Administrators` enabled (an elevated administrator), or it is `SYSTEM`.
/// `TokenIsElevated` alone is not enough: Backup Operators and similar groups get an
/// elevated token too, and see only part of the sessions and processes.
///
/// # Errors
///
/// The OS error of `CreateWellKnownSid` or `CheckTokenMembership`.
pub fn token_is_admin() -> io::Result<bool> {
    Ok(token_is_member(WinBuiltinAdministratorsSid)? || token_is_member(WinLocalSystemSid)?)
}

/// Enables `SeDebugPrivilege` in this process's token, which an administrator needs to open
/// other users' processes for termination (SYSTEM has it enabled already). Returns whether
/// the token holds it: `Ok(false)` when the token does not have the privilege at all.
///
/// # Errors
///
/// The OS error of `OpenProcessToken`, `LookupPrivilegeValueW` or `AdjustTokenPrivileges`.
pub fn enable_debug_privilege() -> io::Result<bool> {
    let token = own_token(TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY)?;
    let mut luid = LUID { LowPart: 0, HighPart: 0 };
    // SAFETY: a null system name means this machine; the name is a static NUL-terminated
    // string; luid is a valid out-pointer.
    if unsafe { LookupPrivilegeValueW(ptr::null(), SE_DEBUG_NAME, &mut luid) } == FALSE {
        return Err(last_error());
    }
    let privileges = TOKEN_PRIVILEGES {
        PrivilegeCount: 1,
        Privileges: [LUID_AND_ATTRIBUTES { Luid: luid, Attributes: SE_PRIVILEGE_ENABLED }],
    };
    // SAFETY: the token has TOKEN_ADJUST_PRIVILEGES; one privilege is passed with its size;
    // the previous state is not asked for.
    let ok = unsafe {
        AdjustTokenPrivileges(
            token.0,
            FALSE,
            &privileges,
            size_of::<TOKEN_PRIVILEGES>() as u32,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    // AdjustTokenPrivileges succeeds even when it could not enable the privilege; the last
    // error then says ERROR_NOT_ALL_ASSIGNED. Read it before anything else runs.
    // SAFETY: no arguments.
    let code = unsafe { GetLastError() };
    super::convert::debug_privilege_held(ok != FALSE, code).map_err(|code| io::Error::from_raw_os_error(code as i32))
}

#[cfg(test)]
mod tests {
    use super::super::convert as wts_convert;
    use super::*;
    use windows_sys::Win32::Foundation::{
        ERROR_ACCESS_DENIED, ERROR_CALL_NOT_IMPLEMENTED, ERROR_CTX_WINSTATION_NOT_FOUND, ERROR_INVALID_PARAMETER,
        ERROR_NONE_MAPPED,
    };
    use windows_sys::Win32::System::RemoteDesktop as rd;

    #[test]
    fn connect_state_table_matches_windows_sys() {
        let expected = [
            ("WTSActive", rd::WTSActive),
            ("WTSConnected", rd::WTSConnected),
            ("WTSConnectQuery", rd::WTSConnectQuery),
            ("WTSShadow", rd::WTSShadow),
            ("WTSDisconnected", rd::WTSDisconnected),
            ("WTSIdle", rd::WTSIdle),
            ("WTSListen", rd::WTSListen),
            ("WTSReset", rd::WTSReset),
            ("WTSDown", rd::WTSDown),
            ("WTSInit", rd::WTSInit),
        ];
        for (name, value) in expected {
            assert_eq!(
                wts_convert::CONNECT_STATES.iter().find(|c| c.name == name).map(|c| c.value),
                Some(value),
                "{name}"
            );
        }
    }

    #[test]
    fn error_codes_match_windows_sys() {
        use wts_convert::win32;
        assert_eq!(win32::ERROR_ACCESS_DENIED, ERROR_ACCESS_DENIED);
        assert_eq!(win32::ERROR_INVALID_PARAMETER, ERROR_INVALID_PARAMETER);
        assert_eq!(win32::ERROR_CALL_NOT_IMPLEMENTED, ERROR_CALL_NOT_IMPLEMENTED);
        assert_eq!(win32::ERROR_NONE_MAPPED, ERROR_NONE_MAPPED);
        assert_eq!(win32::ERROR_CTX_WINSTATION_NOT_FOUND, ERROR_CTX_WINSTATION_NOT_FOUND);
    }

    // The tests below call the real OS (or Wine), and act only on processes they start.

    #[test]
    fn this_process_is_listed_with_its_owner() {
        let server = Server::local();
        let me = std::process::id();
        let procs = server.enumerate_processes().expect("enumerate processes");
        let mine = procs.iter().find(|p| p.pid == me).expect("this process is listed");
        assert_eq!(Some(mine.session_id), current_session_id().ok());
        let sid = mine.sid.as_ref().expect("this process has an owner SID");
        let text = sid.to_string_sid().expect("SID converts to a string");
        assert!(text.starts_with("S-1-"), "{text}");
        // Name and SID resolve to each other.
        let (user, domain) = server.lookup_account_sid(sid).expect("SID resolves to an account");
        let again = server
            .lookup_account_name(&crate::model::qualified_name(&user, Some(&domain)))
            .expect("account resolves to a SID");
        assert_eq!(again.to_string_sid().unwrap(), text);
    }

    #[test]
    fn an_unknown_account_is_none_mapped() {
        let err = Server::local().lookup_account_name("nosuchuser123").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(ERROR_NONE_MAPPED as i32), "{err}");
    }

    #[test]
    fn token_and_session_queries_answer() {
        // Wine's token is an administrator's; a real test machine runs CI elevated.
        assert!(token_is_admin().expect("the token's groups are readable"), "CI runs as an administrator");
        enable_debug_privilege().expect("SeDebugPrivilege can be asked for");
        current_session_id().expect("the current session is known");
        let me = token_user().expect("the token's user").to_string_sid().unwrap();
        assert!(me.starts_with("S-1-"), "{me}");
        assert!(!Server::local().computer_name().expect("computer name").is_empty());
        let names = local_names();
        assert!(names.iter().any(|n| n.eq_ignore_ascii_case(&local_computer_name().unwrap())), "{names:?}");
        Server::local().enumerate_sessions().expect("sessions enumerate");
    }

    /// Started by the termination tests as their child; never run otherwise (it is
    /// ignored).
    #[test]
    #[ignore = "a child process for the termination tests"]
    fn sleeping_child() {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }

    fn start_child() -> std::process::Child {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "platform::windows::wts::tests::sleeping_child"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start a child")
    }

    #[test]
    fn terminate_process_ends_a_child_we_started() {
        let mut child = start_child();
        let handle = ProcessHandle::open(child.id()).expect("open the child");
        assert!(!handle.has_exited(), "the child sleeps");
        handle.terminate().expect("terminate the child");
        assert!(handle.wait(10_000), "the child exits");
        let status = child.wait().expect("wait for the child");
        assert_eq!(status.code(), Some(TERMINATED_EXIT_CODE as i32));
    }

    #[test]
    fn an_exited_process_is_told_from_a_refusal() {
        // A process that has exited, held open by a handle: TerminateProcess may fail
        // (Windows says access denied), and the handle says it has exited, which is what the
        // backend checks before calling a failure a failure.
        let mut child = start_child();
        let handle = ProcessHandle::open(child.id()).expect("open the child");
        handle.terminate().expect("terminate the child");
        child.wait().expect("wait for the child");
        assert!(handle.has_exited());
        if let Err(e) = handle.terminate() {
            let code = e.raw_os_error().unwrap_or(0) as u32;
            assert_eq!(
                wts_convert::termination_failure(code, handle.has_exited()),
                wts_convert::TerminationFailure::Exited,
                "{e}"
            );
        }
        // A pid no process has: OpenProcess says so, and that counts as gone.
        let err = ProcessHandle::open(0xFFFF_FFF0).unwrap_err();
        let code = err.raw_os_error().unwrap_or(0) as u32;
        assert_eq!(wts_convert::termination_failure(code, false), wts_convert::TerminationFailure::Exited, "{err}");
    }

    #[test]
    fn wide_strings_round_trip() {
        let w = wide("Dvořák");
        assert_eq!(w.last(), Some(&0));
        assert_eq!(from_wide_buf(&w), "Dvořák");
        // SAFETY: w is NUL-terminated.
        assert_eq!(unsafe { from_wide_ptr(w.as_ptr()) }, "Dvořák");
        // SAFETY: a null pointer is allowed.
        assert_eq!(unsafe { from_wide_ptr(ptr::null()) }, "");
    }
}

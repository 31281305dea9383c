//! Scheduled logoffs on Windows: where their files live, whom they may trust, the lock, and
//! the service that runs a job so that it outlives the caller.
//!
//! - **Where:** `%ProgramData%\logoff-users\jobs\`, created with a protected DACL (full
//!   control for SYSTEM and Administrators only; `%ProgramData%` itself lets Users create
//!   files, which must not reach in here).
//! - **Trust:** the owner must be SYSTEM, Administrators (what an elevated administrator
//!   creates) or the account the tool runs as, and no allow entry of the DACL may grant a
//!   write right to anyone else (`job_rules::untrusted`); reparse points are refused.
//! - **Lock:** `LockFileEx` (exclusive, blocking) on the lock file; released when it closes.
//! - **What runs a job:** a service of this same program, created for the job
//!   (`CreateServiceW`, own process, demand start, LocalSystem) and started at once
//!   (`StartServiceW`). The Service Control Manager starts it: it is not in the RMM
//!   agent's job object, nor its child, so the job object closing (killing everything in
//!   it) and the agent's service restarting leave it alone. It deletes its own service when
//!   the job is over (`DeleteService`), as a cancel does. Why not the alternatives: a
//!   process created with `CREATE_BREAKAWAY_FROM_JOB` exists only where the agent's job
//!   allows breakaway, which agents need not allow; a Task Scheduler task needs the COM
//!   API (`ITaskService`, which windows-sys does not carry) or `schtasks.exe` and an XML
//!   file, and Wine cannot run either, so nothing of it could be shown here.
//! - **Boot:** `BootId` under `...\Memory Management\PrefetchParameters` (Windows 8 and
//!   later), so a job of an earlier boot (whose service is gone) is known to be lost.
//!
//! Every `unsafe` here has its SAFETY line; handles and descriptors are freed by guards.

use std::ffi::c_void;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

use windows_sys::Win32::Foundation::{
    ERROR_CALL_NOT_IMPLEMENTED, ERROR_INVALID_PARAMETER, ERROR_SERVICE_DOES_NOT_EXIST, ERROR_SERVICE_SPECIFIC_ERROR,
    FALSE, HANDLE, NO_ERROR, STILL_ACTIVE,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW, GetSecurityInfo, SDDL_REVISION_1,
    SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    ACE_HEADER, ACL, ACL_SIZE_INFORMATION, AclSizeInformation, DACL_SECURITY_INFORMATION, GetAce, GetAclInformation,
    OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, SECURITY_ATTRIBUTES,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateDirectoryW, FILE_ATTRIBUTE_REPARSE_POINT, FILE_FLAG_OPEN_REPARSE_POINT, LOCKFILE_EXCLUSIVE_LOCK, LockFileEx,
};
use windows_sys::Win32::System::IO::OVERLAPPED;
use windows_sys::Win32::System::Services::{
    CloseServiceHandle, CreateServiceW, DeleteService, OpenSCManagerW, OpenServiceW, RegisterServiceCtrlHandlerExW,
    SC_HANDLE, SC_MANAGER_CONNECT, SC_MANAGER_CREATE_SERVICE, SERVICE_ACCEPT_SHUTDOWN, SERVICE_ACCEPT_STOP,
    SERVICE_CONTROL_INTERROGATE, SERVICE_CONTROL_SHUTDOWN, SERVICE_CONTROL_STOP, SERVICE_DEMAND_START,
    SERVICE_ERROR_IGNORE, SERVICE_QUERY_STATUS, SERVICE_RUNNING, SERVICE_START, SERVICE_STATUS,
    SERVICE_STATUS_CURRENT_STATE, SERVICE_STATUS_HANDLE, SERVICE_STOP_PENDING, SERVICE_STOPPED, SERVICE_TABLE_ENTRYW,
    SERVICE_WIN32_OWN_PROCESS, SetServiceStatus, StartServiceCtrlDispatcherW, StartServiceW,
};
use windows_sys::Win32::System::Threading::{GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION};
use windows_sys::core::PWSTR;

use super::job_rules::{self, Ace, DIR_SDDL};
use super::registry::{Key, Root, Value};
use super::wts::{self, Handle, LocalMemory, Sid, wide};
use crate::error::{Error, ErrorKind, Result};
use crate::schedule::{Launch, Via};

/// `DELETE`, the standard right to delete an object (here: a service).
const DELETE: u32 = 0x0001_0000;

fn wide_path(p: &Path) -> Vec<u16> {
    use std::os::windows::ffi::OsStrExt;
    p.as_os_str().encode_wide().chain(std::iter::once(0)).collect()
}

/// The default directory of job files: `%ProgramData%\logoff-users\jobs`.
pub(crate) fn default_dir() -> PathBuf {
    let base = std::env::var_os("ProgramData").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
    base.join("logoff-users").join("jobs")
}

/// The owner (as `S-1-…`) and the DACL entries of a descriptor's parts.
///
/// # Safety
///
/// `owner` and `dacl` must be null or point into a live security descriptor.
unsafe fn describe(owner: PSID, dacl: *const ACL) -> (Option<String>, Option<Vec<Ace>>) {
    // SAFETY: the caller promises owner is null or a SID inside a live descriptor.
    let owner = unsafe { Sid::copy_from(owner) }.ok().and_then(|s| s.to_string_sid().ok());
    if dacl.is_null() {
        return (owner, None);
    }
    let mut info = ACL_SIZE_INFORMATION { AceCount: 0, AclBytesInUse: 0, AclBytesFree: 0 };
    // SAFETY: dacl points to a live ACL; info is a valid out-buffer of the size passed.
    let ok = unsafe {
        GetAclInformation(
            dacl,
            (&mut info as *mut ACL_SIZE_INFORMATION).cast(),
            size_of::<ACL_SIZE_INFORMATION>() as u32,
            AclSizeInformation,
        )
    };
    if ok == FALSE {
        return (owner, Some(Vec::new()));
    }
    let mut aces = Vec::new();
    for i in 0..info.AceCount {
        let mut ace: *mut c_void = ptr::null_mut();
        // SAFETY: i is below the ACL's count; ace receives a pointer into the ACL.
        if unsafe { GetAce(dacl, i, &mut ace) } == FALSE || ace.is_null() {
            continue;
        }
        // SAFETY: every ACE starts with an ACE_HEADER.
        let header = unsafe { *ace.cast::<ACE_HEADER>() };
        // The allow and deny entries of a file's DACL: header, mask, then the SID.
        let (mask, sid) = if header.AceType <= 1 {
            // SAFETY: ACCESS_ALLOWED_ACE and ACCESS_DENIED_ACE share this layout: a u32
            // mask right after the 4-byte header, then the SID in the rest of the entry.
            unsafe {
                let mask = *ace.cast::<u8>().add(4).cast::<u32>();
                let sid = Sid::copy_from(ace.cast::<u8>().add(8).cast()).ok().and_then(|s| s.to_string_sid().ok());
                (mask, sid.unwrap_or_default())
            }
        } else {
            (0, String::new())
        };
        aces.push(Ace { kind: header.AceType, flags: header.AceFlags, mask, sid });
    }
    (owner, Some(aces))
}

fn me() -> Option<String> {
    wts::token_user().ok().and_then(|s| s.to_string_sid().ok())
}

/// The owner and DACL that `query` (`GetNamedSecurityInfoW` or `GetSecurityInfo`, asked
/// for both) writes out, with the descriptor they point into freed after they are read.
fn security_with(
    query: impl FnOnce(&mut PSID, &mut *mut ACL, &mut PSECURITY_DESCRIPTOR) -> u32,
) -> io::Result<(Option<String>, Option<Vec<Ace>>)> {
    let (mut owner, mut dacl, mut sd): (PSID, *mut ACL, PSECURITY_DESCRIPTOR) =
        (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    let err = query(&mut owner, &mut dacl, &mut sd);
    // sd is a LocalAlloc'd descriptor (or null), freed once when _guard drops.
    let _guard = LocalMemory(sd);
    if err != NO_ERROR {
        return Err(io::Error::from_raw_os_error(err as i32));
    }
    // SAFETY: owner and dacl point into sd, alive until _guard drops.
    Ok(unsafe { describe(owner, dacl) })
}

/// The owner and DACL of the object at `path` (by name).
fn security_of(path: &Path) -> io::Result<(Option<String>, Option<Vec<Ace>>)> {
    let name = wide_path(path);
    security_with(|owner, dacl, sd| {
        // SAFETY: name is NUL-terminated; the out-pointers are valid for the call.
        unsafe {
            GetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                owner,
                ptr::null_mut(),
                dacl,
                ptr::null_mut(),
                sd,
            )
        }
    })
}

/// Why the object at `path` (by name) cannot be trusted, or `None`.
fn check_named(path: &Path) -> io::Result<Option<String>> {
    let (owner, dacl) = security_of(path)?;
    Ok(job_rules::untrusted(owner.as_deref(), dacl.as_deref(), me().as_deref()))
}

/// Why the open file cannot be trusted, or `None`.
pub(crate) fn check_file(file: &File) -> Option<String> {
    match file.metadata() {
        Ok(m) if m.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 => {
            return Some("a reparse point (a link), not a plain file".into());
        }
        Ok(m) if !m.is_file() => return Some("not a plain file".into()),
        Ok(_) => {}
        Err(e) => return Some(format!("cannot be examined: {e}")),
    }
    let read = security_with(|owner, dacl, sd| {
        // SAFETY: the handle is the open file's (opened with read access, which includes
        // READ_CONTROL); the out-pointers are valid for the call.
        unsafe {
            GetSecurityInfo(
                file.as_raw_handle() as HANDLE,
                SE_FILE_OBJECT,
                OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                owner,
                ptr::null_mut(),
                dacl,
                ptr::null_mut(),
                sd,
            )
        }
    });
    let (owner, dacl) = match read {
        Ok(parts) => parts,
        Err(e) => return Some(format!("its security cannot be read: {e}")),
    };
    job_rules::untrusted(owner.as_deref(), dacl.as_deref(), me().as_deref())
}

/// Creates `dir` with the job directory's protected DACL; an existing one is left as is.
fn create_protected(dir: &Path) -> io::Result<()> {
    let sddl = wide(DIR_SDDL);
    let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: sddl is NUL-terminated; sd receives a LocalAlloc'd descriptor (freed by the
    // guard); the size out-pointer may be null.
    if unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.as_ptr(), SDDL_REVISION_1, &mut sd, ptr::null_mut())
    } == FALSE
    {
        return Err(io::Error::last_os_error());
    }
    let _guard = LocalMemory(sd);
    let attrs = SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd,
        bInheritHandle: FALSE,
    };
    let name = wide_path(dir);
    // SAFETY: name is NUL-terminated; attrs and the descriptor it points to live across
    // the call.
    if unsafe { CreateDirectoryW(name.as_ptr(), &attrs) } == FALSE {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(e);
        }
    }
    Ok(())
}

/// Makes sure `dir` exists (when `create`, with the protected DACL, as its parent
/// `logoff-users`), is a directory and not a link, and that it and its parent can be
/// trusted. Returns whether it exists.
///
/// # Errors
///
/// `PermissionDenied` when it cannot be created (not elevated); `Os` with the reason when
/// it or its parent cannot be trusted.
pub(crate) fn ensure_dir(dir: &Path, create: bool) -> Result<bool> {
    let action = || format!("use the job directory {}", dir.display());
    if create {
        if let Some(parent) = dir.parent().filter(|p| !p.exists()) {
            create_protected(parent).map_err(|e| Error::from_io(action(), &e))?;
        }
        create_protected(dir).map_err(|e| Error::from_io(action(), &e))?;
    }
    let m = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::from_io(action(), &e)),
    };
    if !m.is_dir() || m.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        return Err(Error::new(ErrorKind::Os, action(), "it is not a directory (a link or a file is refused)"));
    }
    let checks = [(dir, ""), (dir.parent().unwrap_or(dir), "its parent ")];
    for (path, which) in checks {
        match check_named(path) {
            Ok(None) => {}
            Ok(Some(why)) => {
                let cause = format!("{which}{} is {why}; refusing to trust it", path.display());
                return Err(Error::new(ErrorKind::Os, action(), cause));
            }
            Err(e) => return Err(Error::from_io(action(), &e)),
        }
    }
    Ok(true)
}

/// Opens an existing job file for reading, never through a link.
pub(crate) fn open_existing(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(FILE_FLAG_OPEN_REPARSE_POINT).open(path)
}

/// Creates a new file (it inherits the directory's DACL), failing if it exists.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create_new(true).custom_flags(FILE_FLAG_OPEN_REPARSE_POINT).open(path)
}

/// Opens (or creates) a file to append to.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).custom_flags(FILE_FLAG_OPEN_REPARSE_POINT).open(path)
}

/// Opens (or creates) a lock file (the caller checks that it can be trusted).
pub(crate) fn open_lock(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
}

/// Takes an exclusive lock on `file`, waiting for it; released when the file closes.
pub(crate) fn lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: OVERLAPPED is plain data; all zero means offset 0.
    let mut overlapped: OVERLAPPED = unsafe { std::mem::zeroed() };
    // SAFETY: the handle is the open file's (synchronous, so the call waits); the whole
    // range is locked; overlapped lives across the call.
    let ok = unsafe {
        LockFileEx(file.as_raw_handle() as HANDLE, LOCKFILE_EXCLUSIVE_LOCK, 0, u32::MAX, u32::MAX, &mut overlapped)
    };
    if ok == FALSE { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Renames `from` over `to`. A file that another program has open (an antivirus scanner,
/// an editor; before Windows 10 1709, whatever has it open) makes the rename fail with
/// access denied or a sharing violation for as long as it is open: it is retried for up
/// to a second. The tool's own readers hold the directory's lock, as the writer does.
pub(crate) fn replace(from: &Path, to: &Path) -> io::Result<()> {
    const ERROR_ACCESS_DENIED: i32 = 5;
    const ERROR_SHARING_VIOLATION: i32 = 32;
    let mut tries = 0;
    loop {
        match std::fs::rename(from, to) {
            Err(e) if tries < 40 && matches!(e.raw_os_error(), Some(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION)) => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            done => return done,
        }
    }
}

/// NTFS journals the rename itself: nothing to flush for the directory.
pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// This boot of the machine: `BootId`, which Windows counts up at every boot (Windows 8
/// and later); `None` where there is none (Wine).
pub(crate) fn boot_id() -> Option<String> {
    let path = r"SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management\PrefetchParameters";
    match Key::open(Root::LocalMachine, path, false).ok()??.value("BootId").ok()?? {
        Value::Dword(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether process `pid` is certainly gone: `OpenProcess` says there is no such process
/// (`ERROR_INVALID_PARAMETER`), or it has exited. Access denied, or anything else, is not
/// proof.
pub(crate) fn process_gone(pid: u32) -> bool {
    // SAFETY: OpenProcess takes an access mask, an inherit flag and a pid.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid) };
    if h.is_null() {
        return io::Error::last_os_error().raw_os_error() == Some(ERROR_INVALID_PARAMETER as i32);
    }
    let h = Handle(h);
    let mut code = 0u32;
    // SAFETY: h is an open process handle with query access; code is a valid out-pointer.
    let ok = unsafe { GetExitCodeProcess(h.0, &mut code) };
    ok != FALSE && code != STILL_ACTIVE as u32
}

/// A Service Control Manager handle, closed with `CloseServiceHandle`.
struct ScHandle(SC_HANDLE);

impl Drop for ScHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from OpenSCManagerW, OpenServiceW or CreateServiceW and
        // is closed exactly once.
        unsafe { CloseServiceHandle(self.0) };
    }
}

fn open_scm(access: u32) -> io::Result<ScHandle> {
    // SAFETY: null machine and database names mean this machine's active database.
    let h = unsafe { OpenSCManagerW(ptr::null(), ptr::null(), access) };
    if h.is_null() { Err(io::Error::last_os_error()) } else { Ok(ScHandle(h)) }
}

/// Starts what runs the job: its service.
///
/// # Errors
///
/// When the service cannot be created or started (it is deleted again then).
pub(crate) fn launch(l: &Launch) -> Result<String> {
    if !matches!(l.via, Via::Auto | Via::Service) {
        return Err(Error::unsupported(format!("start job {} as {}", l.id, l.via), "only a service on Windows"));
    }
    let name = job_rules::service_name(l.id.as_str());
    let action = format!("create and start the service {name}");
    let mut args: Vec<String> = l.args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    args.push("--service".into());
    let line = job_rules::command_line(&l.exe.to_string_lossy(), &args);
    let scm = open_scm(SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE).map_err(|e| Error::from_io(&action, &e))?;
    let (wname, wdisplay, wline) = (wide(&name), wide(&format!("logoff-users scheduled logoff {}", l.id)), wide(&line));
    // SAFETY: scm is open with SC_MANAGER_CREATE_SERVICE; every string is NUL-terminated
    // and lives across the call; null account and password mean LocalSystem; no load
    // order group, tag or dependencies.
    let svc = unsafe {
        CreateServiceW(
            scm.0,
            wname.as_ptr(),
            wdisplay.as_ptr(),
            SERVICE_START | SERVICE_QUERY_STATUS | DELETE,
            SERVICE_WIN32_OWN_PROCESS,
            SERVICE_DEMAND_START,
            SERVICE_ERROR_IGNORE,
            wline.as_ptr(),
            ptr::null(),
            ptr::null_mut(),
            ptr::null(),
            ptr::null(),
            ptr::null(),
        )
    };
    if svc.is_null() {
        return Err(Error::from_io(action, &io::Error::last_os_error()));
    }
    let svc = ScHandle(svc);
    // SAFETY: the service handle has SERVICE_START; no arguments.
    if unsafe { StartServiceW(svc.0, 0, ptr::null()) } == FALSE {
        let e = io::Error::last_os_error();
        // SAFETY: the handle has DELETE; the service never ran.
        unsafe { DeleteService(svc.0) };
        return Err(Error::from_io(action, &e));
    }
    Ok(format!("Windows service {name}"))
}

/// Deletes job `id`'s service: at once if it is not running, else when it stops (the
/// runner exits within a moment of its job's end or cancel).
pub(crate) fn withdraw(id: &str) {
    let Ok(scm) = open_scm(SC_MANAGER_CONNECT) else { return };
    let name = wide(&job_rules::service_name(id));
    // SAFETY: scm is open; name is NUL-terminated.
    let svc = unsafe { OpenServiceW(scm.0, name.as_ptr(), DELETE) };
    if svc.is_null() {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(ERROR_SERVICE_DOES_NOT_EXIST as i32) {
            eprintln!("warning: could not open the service of job {id} to delete it: {e}");
        }
        return;
    }
    let svc = ScHandle(svc);
    // SAFETY: the handle has DELETE.
    unsafe { DeleteService(svc.0) };
}

// ---- the service's side ---------------------------------------------------------------------

type Run = Box<dyn FnOnce(&AtomicBool) -> i32 + Send>;

/// What the service runs, handed from `serve` to `service_main` (which the dispatcher calls
/// on its own thread, with no context).
static RUN: Mutex<Option<Run>> = Mutex::new(None);
/// Set when the SCM asks the service to stop.
static STOP: AtomicBool = AtomicBool::new(false);
static EXIT: AtomicI32 = AtomicI32::new(1);
static STATUS: AtomicUsize = AtomicUsize::new(0);

fn set_status(state: SERVICE_STATUS_CURRENT_STATE, code: i32) {
    let handle = STATUS.load(Ordering::SeqCst) as SERVICE_STATUS_HANDLE;
    if handle.is_null() {
        return;
    }
    let status = SERVICE_STATUS {
        dwServiceType: SERVICE_WIN32_OWN_PROCESS,
        dwCurrentState: state,
        dwControlsAccepted: if state == SERVICE_RUNNING { SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN } else { 0 },
        dwWin32ExitCode: if code == 0 { NO_ERROR } else { ERROR_SERVICE_SPECIFIC_ERROR },
        dwServiceSpecificExitCode: code as u32,
        dwCheckPoint: 0,
        dwWaitHint: if state == SERVICE_STOP_PENDING { 5000 } else { 0 },
    };
    // SAFETY: the handle came from RegisterServiceCtrlHandlerExW; status is a valid struct.
    unsafe { SetServiceStatus(handle, &status) };
}

unsafe extern "system" fn control_handler(control: u32, _kind: u32, _data: *mut c_void, _context: *mut c_void) -> u32 {
    match control {
        SERVICE_CONTROL_STOP | SERVICE_CONTROL_SHUTDOWN => {
            STOP.store(true, Ordering::SeqCst);
            set_status(SERVICE_STOP_PENDING, 0);
            NO_ERROR
        }
        SERVICE_CONTROL_INTERROGATE => NO_ERROR,
        _ => ERROR_CALL_NOT_IMPLEMENTED,
    }
}

unsafe extern "system" fn service_main(argc: u32, argv: *mut PWSTR) {
    // The service's name is its first argument.
    let name = if argc > 0 && !argv.is_null() {
        // SAFETY: the SCM passes argc strings; the first is the service's NUL-terminated name.
        unsafe { *argv }
    } else {
        ptr::null_mut()
    };
    let empty = wide("");
    let name = if name.is_null() { empty.as_ptr() } else { name.cast_const() };
    // SAFETY: name is a NUL-terminated string alive across the call (the SCM's, or ours);
    // the handler is a function of the right signature; no context.
    let handle = unsafe { RegisterServiceCtrlHandlerExW(name, Some(control_handler), ptr::null()) };
    if handle.is_null() {
        return;
    }
    STATUS.store(handle as usize, Ordering::SeqCst);
    set_status(SERVICE_RUNNING, 0);
    let run = RUN.lock().ok().and_then(|mut r| r.take());
    let code = run.map_or(1, |r| r(&STOP));
    EXIT.store(code, Ordering::SeqCst);
    set_status(SERVICE_STOPPED, code);
}

/// Runs `run` as this process's service: connects to the SCM's dispatcher, which calls
/// `service_main` on a thread of its own and returns once the service has stopped.
///
/// # Errors
///
/// When the process was not started by the SCM (`StartServiceCtrlDispatcherW` fails).
pub(crate) fn serve(run: Run) -> Result<i32> {
    *RUN.lock().map_err(|_| Error::new(ErrorKind::Os, "run as a service", "poisoned"))? = Some(run);
    let mut empty = wide("");
    let table = [
        SERVICE_TABLE_ENTRYW { lpServiceName: empty.as_mut_ptr(), lpServiceProc: Some(service_main) },
        SERVICE_TABLE_ENTRYW { lpServiceName: ptr::null_mut(), lpServiceProc: None },
    ];
    // SAFETY: the table ends with a null entry; its strings live across the call, which
    // blocks until every service of the process has stopped.
    if unsafe { StartServiceCtrlDispatcherW(table.as_ptr()) } == FALSE {
        return Err(Error::from_io(
            "run as a service (started by the Service Control Manager?)",
            &io::Error::last_os_error(),
        ));
    }
    Ok(EXIT.load(Ordering::SeqCst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_directory_is_created_protected_and_trusted() {
        let base = std::env::temp_dir().join(format!("lu-jobs-test-{}", std::process::id()));
        let dir = base.join("jobs");
        assert!(!ensure_dir(&dir, false).unwrap());
        assert!(ensure_dir(&dir, true).unwrap(), "{}", check_named(&dir).map(|w| format!("{w:?}")).unwrap_or_default());
        let f = create_new(&dir.join("a.json")).unwrap();
        assert_eq!(check_file(&f), None);
        drop(f);
        let lock = open_lock(&dir.join("lock")).unwrap();
        lock_exclusive(&lock).unwrap();
        drop(lock);
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_process_that_exited_is_gone_a_live_one_is_not() {
        assert!(!process_gone(std::process::id()));
        let mut child = std::process::Command::new("cmd.exe").args(["/c", "exit"]).spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        // The handle std keeps in `child` lets the pid stay an exited process, not a new one.
        assert!(process_gone(pid));
    }

    #[test]
    fn a_process_not_started_by_the_scm_cannot_serve() {
        assert!(serve(Box::new(|_| 0)).is_err());
    }
}

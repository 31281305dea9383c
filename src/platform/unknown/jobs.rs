//! Scheduled logoffs on an OS without a backend: none. Every call says "not supported", so
//! `--detach`, `--pending` and `--cancel` exit 3 having done nothing.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::unsupported;
use crate::error::Result;
use crate::schedule::Launch;

fn io_unsupported<T>() -> io::Result<T> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "scheduled logoffs are not supported on this OS yet"))
}

pub(crate) fn default_dir() -> PathBuf {
    PathBuf::from("/var/run/logoff-users/jobs")
}

pub(crate) fn ensure_dir(_dir: &Path, _create: bool) -> Result<bool> {
    unsupported("keep scheduled logoffs")
}

pub(crate) fn open_existing(_path: &Path) -> io::Result<File> {
    io_unsupported()
}

pub(crate) fn check_file(_file: &File) -> Option<String> {
    Some("scheduled logoffs are not supported on this OS yet".into())
}

pub(crate) fn create_new(_path: &Path) -> io::Result<File> {
    io_unsupported()
}

pub(crate) fn open_append(_path: &Path) -> io::Result<File> {
    io_unsupported()
}

pub(crate) fn open_lock(_path: &Path) -> io::Result<File> {
    io_unsupported()
}

pub(crate) fn lock_exclusive(_file: &File) -> io::Result<()> {
    io_unsupported()
}

pub(crate) fn replace(_from: &Path, _to: &Path) -> io::Result<()> {
    io_unsupported()
}

pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    io_unsupported()
}

pub(crate) fn boot_id() -> Option<String> {
    None
}

pub(crate) fn process_gone(_pid: u32) -> bool {
    false
}

pub(crate) fn launch(l: &Launch) -> Result<String> {
    unsupported(&format!("start the runner of job {}", l.id))
}

pub(crate) fn withdraw(_id: &str) {}

pub(crate) fn serve(_run: Box<dyn FnOnce(&AtomicBool) -> i32 + Send>) -> Result<i32> {
    unsupported("run as a Windows service")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::schedule::{JobId, Via};

    #[test]
    fn every_call_says_unsupported() {
        let p = Path::new("/nonexistent");
        assert_eq!(ensure_dir(p, true).unwrap_err().kind, ErrorKind::Unsupported);
        for e in [
            open_existing(p).err(),
            create_new(p).err(),
            open_append(p).err(),
            open_lock(p).err(),
            sync_dir(p).err(),
            replace(p, p).err(),
        ] {
            assert_eq!(e.unwrap().kind(), io::ErrorKind::Unsupported);
        }
        let f = File::open("/proc/self/status").or_else(|_| File::open(std::env::current_exe().unwrap())).unwrap();
        assert!(lock_exclusive(&f).is_err());
        assert!(check_file(&f).is_some());
        assert_eq!(boot_id(), None);
        assert!(!process_gone(1));
        assert!(default_dir().ends_with("jobs"));
        let id = JobId::from_bits(1);
        let l = Launch { id: &id, exe: "x".into(), args: vec![], via: Via::Auto };
        assert_eq!(launch(&l).unwrap_err().kind, ErrorKind::Unsupported);
        withdraw("00000001");
        assert_eq!(serve(Box::new(|_| 0)).unwrap_err().kind, ErrorKind::Unsupported);
    }
}

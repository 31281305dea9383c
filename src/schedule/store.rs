//! The job directory: one JSON file per job, written atomically (a new file in the same
//! directory, synced, then renamed over the old one), read only when it can be trusted,
//! and changed only under the directory's lock.
//!
//! ```text
//! <dir>/                    root's alone (see the platform's jobs module)
//!   lock                    the lock every state change takes (flock / LockFileEx)
//!   run.lock                held by a job while it logs off, so overlapping jobs act one
//!                           after the other, each on what the other left
//!   <id>.json               the job
//!   <id>.log                its runner's text log
//! ```
//!
//! A file in there that cannot be trusted (not owned by root or SYSTEM, writable by
//! others, not a plain file) or does not parse as a job of this version is reported as
//! [`Refused`], and never acted on.

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::job::{JOB_VERSION, Job, JobId};
use crate::error::{Error, Result};
use crate::platform::jobs as os;

/// The largest job file read; a bigger one is refused.
const MAX_JOB_FILE: u64 = 1 << 20;

/// A file of the job directory that is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// The file's name in the directory.
    pub file: String,
    /// Why.
    pub reason: String,
}

/// The directory of job files.
#[derive(Debug, Clone)]
pub struct JobDir {
    path: PathBuf,
}

/// The job directory's lock, held until dropped.
#[derive(Debug)]
pub struct Locked<'a> {
    dir: &'a JobDir,
    _file: File,
}

/// The run lock, held by a job while it logs off.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl JobDir {
    /// Opens the job directory at `path`, creating it (root's alone) when `create`.
    /// `Ok(None)` when it does not exist and was not to be created.
    ///
    /// # Errors
    ///
    /// When it cannot be created (`PermissionDenied` without root), or it or its parent
    /// cannot be trusted.
    pub fn open(path: &Path, create: bool) -> Result<Option<JobDir>> {
        if os::ensure_dir(path, create)? { Ok(Some(JobDir { path: path.to_path_buf() })) } else { Ok(None) }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file of job `id`.
    pub fn job_path(&self, id: &JobId) -> PathBuf {
        self.path.join(format!("{id}.json"))
    }

    /// The text log of job `id`'s runner.
    pub fn log_path(&self, id: &JobId) -> PathBuf {
        self.path.join(format!("{id}.log"))
    }

    fn lock_file(&self, name: &str) -> Result<File> {
        let path = self.path.join(name);
        let action = || format!("lock {}", path.display());
        let f = os::open_lock(&path).map_err(|e| Error::from_io(action(), &e))?;
        if let Some(why) = os::check_file(&f) {
            let e = io::Error::new(io::ErrorKind::PermissionDenied, format!("{}: {why}", path.display()));
            return Err(Error::from_io(action(), &e));
        }
        os::lock_exclusive(&f).map_err(|e| Error::from_io(action(), &e))?;
        Ok(f)
    }

    /// Takes the directory's lock, waiting for it. Every change of a job's state is made
    /// holding it, after reading the job again.
    ///
    /// # Errors
    ///
    /// When the lock file cannot be opened, trusted or locked.
    pub fn lock(&self) -> Result<Locked<'_>> {
        Ok(Locked { dir: self, _file: self.lock_file("lock")? })
    }

    /// Takes the run lock, waiting while another job logs off.
    ///
    /// # Errors
    ///
    /// As for [`JobDir::lock`].
    pub fn run_lock(&self) -> Result<RunLock> {
        Ok(RunLock { _file: self.lock_file("run.lock")? })
    }

    /// Reads job `id` without the lock, for a look that decides nothing (the tests). A
    /// write replaces the file whole, so what is read is one version or the other; but on
    /// Windows the reader's open handle can make that write wait (see `replace`), so the
    /// tool itself reads under the lock.
    ///
    /// # Errors
    ///
    /// As for `Locked::read`.
    #[cfg(test)]
    pub fn peek(&self, id: &JobId) -> std::result::Result<Option<Job>, Refused> {
        read_job(&self.job_path(id), id)
    }
}

/// The ids of the job files in `dir`, sorted; other names are not jobs.
fn job_ids(dir: &Path) -> Result<Vec<JobId>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::from_io(format!("list {}", dir.display()), &e))?;
    let mut ids: Vec<JobId> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).map(str::to_string))
        .filter_map(|stem| JobId::parse(&stem).ok().filter(|id| id.as_str() == stem))
        .collect();
    ids.sort();
    Ok(ids)
}

fn read_job(path: &Path, id: &JobId) -> std::result::Result<Option<Job>, Refused> {
    let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let refuse = |reason: String| Refused { file: file.clone(), reason };
    let mut f = match os::open_existing(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(refuse(format!("cannot be opened: {e}"))),
    };
    if let Some(why) = os::check_file(&f) {
        return Err(refuse(format!("{why}; refusing to trust it")));
    }
    let mut text = String::new();
    if let Err(e) = (&mut f).take(MAX_JOB_FILE + 1).read_to_string(&mut text) {
        return Err(refuse(format!("cannot be read: {e}")));
    }
    if text.len() as u64 > MAX_JOB_FILE {
        return Err(refuse(format!("larger than {MAX_JOB_FILE} bytes")));
    }
    // The version first, so that a file of another version says so.
    let version = serde_json::from_str::<serde_json::Value>(&text)
        .map_err(|e| refuse(format!("not a job file (corrupt JSON: {e})")))?
        .get("version")
        .and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(JOB_VERSION)) {
        return Err(refuse(format!("job file version {version:?}, this tool reads version {JOB_VERSION}")));
    }
    let job: Job = serde_json::from_str(&text).map_err(|e| refuse(format!("not a valid job file: {e}")))?;
    if &job.id != id {
        return Err(refuse(format!("holds job {}, not {id}", job.id)));
    }
    if let Err(e) = job.spec.run_options() {
        return Err(refuse(format!("not a valid job: {e}")));
    }
    Ok(Some(job))
}

impl Locked<'_> {
    /// Reads job `id`: `Ok(None)` when there is no such file.
    ///
    /// # Errors
    ///
    /// A [`Refused`] for a file that cannot be trusted or parsed.
    pub fn read(&self, id: &JobId) -> std::result::Result<Option<Job>, Refused> {
        read_job(&self.dir.job_path(id), id)
    }

    /// Every job in the directory, and the files refused.
    ///
    /// # Errors
    ///
    /// When the directory cannot be listed.
    pub fn list(&self) -> Result<(Vec<Job>, Vec<Refused>)> {
        let mut jobs = Vec::new();
        let mut refused = Vec::new();
        for id in job_ids(&self.dir.path)? {
            match self.read(&id) {
                Ok(Some(j)) => jobs.push(j),
                Ok(None) => {}
                Err(r) => refused.push(r),
            }
        }
        Ok((jobs, refused))
    }

    /// Writes `job` atomically: a new file next to it, written and synced, then renamed
    /// over the old one, and the directory synced.
    ///
    /// # Errors
    ///
    /// When any step fails; the old file is then unchanged.
    pub fn write(&self, job: &Job) -> Result<()> {
        let path = self.dir.job_path(&job.id);
        let action = || format!("write {}", path.display());
        let tmp = self.dir.path.join(format!(".{}.{}.tmp", job.id, std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let text = serde_json::to_string_pretty(job).expect("a job serializes");
        let written = (|| {
            let mut f = os::create_new(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            drop(f);
            os::replace(&tmp, &path)?;
            os::sync_dir(&self.dir.path)
        })();
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::from_io(action(), &e)
        })
    }

    /// A new id no job of the directory has.
    pub fn new_id(&self) -> JobId {
        loop {
            let mut h = RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
            );
            h.write_u32(std::process::id());
            let id = JobId::from_bits(h.finish() as u32);
            if !self.dir.job_path(&id).exists() {
                return id;
            }
        }
    }

    /// Removes the files of finished jobs that finished before `before_ms` (the results
    /// `--pending` shows for a while). Refused files are left alone, for a person to see.
    ///
    /// # Errors
    ///
    /// When the directory cannot be listed.
    pub fn prune(&self, before_ms: u64) -> Result<Vec<JobId>> {
        let (mut jobs, _) = self.list()?;
        Ok(self.prune_listed(&mut jobs, before_ms))
    }

    /// [`Locked::prune`] over `jobs`, just listed under this lock; the removed ones leave
    /// `jobs` too.
    pub fn prune_listed(&self, jobs: &mut Vec<Job>, before_ms: u64) -> Vec<JobId> {
        let mut removed = Vec::new();
        jobs.retain(|j| {
            let old = j.state.is_finished() && j.finished_at_ms.unwrap_or(j.scheduled_at_ms) < before_ms;
            if old {
                let _ = std::fs::remove_file(self.dir.job_path(&j.id));
                let _ = std::fs::remove_file(self.dir.log_path(&j.id));
                removed.push(j.id.clone());
            }
            !old
        });
        removed
    }
}

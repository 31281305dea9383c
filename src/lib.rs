//! logoff-users: log users off a machine, named users or ALL, and verify that they are gone.
//!
//! # How a run flows
//!
//! The binary turns its flags into [`RunOptions`], opens one [`backend::Backend`] per host, and
//! calls [`run`], which goes through the phases in order: snapshot, plan, warn, execute,
//! verify. It returns a [`Report`] whose summary holds the exit code
//! ([`report::exit_code`]). Events go to an [`Observer`] as they happen.
//!
//! # The public surface
//!
//! - the options: [`RunOptions`], [`Warning`], [`PlanOptions`], [`SessionFilter`], and the
//!   user list they are parsed from ([`userlist`], [`duration`]);
//! - [`run`] and [`list`], with [`Host`] and [`Observer`];
//! - the seam: [`backend::Backend`] and its model ([`model`], [`identity`], [`error`]);
//! - the results: [`report`] (the JSON document), [`event::Event`], and [`text`], which
//!   renders both as lines; [`AuditTrail`] records them in the system log;
//! - clearing a host for maintenance: [`drain`] (`--drain`/`--undrain`, with
//!   [`drain::drain_host`] for a caller of its own, such as a scheduled job), [`profile`]
//!   (was the profile unloaded?) and [`idle`] (unknown idle time, sleep).
//! - scheduled logoffs that outlive the caller ([`schedule`]: `--detach`, `--pending`,
//!   `--cancel`, and the runner of a job).
//!
//! Everything else is private to the crate, but for [`testing`], the one entrance of the
//! project's own fuzz targets and integration tests, and, in the test build only (feature
//! `test-doors`), `doors` and `backend::fake`.

mod audit;
mod audit_trail;
pub mod backend;
#[cfg(feature = "test-doors")]
pub mod doors;
#[cfg(not(feature = "test-doors"))]
#[path = "no_doors.rs"]
mod doors;
pub mod drain;
pub mod duration;
pub mod error;
pub mod event;
pub mod identity;
pub mod idle;
pub mod model;
mod plan;
mod platform;
pub mod profile;
mod protect;
pub mod report;
mod run;
pub mod schedule;
mod snapshot;
pub mod testing;
pub mod text;
pub mod userlist;
mod words;

pub use audit_trail::AuditTrail;
pub use plan::{Plan, PlanOptions, Refusal, SessionFilter, Skipped, Spared, TerminateReason, UserPlan, UserStatus};
pub use platform::open_backend as open_native;
pub use report::Report;
pub use run::{Host, MAX_MESSAGE_CHARS, Observer, RunOptions, Warning, list, open_hosts, run};

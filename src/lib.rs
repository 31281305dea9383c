//! logoff-users: log users off a machine, named users or ALL, and verify that they are gone.
//!
//! The crate is a pure core plus one seam:
//! - [`userlist`] parses the Users parameter (the RMM contract) and matches accounts;
//! - [`protect`] knows the accounts that are never touched;
//! - [`plan`] turns targets and sessions into actions;
//! - [`execute`] runs a plan against a [`backend::Backend`] and verifies the outcome;
//! - [`report`] holds the versioned JSON document and renders the text log.
//!
//! Only [`backend`] talks to the operating system.

pub mod audit;
pub mod backend;
pub mod duration;
pub mod error;
pub mod execute;
#[doc(hidden)]
pub mod fuzzing;
pub mod model;
pub mod plan;
pub mod protect;
pub mod report;
pub mod userlist;

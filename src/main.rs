//! The `logoff-users` binary: flags, wiring, output and exit codes. The work is done by
//! the library.

mod cli;
mod flags;
mod jobs_cli;

fn main() {
    std::process::exit(cli::main());
}

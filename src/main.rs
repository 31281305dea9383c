//! The `logoff-users` binary: argument parsing, output and exit codes. The work is done
//! by the library.

mod cli;

fn main() {
    std::process::exit(cli::main());
}

//! Prints what the native backend sees, as one JSON object, without acting on anything:
//! the host, the policy, the privilege check, the current session, the sessions and the
//! processes. Each part is either its value or the error it gave.
//!
//! ```text
//! cargo run --example wts_probe [-- --server HOST]
//! wine target/x86_64-pc-windows-gnu/debug/examples/wts_probe.exe
//! ```
//!
//! It exists to check a backend against a real (or emulated) OS by hand and in CI
//! (`ci/windows.sh` runs it under Wine); the CLI is the product.

use logoff_users::backend::NativeOptions;
use logoff_users::error::Error;
use logoff_users::open_native;
use serde_json::{Value, json};

fn part<T: serde::Serialize>(r: Result<T, Error>) -> Value {
    match r {
        Ok(v) => json!({ "ok": v }),
        Err(e) => {
            json!({ "error": { "kind": format!("{:?}", e.kind), "message": e.to_string(), "code": e.code } })
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut opts = NativeOptions::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--server" => opts.server = args.next(),
            other => {
                eprintln!("usage: wts_probe [--server HOST] (unknown argument {other:?})");
                std::process::exit(2);
            }
        }
    }
    let mut backend = match open_native(&opts) {
        Ok(b) => b,
        Err(e) => {
            println!("{}", json!({ "open": part::<()>(Err(e)) }));
            std::process::exit(1);
        }
    };
    let report = json!({
        "backend": backend.name(),
        "host": backend.host(),
        "policy": backend.policy(),
        "check_privilege": part(backend.check_privilege()),
        "current_session": part(backend.current_session()),
        "own_pids": backend.own_pids(),
        "sessions": part(backend.list_sessions()),
        "processes": part(backend.list_processes()),
    });
    println!("{}", serde_json::to_string_pretty(&report).expect("JSON serializes"));
}

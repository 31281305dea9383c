//! Prints what the native backend sees, as one JSON object, without acting on anything:
//! the host, the policy, the privilege check, the current session, the sessions and the
//! processes; on Windows also the token (administrator, SeDebugPrivilege, user SID), the
//! invoker the audit trail names, and this machine's own names. Each part is either its
//! value or the error it gave.
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
    let mut report = json!({
        "backend": backend.name(),
        "host": backend.host(),
        "policy": backend.policy(),
        "check_privilege": part(backend.check_privilege()),
        "current_session": part(backend.current_session()),
        "own_pids": backend.own_pids(),
        "sessions": part(backend.list_sessions()),
        "processes": part(backend.list_processes()),
    });
    report["token"] = token();
    println!("{}", serde_json::to_string_pretty(&report).expect("JSON serializes"));
}

/// What the Windows backend reads from this process's token and machine.
#[cfg(windows)]
fn token() -> Value {
    use logoff_users::testing::windows as w;
    let io = |r: std::io::Result<Value>| match r {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "error": { "message": e.to_string(), "code": e.raw_os_error() } }),
    };
    json!({
        "admin": io(w::token_is_admin().map(Value::from)),
        "debug_privilege": io(w::enable_debug_privilege().map(Value::from)),
        "user_sid": io(w::token_user().and_then(|s| s.to_string_sid()).map(Value::from)),
        "current_session": io(w::current_session_id().map(Value::from)),
        "invoker": w::invoker(),
        "local_names": w::local_names(),
    })
}

/// Nothing to read elsewhere.
#[cfg(not(windows))]
fn token() -> Value {
    Value::Null
}

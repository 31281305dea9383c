//! A stand-in notification server for the real-logind test (`tests/linux_logind.rs`): it
//! owns `org.freedesktop.Notifications` on a session bus and records every `Notify` call,
//! with the uid the bus says the caller has, as one JSON line in a file.
//!
//! ```text
//! notify_receiver BUS_ADDRESS LOG     e.g. unix:path=/run/user/1000/bus ~/notifications.log
//! ```
//!
//! It retries connecting for 10 s (the bus may still be starting), creates LOG (empty)
//! once it owns the name, which is the sign that it is ready, and runs until killed.

#[cfg(target_os = "linux")]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [address, log] = args.as_slice() else {
        eprintln!("usage: notify_receiver BUS_ADDRESS LOG");
        std::process::exit(2);
    };
    if let Err(e) = receiver::run(address, std::path::Path::new(log)) {
        eprintln!("notify_receiver: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("notify_receiver: Linux only");
    std::process::exit(3);
}

#[cfg(target_os = "linux")]
mod receiver {
    use std::collections::HashMap;
    use std::io::Write;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use zbus::blocking::{Connection, MessageIterator, connection::Builder};
    use zbus::message::Type;
    use zbus::zvariant::OwnedValue;

    type Notify = (String, u32, String, String, String, Vec<String>, HashMap<String, OwnedValue>, i32);

    pub fn run(address: &str, log: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let conn = loop {
            match Builder::address(address).and_then(|b| b.build()) {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => return Err(e.into()),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        conn.request_name("org.freedesktop.Notifications")?;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let mut next_id = 1u32;
        for msg in MessageIterator::from(&conn) {
            let msg = msg?;
            let header = msg.header();
            if msg.message_type() != Type::MethodCall
                || header.interface().map(|i| i.as_str()) != Some("org.freedesktop.Notifications")
            {
                continue;
            }
            if header.member().map(|m| m.as_str()) != Some("Notify") {
                conn.reply_error(&header, "org.freedesktop.DBus.Error.UnknownMethod", &"not implemented")?;
                continue;
            }
            let (app, replaces, icon, summary, body, actions, hints, timeout): Notify = msg.body().deserialize()?;
            let sender_uid = sender_uid(&conn, header.sender().map(|s| s.to_string()))?;
            let urgency = hints.get("urgency").and_then(|v| u8::try_from(v).ok());
            let record = serde_json::json!({
                "app_name": app, "replaces_id": replaces, "app_icon": icon, "summary": summary,
                "body": body, "actions": actions, "urgency": urgency, "expire_timeout": timeout,
                "sender_uid": sender_uid,
            });
            writeln!(file, "{record}")?;
            conn.reply(&header, &next_id)?;
            next_id += 1;
        }
        Ok(())
    }

    /// The caller's uid, as the bus daemon knows it from the socket's peer credentials.
    fn sender_uid(conn: &Connection, sender: Option<String>) -> zbus::Result<u32> {
        let reply = conn.call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus"),
            "GetConnectionUnixUser",
            &(sender.unwrap_or_default()),
        )?;
        reply.body().deserialize()
    }
}

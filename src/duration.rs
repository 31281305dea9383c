//! Human durations: `90s`, `5m`, `1h30m`, `500ms`, or a bare number of seconds.

use std::time::Duration;

/// Parses a human duration such as `90s`, `5m`, `1h30m`, `250ms` or `30` (seconds).
///
/// # Errors
///
/// Returns a message naming the bad input when it is not of that form.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("a duration must not be empty".to_string());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("bad duration {input:?}: expected a number before a unit (90s, 5m, 1h30m)"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| format!("bad duration {input:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86400)),
            "" => return Err(format!("bad duration {input:?}: a unit (ms, s, m, h, d) must follow each number")),
            other => return Err(format!("bad duration {input:?}: unknown unit {other:?} (use ms, s, m, h, d)")),
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it: `1h30m`, `90ms`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 && ms > 0 && d.as_secs() == 0 {
        return format!("{ms}ms");
    }
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_durations() {
        let table: &[(&str, u64)] = &[
            ("90s", 90_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("30", 30_000),
            ("250ms", 250),
            ("1m30s", 90_000),
            ("2d", 172_800_000),
            (" 7s ", 7_000),
        ];
        for (input, ms) in table {
            assert_eq!(parse_duration(input).unwrap().as_millis() as u64, *ms, "{input}");
        }
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in ["", "s", "5x", "1h30", "m5", "-3s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn format_round_trips() {
        for ms in [0u64, 250, 1000, 90_000, 5_400_000, 90_061_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }
}

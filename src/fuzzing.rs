//! Entry points shared by the fuzz targets (`fuzz/`) and the corpus replay test
//! (`tests/fuzz_corpus.rs`), so that CI replays the corpus with a plain `cargo test`.
//!
//! Each checks invariants beyond "no panic": a refused input always carries a message.

use crate::userlist::{Targets, parse_exclude, parse_name, parse_targets};

/// Fuzzes the user-list parser and the matcher with arbitrary bytes.
pub fn userlist(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The first line is the list; the rest, if any, a reported account to match against.
    let (list, reported) = text.split_once('\n').unwrap_or((text, ""));
    match parse_targets(&[list.to_string()]) {
        Ok(Targets::All) => {}
        Ok(Targets::Users(names)) => {
            assert!(!names.is_empty(), "a parsed list is never empty");
            for n in &names {
                assert!(!n.name.is_empty(), "a parsed name is never empty");
                assert!(!n.name.chars().any(char::is_control));
                // Matching never panics, and a name always matches itself as reported.
                let _ = n.matches(reported, None, Some("PC1"));
                assert!(n.matches(&n.name, None, None) || !matches!(n.domain, crate::userlist::DomainSpec::Any));
            }
        }
        Err(e) => assert!(!e.message.is_empty(), "a refusal always says why"),
    }
    if let Err(e) = parse_exclude(&[list.to_string()]) {
        assert!(!e.message.is_empty());
    }
    if let Err(e) = parse_name(list) {
        assert!(!e.message.is_empty());
    }
}

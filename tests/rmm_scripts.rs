//! The three RMM scripts (`rmm/*/LogOff-Users.ps1`) must stay standalone, since each RMM
//! takes one pasted script; so they share their body by copy. Only how the Users list
//! arrives differs: everything after the `$UserList = ...` line must be the same text in
//! all three, so that a fix in one cannot silently miss the others.

use std::path::Path;

const SCRIPTS: [&str; 3] =
    ["rmm/connectwise-rmm/LogOff-Users.ps1", "rmm/ninjaone/LogOff-Users.ps1", "rmm/tactical-rmm/LogOff-Users.ps1"];

/// The text after the one line that assigns `$UserList`.
fn shared_part(path: &str) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    let assignments: Vec<usize> =
        text.lines().enumerate().filter(|(_, l)| l.starts_with("$UserList = ")).map(|(i, _)| i).collect();
    assert_eq!(assignments.len(), 1, "{path}: expected one line assigning $UserList");
    text.lines().skip(assignments[0] + 1).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_rmm_scripts_share_their_body_word_for_word() {
    let first = shared_part(SCRIPTS[0]);
    assert!(first.contains("Get-FileHash") && first.contains("exit $LASTEXITCODE"), "the shared part looks wrong");
    for path in &SCRIPTS[1..] {
        let other = shared_part(path);
        if let Some((n, (a, b))) = first.lines().zip(other.lines()).enumerate().find(|(_, (a, b))| a != b) {
            panic!("{path} differs from {} after $UserList, line {}: {a:?} vs {b:?}", SCRIPTS[0], n + 1);
        }
        assert_eq!(first, other, "{path} differs from {} after $UserList (length)", SCRIPTS[0]);
    }
}

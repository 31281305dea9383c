//! Replays the fuzz corpus kept in `fuzz/corpus/<target>/` through the same entry points
//! the fuzz targets use, so that CI checks every saved input with a plain `cargo test`.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n > 0, "the {target} corpus is empty");
}

#[test]
fn userlist_corpus() {
    replay("userlist", logoff_users::testing::fuzz::userlist);
}

#[test]
fn text_corpus() {
    replay("text", logoff_users::testing::fuzz::text);
}

#[cfg(target_os = "linux")]
#[test]
fn utmp_corpus() {
    replay("utmp", logoff_users::testing::fuzz::linux::utmp);
}

#[cfg(target_os = "linux")]
#[test]
fn procfs_corpus() {
    replay("procfs", logoff_users::testing::fuzz::linux::procfs);
}

#[cfg(target_os = "linux")]
#[test]
fn btf_corpus() {
    replay("btf", logoff_users::testing::fuzz::linux::btf);
}

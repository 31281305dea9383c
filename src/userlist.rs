//! (in progress)

/// Compares two names for equality ignoring case, Unicode-aware.
pub fn eq_fold(a: &str, b: &str) -> bool {
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

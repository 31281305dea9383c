//! The Users parameter: the contract with the RMM, and the matching of accounts.
//!
//! A list comes as positional arguments, one `--users` value, or `LOGOFF_USERS`. It is split
//! on commas; each entry loses its surrounding blanks and one level of surrounding quotes;
//! empty entries are dropped and duplicates (ignoring case) removed. `ALL` means every user
//! session. Names are `DOMAIN\user`, `user@domain` (UPN), `.\user` or a bare `user`.
//!
//! This module only parses and compares strings: it never looks an account up on the
//! machine (that is the planner's job, with the sessions a backend listed).

use std::fmt;

/// Compares two names for equality ignoring case, Unicode-aware (per-character lowercase
/// mapping, so `ÉMILE` equals `émile`). Never a substring or pattern match.
pub fn eq_fold(a: &str, b: &str) -> bool {
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

/// Case-folds a name (per-character Unicode lowercase mapping), for comparisons.
pub(crate) fn fold(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Which domain a requested name is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainSpec {
    /// A bare name: that account in any domain.
    Any,
    /// `.\user`: the local machine only.
    Local,
    /// `DOMAIN\user`: only that domain (a NetBIOS name, or a DNS name).
    Named(String),
    /// `user@domain`: a UPN suffix, a DNS name whose first label is the NetBIOS name.
    Upn(String),
}

/// One requested account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserName {
    /// The account name, without domain.
    pub name: String,
    /// The domain it is bound to.
    pub domain: DomainSpec,
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.domain {
            DomainSpec::Any => f.write_str(&self.name),
            DomainSpec::Local => write!(f, ".\\{}", self.name),
            DomainSpec::Named(d) => write!(f, "{d}\\{}", self.name),
            DomainSpec::Upn(d) => write!(f, "{}@{d}", self.name),
        }
    }
}

/// What the tool is asked to log off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Every user session (less the protected ones).
    All,
    /// These accounts, in the order given, without duplicates.
    Users(Vec<UserName>),
}

/// What one planned user was asked for as: a name from the list, ALL, or `--orphans`. In
/// text and JSON it is the name as normalized, `ALL`, or `--orphans`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Requested {
    /// Every user session.
    All,
    /// This name from the list.
    Name(UserName),
    /// An account that owns processes but has no live session (`--orphans`).
    Orphans,
}

impl fmt::Display for Requested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requested::All => f.write_str("ALL"),
            Requested::Name(n) => n.fmt(f),
            Requested::Orphans => f.write_str("--orphans"),
        }
    }
}

// Lets a test compare a request with its text.
impl PartialEq<&str> for Requested {
    // Clippy's `*self == text` would call this very function again.
    #[allow(clippy::cmp_owned)]
    fn eq(&self, other: &&str) -> bool {
        self.to_string() == *other
    }
}

impl serde::Serialize for Requested {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a list was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// No list was given at all.
    Empty,
    /// The list held nothing but blanks, commas or quotes.
    NothingButSeparators,
    /// An RMM placeholder such as `@Users@` was left unfilled.
    Placeholder,
    /// `ALL` was mixed with names.
    AllMixed,
    /// A malformed name.
    Malformed,
    /// `ALL` in an exclude list.
    AllExcluded,
}

/// A refused list: exit code 2, nothing done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Why.
    pub kind: ParseErrorKind,
    /// The entry at fault, if one is.
    pub entry: Option<String>,
    /// The message for the admin.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

fn err(kind: ParseErrorKind, entry: Option<&str>, message: String) -> ParseError {
    ParseError { kind, entry: entry.map(str::to_string), message }
}

/// Splits a list on commas, trims blanks and one level of surrounding quotes from each
/// entry, and drops empty entries. Duplicates are kept (see [`parse_targets`]).
pub fn split_list(input: &str) -> Vec<String> {
    input
        .split(',')
        .map(|entry| {
            let t = entry.trim();
            let unquoted = strip_quotes(t);
            unquoted.trim().to_string()
        })
        .filter(|e| !e.is_empty())
        .collect()
}

fn strip_quotes(s: &str) -> &str {
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    // A stray quote at one end only (an RMM that quoted badly): drop it too.
    s.trim_matches(|c| c == '"' || c == '\'')
}

/// Whether an entry is an unresolved RMM placeholder such as `@Users@`.
pub fn is_placeholder(entry: &str) -> bool {
    entry.len() >= 3
        && entry.starts_with('@')
        && entry.ends_with('@')
        && !entry[1..entry.len() - 1].contains('@')
        && entry[1..entry.len() - 1].chars().all(|c| c.is_alphanumeric() || c == '_' || c == ' ' || c == '-')
}

/// Parses one name: `DOMAIN\user`, `user@domain`, `.\user` or `user`.
///
/// # Errors
///
/// Refuses an empty domain or user, several `\` or `@`, a mix of both forms, and control
/// characters.
pub fn parse_name(entry: &str) -> Result<UserName, ParseError> {
    let bad = |why: &str| err(ParseErrorKind::Malformed, Some(entry), format!("malformed user name {entry:?}: {why}"));
    if entry.chars().any(char::is_control) {
        return Err(bad("it contains a control character"));
    }
    let backslashes = entry.matches('\\').count();
    let ats = entry.matches('@').count();
    if backslashes > 1 {
        return Err(bad("more than one '\\'"));
    }
    if backslashes == 1 && ats > 0 {
        return Err(bad("it mixes DOMAIN\\user and user@domain"));
    }
    if ats > 1 {
        return Err(bad("more than one '@'"));
    }
    if let Some((domain, name)) = entry.split_once('\\') {
        let (domain, name) = (domain.trim(), name.trim());
        if domain.is_empty() {
            return Err(bad("the domain before '\\' is empty"));
        }
        if name.is_empty() {
            return Err(bad("the user name after '\\' is empty"));
        }
        let domain = if domain == "." { DomainSpec::Local } else { DomainSpec::Named(domain.to_string()) };
        return Ok(UserName { name: name.to_string(), domain });
    }
    if let Some((name, domain)) = entry.split_once('@') {
        let (name, domain) = (name.trim(), domain.trim());
        if name.is_empty() {
            return Err(bad("the user name before '@' is empty"));
        }
        if domain.is_empty() {
            return Err(bad("the domain after '@' is empty"));
        }
        if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return Err(bad("the domain after '@' has an empty label"));
        }
        return Ok(UserName { name: name.to_string(), domain: DomainSpec::Upn(domain.to_string()) });
    }
    Ok(UserName { name: entry.to_string(), domain: DomainSpec::Any })
}

fn collect_entries(lists: &[String]) -> Result<Vec<String>, ParseError> {
    if lists.iter().all(|l| l.is_empty()) {
        return Err(err(
            ParseErrorKind::Empty,
            None,
            "no users given: name users (comma-separated) or ALL".to_string(),
        ));
    }
    let entries: Vec<String> = lists.iter().flat_map(|l| split_list(l)).collect();
    if entries.is_empty() {
        return Err(err(
            ParseErrorKind::NothingButSeparators,
            None,
            "the user list holds nothing but blanks, commas or quotes: name users or ALL".to_string(),
        ));
    }
    if let Some(p) = entries.iter().find(|e| is_placeholder(e)) {
        return Err(err(
            ParseErrorKind::Placeholder,
            Some(p),
            format!(
                "the user list is the unresolved placeholder {p}: the RMM did not fill in the parameter; \
                 set the task's Users parameter to names or ALL"
            ),
        ));
    }
    Ok(entries)
}

fn dedup(names: Vec<UserName>) -> Vec<UserName> {
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        .filter(|n| {
            let key = (
                fold(&n.name),
                match &n.domain {
                    DomainSpec::Any => "a:".to_string(),
                    DomainSpec::Local => "l:".to_string(),
                    DomainSpec::Named(d) => format!("n:{}", fold(d)),
                    DomainSpec::Upn(d) => format!("u:{}", fold(d)),
                },
            );
            seen.insert(key)
        })
        .collect()
}

/// Parses the Users parameter from every source given (each a comma-separated list).
///
/// # Errors
///
/// Refuses an empty list, a list of separators only, an unresolved `@Name@` placeholder,
/// `ALL` mixed with names, and malformed names. Nothing must be done after an error.
pub fn parse_targets(lists: &[String]) -> Result<Targets, ParseError> {
    let entries = collect_entries(lists)?;
    let all_count = entries.iter().filter(|e| e.eq_ignore_ascii_case("all")).count();
    if all_count > 0 {
        if all_count < entries.len() {
            let names: Vec<&str> =
                entries.iter().filter(|e| !e.eq_ignore_ascii_case("all")).map(String::as_str).collect();
            return Err(err(
                ParseErrorKind::AllMixed,
                None,
                format!(
                    "ALL cannot be mixed with names ({}): give ALL alone, or only names (use --exclude to spare users from ALL)",
                    names.join(", ")
                ),
            ));
        }
        return Ok(Targets::All);
    }
    let names = entries.iter().map(|e| parse_name(e)).collect::<Result<Vec<_>, _>>()?;
    Ok(Targets::Users(dedup(names)))
}

/// Parses an `--exclude` list, in the same syntax. An absent list is empty.
///
/// # Errors
///
/// As [`parse_targets`], and `ALL` is refused (excluding everyone is never meant).
pub fn parse_exclude(lists: &[String]) -> Result<Vec<UserName>, ParseError> {
    if lists.is_empty() {
        return Ok(Vec::new());
    }
    let entries = collect_entries(lists)?;
    if entries.iter().any(|e| e.eq_ignore_ascii_case("all")) {
        return Err(err(ParseErrorKind::AllExcluded, Some("ALL"), "--exclude cannot be ALL".to_string()));
    }
    let names = entries.iter().map(|e| parse_name(e)).collect::<Result<Vec<_>, _>>()?;
    Ok(dedup(names))
}

/// Splits an account name as an OS reports it, where the domain may be inside the name
/// (SSSD's `user@domain`, or `DOMAIN\user`), into name and domain.
fn split_reported<'a>(user: &'a str, domain: Option<&'a str>) -> (&'a str, Option<&'a str>) {
    match domain {
        Some(d) if !d.is_empty() => (user, Some(d)),
        _ => {
            if let Some((d, u)) = user.split_once('\\') {
                (u, Some(d))
            } else if let Some((u, d)) = user.rsplit_once('@') {
                (u, Some(d))
            } else {
                (user, None)
            }
        }
    }
}

fn first_label(domain: &str) -> &str {
    domain.split('.').next().unwrap_or(domain)
}

impl UserName {
    /// Whether this requested name matches an account reported as `user` in `domain`.
    ///
    /// The name must be equal ignoring case. A bare name matches any domain; `.\user` only
    /// an account with no domain or whose domain is `local_domain` (the computer name);
    /// `DOMAIN\user` only that domain; `user@dns.domain` the domain `dns.domain` or the
    /// NetBIOS domain that is its first label (`CORP` for `corp.example.com`).
    pub fn matches(&self, user: &str, domain: Option<&str>, local_domain: Option<&str>) -> bool {
        let (user, domain) = split_reported(user, domain);
        if !eq_fold(&self.name, user) {
            return false;
        }
        match &self.domain {
            DomainSpec::Any => true,
            DomainSpec::Local => match domain {
                None => true,
                Some(d) => d == "." || local_domain.is_some_and(|l| eq_fold(l, d)),
            },
            DomainSpec::Named(want) => domain
                .is_some_and(|d| eq_fold(want, d) || eq_fold(first_label(want), d) || eq_fold(want, first_label(d))),
            DomainSpec::Upn(want) => domain.is_some_and(|d| eq_fold(want, d) || eq_fold(first_label(want), d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> Vec<String> {
        vec![s.to_string()]
    }

    fn names(t: &Targets) -> Vec<String> {
        match t {
            Targets::All => vec!["ALL".into()],
            Targets::Users(v) => v.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn accepted_lists() {
        let table: &[(&str, &[&str])] = &[
            ("alice", &["alice"]),
            ("alice,bob", &["alice", "bob"]),
            (" alice , bob ", &["alice", "bob"]),
            ("'alice', \"bob\"", &["alice", "bob"]),
            ("\"alice,bob\"", &["alice", "bob"]),
            ("alice,,bob,", &["alice", "bob"]),
            ("al", &["al"]),
            ("a", &["a"]),
            ("John Smith", &["John Smith"]),
            ("'John Smith'", &["John Smith"]),
            ("Émile,ÉMILE", &["Émile"]),
            ("alice,ALICE,Alice", &["alice"]),
            ("CORP\\jsmith", &["CORP\\jsmith"]),
            ("jsmith@corp.example.com", &["jsmith@corp.example.com"]),
            (".\\admin2", &[".\\admin2"]),
            ("CORP\\jsmith,jsmith", &["CORP\\jsmith", "jsmith"]),
            ("corp\\JSMITH,CORP\\jsmith", &["corp\\JSMITH"]),
            ("ALL", &["ALL"]),
            ("all", &["ALL"]),
            ("All", &["ALL"]),
            ("'All'", &["ALL"]),
            ("ALL,all", &["ALL"]),
            ("\"alice", &["alice"]),
            ("bob'", &["bob"]),
        ];
        for (input, want) in table {
            let got = parse_targets(&list(input)).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(names(&got), *want, "input {input:?}");
        }
    }

    #[test]
    fn several_sources_are_one_list() {
        let got = parse_targets(&["alice".into(), "bob,carol".into()]).unwrap();
        assert_eq!(names(&got), ["alice", "bob", "carol"]);
    }

    #[test]
    fn refused_lists() {
        use ParseErrorKind::*;
        let table: &[(&str, ParseErrorKind)] = &[
            ("", Empty),
            (" ", NothingButSeparators),
            (",,,", NothingButSeparators),
            ("' , \"\"", NothingButSeparators),
            ("''", NothingButSeparators),
            ("@Users@", Placeholder),
            ("'@Users@'", Placeholder),
            ("alice,@Users@", Placeholder),
            ("@users@", Placeholder),
            ("ALL,alice", AllMixed),
            ("bob,all", AllMixed),
            ("\\jsmith", Malformed),
            ("CORP\\", Malformed),
            ("A\\B\\c", Malformed),
            ("@corp.com", Malformed),
            ("jsmith@", Malformed),
            ("a@b@c", Malformed),
            ("CORP\\j@x", Malformed),
            ("ali\u{7}ce", Malformed),
            ("bob\ttab", Malformed),
            ("x@corp..com", Malformed),
        ];
        for (input, kind) in table {
            let e = parse_targets(&list(input)).expect_err(input);
            assert_eq!(e.kind, *kind, "input {input:?}: {e}");
            assert!(!e.message.is_empty());
        }
        assert_eq!(parse_targets(&[]).unwrap_err().kind, Empty);
    }

    #[test]
    fn placeholder_message_names_the_rmm() {
        let e = parse_targets(&list("@Users@")).unwrap_err();
        assert!(e.message.contains("RMM did not fill in the parameter"), "{}", e.message);
        assert!(e.message.contains("@Users@"));
    }

    #[test]
    fn email_like_names_are_not_placeholders() {
        assert!(!is_placeholder("jsmith@corp"));
        assert!(!is_placeholder("@"));
        assert!(!is_placeholder("@@"));
        assert!(is_placeholder("@Users@"));
    }

    #[test]
    fn exclude_lists() {
        assert!(parse_exclude(&[]).unwrap().is_empty());
        let ex = parse_exclude(&list("bob, CORP\\carol")).unwrap();
        assert_eq!(ex.iter().map(ToString::to_string).collect::<Vec<_>>(), ["bob", "CORP\\carol"]);
        assert_eq!(parse_exclude(&list("ALL")).unwrap_err().kind, ParseErrorKind::AllExcluded);
        assert_eq!(parse_exclude(&list("@Users@")).unwrap_err().kind, ParseErrorKind::Placeholder);
        assert_eq!(parse_exclude(&list("A\\B\\c")).unwrap_err().kind, ParseErrorKind::Malformed);
    }

    #[test]
    fn matching_rules() {
        let n = |s: &str| parse_name(s).unwrap();
        // (requested, reported user, reported domain, local domain, matches)
        type Row<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, bool);
        let table: &[Row] = &[
            ("jsmith", "jsmith", None, None, true),
            ("jsmith", "JSmith", Some("CORP"), None, true),
            ("jsmith", "jsmith2", None, None, false),
            ("jsmith", "jsmit", None, None, false),
            ("js", "jsmith", None, None, false),
            ("j*", "jsmith", None, None, false),
            ("CORP\\jsmith", "jsmith", Some("CORP"), None, true),
            ("corp\\jsmith", "JSMITH", Some("Corp"), None, true),
            ("CORP\\jsmith", "jsmith", Some("PC1"), Some("PC1"), false),
            ("CORP\\jsmith", "jsmith", None, None, false),
            ("CORP\\jsmith", "jsmith", Some("corp.example.com"), None, true),
            ("jsmith@corp.example.com", "jsmith", Some("CORP"), None, true),
            ("jsmith@corp.example.com", "jsmith", Some("corp.example.com"), None, true),
            ("jsmith@corp.example.com", "jsmith", Some("OTHER"), None, false),
            ("jsmith@corp.example.com", "jsmith", None, None, false),
            (".\\jsmith", "jsmith", Some("PC1"), Some("PC1"), true),
            (".\\jsmith", "jsmith", Some("CORP"), Some("PC1"), false),
            (".\\jsmith", "jsmith", None, None, true),
            ("émile", "ÉMILE", None, None, true),
            ("John Smith", "john smith", Some("PC1"), None, true),
            ("John Smith", "John", Some("PC1"), None, false),
            // SSSD-style reported names carry the domain inside.
            ("jsmith@corp.example.com", "jsmith@corp.example.com", None, None, true),
            ("CORP\\jsmith", "CORP\\jsmith", None, None, true),
            ("jsmith", "jsmith@corp.example.com", None, None, true),
        ];
        for (req, user, domain, local, want) in table {
            assert_eq!(n(req).matches(user, *domain, *local), *want, "{req} vs {domain:?}\\{user}");
        }
    }
}

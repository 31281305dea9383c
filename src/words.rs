//! One way to give a domain value its fixed string form: [`string_enum!`] declares an enum
//! with an explicit string table, and derives from that one table its `as_str`, `parse`,
//! `Display`, and serde forms, and the list of every variant that the round-trip tests walk.
//!
//! Strings are what these values become at the edges (JSON, text, audit records); inside
//! the crate they are compared as enums, never as strings.

/// Declares `enum $name { $variant => "text", ... }` with `ALL`, `as_str`, `parse` (to
/// `$fallback` for a string the table does not hold, or `None` without a fallback),
/// `Display`, `Serialize` and `Deserialize`, all from the one table.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+ }
        $(fallback $fallback:ident)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $( $(#[$vmeta])* $variant, )+ }

        impl $name {
            /// Every variant, in the table's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The fixed string form, as in JSON and text output.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// The variant whose string form is `s`.
            pub fn from_str_exact(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        $(
        impl $name {
            /// The variant whose string form is `s`, or the fallback for a string this
            /// table does not know (an OS value newer than this build).
            pub fn parse(s: &str) -> $name {
                $name::from_str_exact(s).unwrap_or($name::$fallback)
            }
        }
        )?

        // Lets a test compare a value with the string it stands for.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<$name, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                string_enum!(@from s, $name $(, $fallback)?)
            }
        }
    };
    (@from $s:ident, $name:ident, $fallback:ident) => { Ok($name::parse(&$s)) };
    (@from $s:ident, $name:ident) => {
        $name::from_str_exact(&$s).ok_or_else(|| {
            let known: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
            serde::de::Error::custom(format!("unknown {} {:?} (known: {})", stringify!($name), $s, known.join(", ")))
        })
    };
}

pub(crate) use string_enum;

/// Checks that every variant of a table survives `as_str` → `from_str_exact`, and JSON
/// both ways, and that no two variants share a string.
#[cfg(test)]
pub(crate) fn assert_round_trips<T>(all: &[T])
where
    T: Copy + PartialEq + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Display,
{
    let mut seen = std::collections::HashSet::new();
    for v in all {
        let text = v.to_string();
        assert!(seen.insert(text.clone()), "{text:?} is the string of two variants");
        let json = serde_json::to_string(v).unwrap();
        assert_eq!(json, serde_json::to_string(&text).unwrap());
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *v, "{text}");
    }
}

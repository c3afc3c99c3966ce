//! The names an enum of states or kinds is stored and shown by: `as_str`, `parse`, `ALL`,
//! `NAMES`, `Display`, and `TryFrom<String>` for the store's rows (`#[sqlx(try_from = "String")]`).

macro_rules! names {
    ($ty:ty { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),+];
            /// The stored and shown names, in the order of `ALL`.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(<$ty>::$variant => $name),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }

            /// The accepted names, for an error message.
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $crate::names::UnknownName;

            fn try_from(s: String) -> Result<Self, $crate::names::UnknownName> {
                Self::parse(&s).ok_or_else(|| $crate::names::UnknownName {
                    of: stringify!($ty),
                    name: s,
                })
            }
        }
    };
}

pub(crate) use names;

/// A stored name none of a closed set's values has (a row written by something else, or
/// a newer version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {of}: {name}")]
pub struct UnknownName {
    pub of: &'static str,
    pub name: String,
}

//! Scopes: [`Scope`] (a scope a rule names, fixed at compile time), [`ScopeSet`] (the scopes
//! a token grants), [`ScopeCatalog`] (the scopes of an API, declared with
//! [`scopes!`](crate::scopes)), and the RFC 6749 §3.3 `scope-token` grammar they share.
//!
//! ```
//! use oauth_grpc::{Scope, ScopeSet};
//!
//! const WRITE: Scope = Scope::from_static("orders:write");
//! let granted = ScopeSet::from_space_delimited("orders:read orders:write");
//! assert!(granted.contains(WRITE.as_str()));
//! assert_eq!(granted.to_string(), "orders:read orders:write");
//! ```

use std::fmt;

/// An OAuth 2.0 scope known at compile time, such as `orders:write`.
///
/// The text is a `scope-token` of RFC 6749 §3.3: one or more printable ASCII characters other
/// than space, `"` and `\`. Scopes compare by exact, case-sensitive equality, so
/// `Orders:Write` and `orders:writer` are different scopes from `orders:write`.
///
/// ```
/// use oauth_grpc::Scope;
///
/// const WRITE: Scope = Scope::from_static("orders:write");
/// assert_eq!(WRITE.as_str(), "orders:write");
/// assert!(Scope::new("two words").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(&'static str);

/// Why a string is not a valid scope.
///
/// ```
/// use oauth_grpc::{InvalidScope, Scope};
///
/// assert_eq!(Scope::new(""), Err(InvalidScope::Empty));
/// assert_eq!(Scope::new("a\"b"), Err(InvalidScope::Character { byte: b'"', index: 1 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidScope {
    /// The scope is the empty string.
    Empty,
    /// The scope holds a byte outside the `scope-token` grammar.
    Character {
        /// The offending byte.
        byte: u8,
        /// Its position in the scope.
        index: usize,
    },
}

impl fmt::Display for InvalidScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("a scope cannot be empty"),
            Self::Character { byte, index } => write!(
                f,
                "byte 0x{byte:02x} at index {index} is not allowed in a scope \
                 (RFC 6749 §3.3: printable ASCII without space, `\"` or `\\`)"
            ),
        }
    }
}

impl std::error::Error for InvalidScope {}

/// Whether `byte` may appear in an RFC 6749 §3.3 `scope-token`
/// (`%x21 / %x23-5B / %x5D-7E`).
pub(crate) const fn is_scope_byte(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

impl Scope {
    /// Checks `scope` against the RFC 6749 §3.3 grammar.
    ///
    /// # Errors
    ///
    /// [`InvalidScope`] when `scope` is empty or holds a space, `"`, `\`, a control or a
    /// non-ASCII character.
    ///
    /// ```
    /// # use oauth_grpc::Scope;
    /// assert!(Scope::new("orders:read").is_ok());
    /// assert!(Scope::new("orders read").is_err());
    /// ```
    pub const fn new(scope: &'static str) -> Result<Self, InvalidScope> {
        let bytes = scope.as_bytes();
        if bytes.is_empty() {
            return Err(InvalidScope::Empty);
        }
        let mut index = 0;
        while index < bytes.len() {
            if !is_scope_byte(bytes[index]) {
                return Err(InvalidScope::Character {
                    byte: bytes[index],
                    index,
                });
            }
            index += 1;
        }
        Ok(Self(scope))
    }

    /// Makes a scope from a literal, for use in `const` items.
    ///
    /// # Panics
    ///
    /// When `scope` is not a valid scope-token. In a `const` this is a compile error, which
    /// is what the rule macros and `scopes!` rely on; use [`Scope::new`] for text that is
    /// not fixed at compile time.
    ///
    /// ```
    /// # use oauth_grpc::Scope;
    /// const ADMIN: Scope = Scope::from_static("orders:admin");
    /// # assert_eq!(ADMIN.as_str(), "orders:admin");
    /// ```
    #[allow(clippy::panic)] // documented; evaluated at compile time by the macros
    pub const fn from_static(scope: &'static str) -> Self {
        match Self::new(scope) {
            Ok(scope) => scope,
            Err(InvalidScope::Empty) => panic!("a scope cannot be empty"),
            Err(InvalidScope::Character { .. }) => panic!(
                "a scope must be printable ASCII without space, `\"` or `\\` (RFC 6749 §3.3)"
            ),
        }
    }

    /// The scope's text.
    ///
    /// ```
    /// # use oauth_grpc::Scope;
    /// assert_eq!(Scope::from_static("a:b").as_str(), "a:b");
    /// ```
    pub const fn as_str(self) -> &'static str {
        self.0
    }

    /// Returns the scope itself.
    ///
    /// Rules accept any path that has a `const fn as_scope(self) -> Scope`: the variants of a
    /// [`scopes!`](crate::scopes) catalog, and `Scope` constants like the one below.
    ///
    /// ```
    /// use oauth_grpc::Scope;
    ///
    /// const AUDIT: Scope = Scope::from_static("orders:audit");
    /// assert_eq!(AUDIT.as_scope(), AUDIT);
    /// ```
    pub const fn as_scope(self) -> Self {
        self
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// A set of scopes declared with [`scopes!`](crate::scopes).
///
/// Implemented by every catalog the macro generates; harnesses and reports use it to list
/// all scopes an API knows.
///
/// ```
/// oauth_grpc::scopes! {
///     /// Scopes of the inventory API.
///     pub enum InventoryScope {
///         /// Read stock levels.
///         Read = "inventory:read",
///         Write = "inventory:write",
///     }
/// }
///
/// use oauth_grpc::ScopeCatalog;
/// let all: Vec<&str> = InventoryScope::ALL.iter().map(|s| s.as_str()).collect();
/// assert_eq!(all, ["inventory:read", "inventory:write"]);
/// assert_eq!(InventoryScope::Write.scope().as_str(), "inventory:write");
/// ```
pub trait ScopeCatalog: Copy + Eq + fmt::Debug + 'static {
    /// Every scope of the catalog, in declaration order.
    const ALL: &'static [Scope];

    /// The scope this value stands for.
    fn scope(self) -> Scope;
}

/// The scopes granted to a token, as a set of exact, case-sensitive strings.
///
/// ```
/// use oauth_grpc::ScopeSet;
///
/// let scopes = ScopeSet::from_space_delimited("orders:read  orders:write orders:read");
/// assert_eq!(scopes.len(), 2);
/// assert!(scopes.contains("orders:write"));
/// assert!(!scopes.contains("Orders:Write"));
/// assert!(!scopes.contains("orders:writ"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet {
    // Sorted and without duplicates, so `contains` is a binary search.
    scopes: Box<[Box<str>]>,
}

impl ScopeSet {
    /// The empty set.
    ///
    /// ```
    /// # use oauth_grpc::ScopeSet;
    /// assert!(ScopeSet::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses an RFC 6749 §3.3 `scope` value: scope tokens separated by spaces.
    ///
    /// Runs of spaces are tolerated; tokens with characters outside the `scope-token` grammar
    /// are dropped, since no rule can name them.
    ///
    /// ```
    /// # use oauth_grpc::ScopeSet;
    /// let scopes = ScopeSet::from_space_delimited(" a b\u{7f}c d ");
    /// assert_eq!(scopes.iter().collect::<Vec<_>>(), ["a", "d"]);
    /// ```
    pub fn from_space_delimited(value: &str) -> Self {
        value.split(' ').collect()
    }

    /// Whether the set holds exactly `scope`.
    ///
    /// ```
    /// # use oauth_grpc::ScopeSet;
    /// assert!(ScopeSet::from_iter(["a"]).contains("a"));
    /// ```
    pub fn contains(&self, scope: &str) -> bool {
        self.scopes
            .binary_search_by(|held| (**held).cmp(scope))
            .is_ok()
    }

    /// The scopes in ascending byte order.
    ///
    /// ```
    /// # use oauth_grpc::ScopeSet;
    /// let scopes = ScopeSet::from_iter(["b", "a"]);
    /// assert_eq!(scopes.iter().collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.scopes.iter().map(|s| &**s)
    }

    /// How many distinct scopes the set holds.
    ///
    /// ```
    /// # use oauth_grpc::ScopeSet;
    /// assert_eq!(ScopeSet::from_iter(["a", "a"]).len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.scopes.len()
    }

    /// Whether the set is empty.
    ///
    /// ```
    /// # use oauth_grpc::ScopeSet;
    /// assert!(ScopeSet::from_iter([""]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }
}

impl<S: AsRef<str>> FromIterator<S> for ScopeSet {
    /// Collects scope strings, dropping empty and malformed ones and duplicates.
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut scopes: Vec<Box<str>> = iter
            .into_iter()
            .filter(|s| is_scope_token(s.as_ref()))
            .map(|s| Box::from(s.as_ref()))
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        Self {
            scopes: scopes.into_boxed_slice(),
        }
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for ScopeSet {
    /// Writes the set as a space-delimited `scope` value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&join(self.iter()))
    }
}

/// Whether `value` is one RFC 6749 §3.3 `scope-token`.
fn is_scope_token(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(is_scope_byte)
}

/// Joins scopes with single spaces, as a `scope` value (RFC 6749 §3.3) or a challenge's
/// `scope` attribute (RFC 6750 §3) carries them.
pub(crate) fn join<'a>(scopes: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, scope) in scopes.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(scope);
    }
    out
}

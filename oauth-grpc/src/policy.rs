//! Access rules and the tables that `#[protect]` compiles.
//!
//! Every RPC method of a `#[oauth_grpc::protect]` impl carries one [`Rule`]. The macro
//! gathers them into a `'static` [`ServicePolicy`] and implements [`ProtectedService`] for the
//! service type, so the table can be read back without running the service:
//!
//! ```
//! use examples::OrderBook;
//! use oauth_grpc::{PolicySet, ProtectedService, Rule, Scope};
//!
//! let table = <OrderBook as ProtectedService>::POLICY;
//! assert_eq!(table.name(), "orders.v1.Orders");
//!
//! let create = table.method("CreateOrder").expect("CreateOrder has a rule");
//! assert_eq!(create.path(), "/orders.v1.Orders/CreateOrder");
//! const WRITE: Rule = Rule::AllOf(&[Scope::from_static("orders:write")]);
//! assert_eq!(create.rule(), WRITE);
//!
//! // The layer looks rules up by request path, in O(1) and without allocating.
//! let policies = PolicySet::new().service::<OrderBook>();
//! let rule = policies.lookup("/orders.v1.Orders/GetHTTPStatus").map(|m| m.rule());
//! assert_eq!(rule, Some(Rule::Public));
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::principal::{Principal, ScopeSet};

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

/// The access rule of one RPC method.
///
/// ```
/// use oauth_grpc::{Principal, Rule, Scope};
///
/// const RULE: Rule = Rule::AnyOf(&[
///     Scope::from_static("orders:read"),
///     Scope::from_static("orders:admin"),
/// ]);
/// let reader = Principal::builder().subject("alice").scopes(["orders:read"]).build();
/// assert!(RULE.evaluate(Some(&reader)).is_ok());
/// assert!(RULE.evaluate(None).is_err());
/// assert_eq!(RULE.to_string(), "any of: orders:read, orders:admin");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// No token is needed (`#[public]`).
    Public,
    /// Any valid token (`#[authenticated]`).
    Authenticated,
    /// A valid token holding every one of these scopes (`#[require_scope(..)]`).
    AllOf(&'static [Scope]),
    /// A valid token holding at least one of these scopes (`#[require_any_scope(..)]`).
    AnyOf(&'static [Scope]),
}

impl Rule {
    /// Whether the rule lets calls through without a token.
    ///
    /// ```
    /// # use oauth_grpc::Rule;
    /// assert!(Rule::Public.is_public());
    /// assert!(!Rule::Authenticated.is_public());
    /// ```
    pub const fn is_public(&self) -> bool {
        matches!(self, Self::Public)
    }

    /// The scopes the rule names, in the order written.
    ///
    /// ```
    /// # use oauth_grpc::{Rule, Scope};
    /// assert!(Rule::Authenticated.scopes().is_empty());
    /// const RULE: Rule = Rule::AllOf(&[Scope::from_static("a")]);
    /// assert_eq!(RULE.scopes(), [Scope::from_static("a")]);
    /// ```
    pub const fn scopes(&self) -> &'static [Scope] {
        match self {
            Self::Public | Self::Authenticated => &[],
            Self::AllOf(scopes) | Self::AnyOf(scopes) => scopes,
        }
    }

    /// Whether a verified token holding `granted` satisfies the rule.
    ///
    /// This is the scope part of the rule only: it assumes the token was already verified.
    /// An empty `AllOf` or `AnyOf` is never satisfied (fail closed); the macros never emit
    /// one.
    ///
    /// ```
    /// use oauth_grpc::{Rule, Scope, ScopeSet};
    ///
    /// let granted = ScopeSet::from_space_delimited("orders:read orders:write");
    /// const WRITE: Rule = Rule::AllOf(&[Scope::from_static("orders:write")]);
    /// assert!(WRITE.is_satisfied_by(&granted));
    /// const CANCEL: Rule = Rule::AllOf(&[Scope::from_static("orders:cancel")]);
    /// assert!(!CANCEL.is_satisfied_by(&granted));
    /// ```
    pub fn is_satisfied_by(&self, granted: &ScopeSet) -> bool {
        match self {
            Self::Public | Self::Authenticated => true,
            // An empty all-of would admit every token; like an empty any-of it admits none.
            Self::AllOf(scopes) => {
                !scopes.is_empty() && scopes.iter().all(|s| granted.contains(s.as_str()))
            }
            Self::AnyOf(scopes) => scopes.iter().any(|s| granted.contains(s.as_str())),
        }
    }

    /// Decides a call from the verified principal, if any.
    ///
    /// # Errors
    ///
    /// [`Denial::Unauthenticated`] when the rule needs a token and there is no principal;
    /// [`Denial::InsufficientScope`] when the principal's scopes do not satisfy the rule.
    ///
    /// ```
    /// use oauth_grpc::{Denial, Principal, Rule, Scope};
    ///
    /// const RULE: Rule = Rule::AllOf(&[Scope::from_static("orders:write")]);
    /// assert_eq!(RULE.evaluate(None), Err(Denial::Unauthenticated));
    /// let reader = Principal::builder().scopes(["orders:read"]).build();
    /// assert_eq!(RULE.evaluate(Some(&reader)), Err(Denial::InsufficientScope(RULE)));
    /// ```
    pub fn evaluate(&self, principal: Option<&Principal>) -> Result<(), Denial> {
        match (self, principal) {
            (Self::Public, _) => Ok(()),
            (_, None) => Err(Denial::Unauthenticated),
            (_, Some(principal)) if self.is_satisfied_by(principal.scopes()) => Ok(()),
            (_, Some(_)) => Err(Denial::InsufficientScope(*self)),
        }
    }
}

impl fmt::Display for Rule {
    /// Writes the rule in words, as reports show it: `public`, `authenticated`,
    /// `all of: a, b`, `any of: a, b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (label, scopes) = match self {
            Self::Public => return f.write_str("public"),
            Self::Authenticated => return f.write_str("authenticated"),
            Self::AllOf(scopes) => ("all of", scopes),
            Self::AnyOf(scopes) => ("any of", scopes),
        };
        write!(f, "{label}: ")?;
        for (i, scope) in scopes.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

/// Why a rule refused a call. Converts into a [`tonic::Status`] carrying an RFC 6750
/// `www-authenticate` value.
///
/// ```
/// use oauth_grpc::{Denial, Rule, Scope};
///
/// let status = tonic::Status::from(Denial::Unauthenticated);
/// assert_eq!(status.code(), tonic::Code::Unauthenticated);
/// assert_eq!(status.metadata().get("www-authenticate").unwrap(), "Bearer");
///
/// const RULE: Rule = Rule::AllOf(&[Scope::from_static("orders:write")]);
/// let status = tonic::Status::from(Denial::InsufficientScope(RULE));
/// assert_eq!(status.code(), tonic::Code::PermissionDenied);
/// assert_eq!(
///     status.metadata().get("www-authenticate").unwrap(),
///     r#"Bearer error="insufficient_scope", scope="orders:write""#,
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// The rule needs a verified token and the call has none.
    Unauthenticated,
    /// The token is valid but lacks the scopes of this rule.
    InsufficientScope(Rule),
}

impl From<Denial> for tonic::Status {
    fn from(denial: Denial) -> Self {
        // One mapping to `Status` for the layer and the generated checks alike.
        tonic::Status::from(crate::error::AuthError::from(denial))
    }
}

/// The rule of one RPC method, as compiled by `#[protect]`.
///
/// ```
/// use examples::OrderBook;
/// use oauth_grpc::ProtectedService;
///
/// let method = OrderBook::POLICY.method("GetHTTPStatus").unwrap();
/// assert_eq!(method.rust_name(), "get_http_status");
/// assert_eq!(method.path(), "/orders.v1.Orders/GetHTTPStatus");
/// assert!(method.rule().is_public());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodPolicy {
    rpc: &'static str,
    path: &'static str,
    rust_name: &'static str,
    rule: Rule,
}

impl MethodPolicy {
    /// A method entry; `path` must be `/{service}/{rpc}`.
    ///
    /// The macros build these; hand-written tables are for tests and for services that are
    /// not generated by tonic.
    ///
    /// ```
    /// use oauth_grpc::{MethodPolicy, Rule};
    ///
    /// const CHECK: MethodPolicy =
    ///     MethodPolicy::new("Check", "/grpc.health.v1.Health/Check", "check", Rule::Public);
    /// assert_eq!(CHECK.rpc(), "Check");
    /// ```
    pub const fn new(
        rpc: &'static str,
        path: &'static str,
        rust_name: &'static str,
        rule: Rule,
    ) -> Self {
        Self {
            rpc,
            path,
            rust_name,
            rule,
        }
    }

    /// The method's name in the `.proto`, e.g. `CreateOrder`.
    ///
    /// ```
    /// # use oauth_grpc::{MethodPolicy, Rule};
    /// # let m = MethodPolicy::new("Check", "/grpc.health.v1.Health/Check", "check", Rule::Public);
    /// assert_eq!(m.rpc(), "Check");
    /// ```
    pub const fn rpc(&self) -> &'static str {
        self.rpc
    }

    /// The HTTP/2 path of the method, `/{package}.{Service}/{Method}`.
    ///
    /// ```
    /// # use oauth_grpc::{MethodPolicy, Rule};
    /// # let m = MethodPolicy::new("Check", "/grpc.health.v1.Health/Check", "check", Rule::Public);
    /// assert_eq!(m.path(), "/grpc.health.v1.Health/Check");
    /// ```
    pub const fn path(&self) -> &'static str {
        self.path
    }

    /// The name of the Rust method that implements the RPC, e.g. `create_order`.
    ///
    /// ```
    /// # use oauth_grpc::{MethodPolicy, Rule};
    /// # let m = MethodPolicy::new("Check", "/grpc.health.v1.Health/Check", "check", Rule::Public);
    /// assert_eq!(m.rust_name(), "check");
    /// ```
    pub const fn rust_name(&self) -> &'static str {
        self.rust_name
    }

    /// The access rule.
    ///
    /// ```
    /// # use oauth_grpc::{MethodPolicy, Rule};
    /// # let m = MethodPolicy::new("Check", "/grpc.health.v1.Health/Check", "check", Rule::Public);
    /// assert_eq!(m.rule(), Rule::Public);
    /// ```
    pub const fn rule(&self) -> Rule {
        self.rule
    }
}

/// The compiled access table of one gRPC service.
///
/// ```
/// use examples::OrderBook;
/// use oauth_grpc::ProtectedService;
///
/// for method in OrderBook::POLICY.methods() {
///     println!("{:40} {}", method.path(), method.rule());
/// }
/// assert_eq!(OrderBook::POLICY.methods().len(), 7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServicePolicy {
    name: &'static str,
    methods: &'static [MethodPolicy],
}

impl ServicePolicy {
    /// A table for the service `name` (`package.Service`).
    ///
    /// ```
    /// use oauth_grpc::{MethodPolicy, Rule, ServicePolicy};
    ///
    /// const HEALTH: ServicePolicy = ServicePolicy::new(
    ///     "grpc.health.v1.Health",
    ///     &[MethodPolicy::new("Check", "/grpc.health.v1.Health/Check", "check", Rule::Public)],
    /// );
    /// assert_eq!(HEALTH.methods().len(), 1);
    /// ```
    pub const fn new(name: &'static str, methods: &'static [MethodPolicy]) -> Self {
        Self { name, methods }
    }

    /// The full service name, `package.Service`, as tonic's generated `SERVICE_NAME`.
    ///
    /// ```
    /// # use oauth_grpc::ProtectedService;
    /// assert_eq!(examples::OrderBook::POLICY.name(), "orders.v1.Orders");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Every method entry, in the order of the impl.
    ///
    /// ```
    /// # use oauth_grpc::ProtectedService;
    /// assert_eq!(examples::OrderBook::POLICY.methods()[0].rpc(), "CreateOrder");
    /// ```
    pub const fn methods(&self) -> &'static [MethodPolicy] {
        self.methods
    }

    /// The entry for the proto method `rpc` (e.g. `CreateOrder`), if the table has one.
    ///
    /// ```
    /// # use oauth_grpc::ProtectedService;
    /// assert!(examples::OrderBook::POLICY.method("CreateOrder").is_some());
    /// assert!(examples::OrderBook::POLICY.method("create_order").is_none());
    /// ```
    pub fn method(&self, rpc: &str) -> Option<&'static MethodPolicy> {
        self.methods.iter().find(|m| m.rpc == rpc)
    }
}

/// A service type whose RPC methods carry compiled access rules.
///
/// Implemented by `#[oauth_grpc::protect]`; there is rarely a reason to implement it by hand.
///
/// ```
/// use oauth_grpc::ProtectedService;
///
/// fn rules_of<S: ProtectedService>() -> usize {
///     S::POLICY.methods().len()
/// }
/// assert_eq!(rules_of::<examples::OrderBook>(), 7);
/// ```
pub trait ProtectedService {
    /// The service's access table.
    const POLICY: &'static ServicePolicy;
}

/// The rules of every service a server mounts, indexed by request path.
///
/// Built once at start-up; [`lookup`](Self::lookup) is a hash-map probe on the borrowed path,
/// with no allocation. If two tables disagree about one path, that path is left out (so calls
/// to it are refused) and the clash is listed by [`conflicts`](Self::conflicts).
///
/// ```
/// use examples::{AdminDesk, OrderBook};
/// use oauth_grpc::PolicySet;
///
/// let policies = PolicySet::new().service::<OrderBook>().service::<AdminDesk>();
/// assert_eq!(policies.services().count(), 2);
/// assert!(policies.lookup("/orders.v1.Orders/CreateOrder").is_some());
/// assert!(policies.lookup("/orders.v1.Orders/Unknown").is_none());
/// assert!(policies.conflicts().is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    services: Vec<&'static ServicePolicy>,
    by_path: HashMap<&'static str, &'static MethodPolicy>,
    conflicts: Vec<&'static str>,
    public_services: HashSet<String>,
    public_prefixes: Vec<String>,
}

impl PolicySet {
    /// An empty set: every path is unknown.
    ///
    /// ```
    /// # use oauth_grpc::PolicySet;
    /// assert!(PolicySet::new().lookup("/a.B/C").is_none());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the table of a `#[protect]`ed service type.
    ///
    /// ```
    /// # use oauth_grpc::PolicySet;
    /// let policies = PolicySet::new().service::<examples::OrderBook>();
    /// # assert_eq!(policies.methods().count(), 7);
    /// ```
    #[must_use]
    pub fn service<S: ProtectedService + ?Sized>(self) -> Self {
        self.policy(S::POLICY)
    }

    /// Adds a table given directly, e.g. a hand-written one for a service that tonic did not
    /// generate.
    ///
    /// ```
    /// use oauth_grpc::{MethodPolicy, PolicySet, Rule, ServicePolicy};
    ///
    /// static HEALTH: ServicePolicy = ServicePolicy::new(
    ///     "grpc.health.v1.Health",
    ///     &[MethodPolicy::new("Check", "/grpc.health.v1.Health/Check", "check", Rule::Public)],
    /// );
    /// let policies = PolicySet::new().policy(&HEALTH);
    /// assert!(policies.lookup("/grpc.health.v1.Health/Check").is_some());
    /// ```
    #[must_use]
    pub fn policy(mut self, policy: &'static ServicePolicy) -> Self {
        if self.services.contains(&policy) {
            return self;
        }
        self.services.push(policy);
        for method in policy.methods() {
            if self.conflicts.contains(&method.path) {
                continue;
            }
            match self.by_path.get(method.path) {
                Some(known) if *known == method => {}
                Some(_) => {
                    self.by_path.remove(method.path);
                    self.conflicts.push(method.path);
                }
                None => {
                    self.by_path.insert(method.path, method);
                }
            }
        }
        self
    }

    /// Opens every method of a service that has no compiled table, such as the standard
    /// health service: `"grpc.health.v1.Health"`. A name ending in `.*` opens every service
    /// under that package prefix: `"grpc.reflection.*"`.
    ///
    /// Compiled tables take precedence: a path with its own rule keeps it.
    ///
    /// ```
    /// use oauth_grpc::{PolicySet, Rule};
    ///
    /// let policies = PolicySet::new()
    ///     .public_service("grpc.health.v1.Health")
    ///     .public_service("grpc.reflection.*");
    /// assert_eq!(policies.rule_for("/grpc.health.v1.Health/Check"), Some(Rule::Public));
    /// assert_eq!(
    ///     policies.rule_for("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
    ///     Some(Rule::Public)
    /// );
    /// assert_eq!(policies.rule_for("/grpc.health.v1.HealthX/Check"), None);
    /// ```
    #[must_use]
    pub fn public_service(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        match name.strip_suffix(".*") {
            // `grpc.reflection.*` opens `grpc.reflection.` and below; a bare `*` or `.*` is
            // taken literally and opens nothing.
            Some(prefix) if !prefix.is_empty() && !prefix.contains('*') => {
                self.public_prefixes.push(format!("{prefix}."));
            }
            _ => {
                self.public_services.insert(name);
            }
        }
        self
    }

    /// The rule for a request path: the compiled rule, or [`Rule::Public`] for a service
    /// opened with [`public_service`](Self::public_service), or `None`.
    ///
    /// ```
    /// # use oauth_grpc::{PolicySet, Rule};
    /// let policies = PolicySet::new().service::<examples::OrderBook>();
    /// assert_eq!(policies.rule_for("/orders.v1.Orders/WhoAmI"), Some(Rule::Authenticated));
    /// assert_eq!(policies.rule_for("/orders.v1.Orders/Nope"), None);
    /// ```
    pub fn rule_for(&self, path: &str) -> Option<Rule> {
        if let Some(method) = self.by_path.get(path) {
            return Some(method.rule());
        }
        if self.public_services.is_empty() && self.public_prefixes.is_empty() {
            return None;
        }
        if self.conflicts.contains(&path) {
            return None;
        }
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        if service.is_empty() || method.is_empty() || method.contains('/') {
            return None;
        }
        let open = self.public_services.contains(service)
            || self
                .public_prefixes
                .iter()
                .any(|p| service.starts_with(p.as_str()));
        open.then_some(Rule::Public)
    }

    /// The rule for a request path such as `/orders.v1.Orders/CreateOrder`.
    ///
    /// ```
    /// # use oauth_grpc::PolicySet;
    /// let policies = PolicySet::new().service::<examples::OrderBook>();
    /// let method = policies.lookup("/orders.v1.Orders/WhoAmI").unwrap();
    /// assert_eq!(method.rust_name(), "who_am_i");
    /// ```
    pub fn lookup(&self, path: &str) -> Option<&'static MethodPolicy> {
        self.by_path.get(path).copied()
    }

    /// The service tables, in the order they were added.
    ///
    /// ```
    /// # use oauth_grpc::PolicySet;
    /// let policies = PolicySet::new().service::<examples::OrderBook>();
    /// assert_eq!(policies.services().next().unwrap().name(), "orders.v1.Orders");
    /// ```
    pub fn services(&self) -> impl Iterator<Item = &'static ServicePolicy> + '_ {
        self.services.iter().copied()
    }

    /// Every method entry of every service, in the order added.
    ///
    /// ```
    /// # use oauth_grpc::PolicySet;
    /// let policies = PolicySet::new().service::<examples::OrderBook>();
    /// assert!(policies.methods().any(|m| m.rpc() == "WatchOrders"));
    /// ```
    pub fn methods(&self) -> impl Iterator<Item = &'static MethodPolicy> + '_ {
        self.services.iter().flat_map(|s| s.methods().iter())
    }

    /// Paths that two added tables define differently. They are left out of the lookup, so
    /// calls to them are refused until the clash is fixed.
    ///
    /// ```
    /// # use oauth_grpc::PolicySet;
    /// assert!(PolicySet::new().service::<examples::OrderBook>().conflicts().is_empty());
    /// ```
    pub fn conflicts(&self) -> &[&'static str] {
        &self.conflicts
    }
}

//! [`PolicySet`]: the rules of every service a server mounts, looked up by request path.

use std::collections::{HashMap, HashSet};

use super::{MethodPolicy, ProtectedService, Rule, ServicePolicy};

/// The rules of every service a server mounts, indexed by request path.
///
/// Built once at start-up; [`lookup`](Self::lookup) is a hash-map probe on the borrowed path,
/// with no allocation. If two tables disagree about one path, that path is left out (so calls
/// to it are refused) and the clash is listed by [`conflicts`](Self::conflicts).
///
/// ```
/// # use examples::{AdminDesk, OrderBook};
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
    /// # use examples::OrderBook;
    /// # use oauth_grpc::PolicySet;
    /// let policies = PolicySet::new().service::<OrderBook>();
    /// # assert_eq!(policies.methods().count(), 9);
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
            if self.conflicts.contains(&method.path()) {
                continue;
            }
            match self.by_path.get(method.path()) {
                // How a rule was written (its own, or the default) is not a clash.
                Some(known) if known.enforced_as(method) => {}
                Some(_) => {
                    self.by_path.remove(method.path());
                    self.conflicts.push(method.path());
                }
                None => {
                    self.by_path.insert(method.path(), method);
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

    /// The services opened with [`public_service`](Self::public_service), sorted: exact names
    /// and `package.*` prefixes, as given.
    ///
    /// ```
    /// use oauth_grpc::PolicySet;
    ///
    /// let policies = PolicySet::new()
    ///     .public_service("grpc.reflection.*")
    ///     .public_service("grpc.health.v1.Health");
    /// assert_eq!(policies.public_services(), ["grpc.health.v1.Health", "grpc.reflection.*"]);
    /// ```
    pub fn public_services(&self) -> Vec<String> {
        let mut names: Vec<String> = self.public_services.iter().cloned().collect();
        names.extend(self.public_prefixes.iter().map(|p| format!("{p}*")));
        names.sort();
        names.dedup();
        names
    }

    /// The compiled entry of the method at a request path, if a table has one (a public
    /// service's methods have none).
    ///
    /// ```
    /// # use examples::OrderBook;
    /// # use oauth_grpc::{PolicySet, RpcKind};
    /// let policies = PolicySet::new().service::<OrderBook>();
    /// let watch = policies.method_for("/orders.v1.Orders/WatchOrders").unwrap();
    /// assert_eq!(watch.kind(), RpcKind::ServerStreaming);
    /// ```
    pub fn method_for(&self, path: &str) -> Option<&'static MethodPolicy> {
        self.by_path.get(path).copied()
    }

    /// The rule for a request path: the compiled rule, or [`Rule::Public`] for a service
    /// opened with [`public_service`](Self::public_service), or `None`.
    ///
    /// ```
    /// # use examples::OrderBook;
    /// # use oauth_grpc::{PolicySet, Rule};
    /// let policies = PolicySet::new().service::<OrderBook>();
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
    /// # use examples::OrderBook;
    /// # use oauth_grpc::PolicySet;
    /// let policies = PolicySet::new().service::<OrderBook>();
    /// let method = policies.lookup("/orders.v1.Orders/WhoAmI").unwrap();
    /// assert_eq!(method.rust_name(), "who_am_i");
    /// ```
    pub fn lookup(&self, path: &str) -> Option<&'static MethodPolicy> {
        self.by_path.get(path).copied()
    }

    /// The service tables, in the order they were added.
    ///
    /// ```
    /// # use examples::OrderBook;
    /// # use oauth_grpc::PolicySet;
    /// let policies = PolicySet::new().service::<OrderBook>();
    /// assert_eq!(policies.services().next().unwrap().name(), "orders.v1.Orders");
    /// ```
    pub fn services(&self) -> impl Iterator<Item = &'static ServicePolicy> + '_ {
        self.services.iter().copied()
    }

    /// Every method entry of every service, in the order added.
    ///
    /// ```
    /// # use examples::OrderBook;
    /// # use oauth_grpc::PolicySet;
    /// let policies = PolicySet::new().service::<OrderBook>();
    /// assert!(policies.methods().any(|m| m.rpc() == "WatchOrders"));
    /// ```
    pub fn methods(&self) -> impl Iterator<Item = &'static MethodPolicy> + '_ {
        self.services.iter().flat_map(|s| s.methods().iter())
    }

    /// Paths that two added tables define differently. They are left out of the lookup, so
    /// calls to them are refused until the clash is fixed.
    ///
    /// ```
    /// # use examples::OrderBook;
    /// # use oauth_grpc::PolicySet;
    /// assert!(PolicySet::new().service::<OrderBook>().conflicts().is_empty());
    /// ```
    pub fn conflicts(&self) -> &[&'static str] {
        &self.conflicts
    }
}

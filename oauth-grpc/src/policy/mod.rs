//! Access rules and the tables that `#[protect]` compiles.
//!
//! Every RPC method of a `#[oauth_grpc::protect]` impl carries one [`Rule`]. The macro
//! gathers them into a `'static` [`ServicePolicy`] and implements [`ProtectedService`] for the
//! service type, so the table can be read back without running the service:
//!
//! ```
//! # use examples::OrderBook;
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

mod delegation;
mod rule;
mod set;
mod table;

pub use self::delegation::Delegation;
pub use self::rule::{Denial, Rule};
pub use self::set::PolicySet;
pub use self::table::{MethodPolicy, ProtectedService, RpcKind, ServicePolicy};

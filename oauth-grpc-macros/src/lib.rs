//! Procedural macros of [`oauth-grpc`](https://docs.rs/oauth-grpc): compile-time OAuth 2.0
//! access rules for tonic services. Depend on `oauth-grpc`, which re-exports them.
//!
//! This file holds only the entry points. `#[protect]` is a pipeline in `protect/`: parse
//! (`args`) → model (`model`) → validate (`validate`, which reports every error of the impl at
//! once) → expand (`expand`, which cannot fail), or on error the user's impl unchanged plus
//! the errors (`expand::fallback`). `scopes!` has its own small pipeline in `scopes.rs`;
//! `naming` maps proto names to Rust names as tonic does, `errors` collects errors and
//! `suggest` finds the rule that a misspelt attribute meant.

mod errors;
mod naming;
mod protect;
mod scopes;
mod suggest;

use proc_macro::TokenStream;

/// Compiles the access rules of a tonic service impl.
///
/// Put it on the impl of a tonic-generated service trait, above or below
/// `#[tonic::async_trait]`. Every method needs one rule —
/// [`require_scope`](macro@require_scope), [`require_any_scope`](macro@require_any_scope),
/// [`authenticated`](macro@authenticated) or [`public`](macro@public) — or the impl a default:
/// `#[protect(default = require_scope("…"))]`, `default = require_any_scope(…)` or
/// `default = authenticated` (never `public`). The default may end with `bound` or `once`
/// (`default = require_scope("…", bound)`), like a method's rule; a method with a rule of its
/// own does not inherit them, since its rule replaces the default whole.
///
/// The macro needs the gRPC service name, which tonic generates beside the trait. It finds it
/// from the trait named by its module path (`orders_admin_server::OrdersAdmin`, the
/// module's `SERVICE_NAME`) or, for a trait named alone as tonic's examples import it
/// (`OrdersAdmin`), from the server type `OrdersAdminServer` in scope. Anywhere else, name
/// the server: `#[protect(server = orders_admin_server::OrdersAdminServer)]`.
///
/// The macro implements `oauth_grpc::ProtectedService` for the service type, whose `POLICY`
/// is the `'static` table of paths and rules, and puts at the top of every non-public method a
/// check of its rule against the verified `Principal` in the request.
///
/// ```
/// # use examples::pb::{orders_admin_server, *};
/// # use examples::OrderStream;
/// use oauth_grpc::ProtectedService;
/// use tonic::{Request, Response, Status};
///
/// struct AdminDesk;
///
/// #[oauth_grpc::protect(default = require_scope("orders:admin"))]
/// #[tonic::async_trait]
/// impl orders_admin_server::OrdersAdmin for AdminDesk {
///     async fn purge_cancelled(&self, _: Request<PurgeCancelledRequest>) -> Result<Response<PurgeCancelledResponse>, Status> {
///         Ok(Response::new(PurgeCancelledResponse::default()))
///     }
///
///     type ExportOrdersStream = OrderStream;
///
///     #[authenticated]
///     async fn export_orders(&self, _: Request<ExportOrdersRequest>) -> Result<Response<OrderStream>, Status> {
///         let orders: OrderStream = Box::pin(tokio_stream::empty());
///         Ok(Response::new(orders))
///     }
/// }
///
/// let paths: Vec<_> = AdminDesk::POLICY.methods().iter().map(|m| m.path()).collect();
/// assert_eq!(paths, ["/orders.v1.OrdersAdmin/PurgeCancelled", "/orders.v1.OrdersAdmin/ExportOrders"]);
/// ```
///
/// The trait imported by name, as in tonic's examples, with its server beside it:
///
/// ```
/// # use examples::pb::*;
/// # use examples::OrderStream;
/// # use tonic::{Request, Response, Status};
/// use examples::pb::orders_admin_server::{OrdersAdmin, OrdersAdminServer};
///
/// struct AdminDesk;
///
/// #[oauth_grpc::protect(default = require_scope("orders:admin"))]
/// #[tonic::async_trait]
/// impl OrdersAdmin for AdminDesk {
///     // …
///     # async fn purge_cancelled(&self, _: Request<PurgeCancelledRequest>) -> Result<Response<PurgeCancelledResponse>, Status> {
///     #     Ok(Response::new(PurgeCancelledResponse::default()))
///     # }
///     # type ExportOrdersStream = OrderStream;
///     # async fn export_orders(&self, _: Request<ExportOrdersRequest>) -> Result<Response<OrderStream>, Status> {
///     #     Ok(Response::new(Box::pin(tokio_stream::empty())))
///     # }
/// }
///
/// let _server = OrdersAdminServer::new(AdminDesk);
/// # use oauth_grpc::ProtectedService;
/// # assert_eq!(AdminDesk::POLICY.name(), "orders.v1.OrdersAdmin");
/// ```
#[proc_macro_attribute]
pub fn protect(args: TokenStream, input: TokenStream) -> TokenStream {
    protect::protect(args.into(), input.into()).into()
}

/// Admits a call whose token holds **every** listed scope.
///
/// Scopes are string literals or paths to a scope (a `scopes!` variant, a `Scope` const).
/// Add `rpc = "ProtoName"` when the Rust name does not map back to the proto name. Only valid
/// on a method of a [`protect`](macro@protect) impl.
///
/// End the scopes with the bare flag `bound` to admit only sender-constrained tokens: tokens
/// bound to the caller's TLS client certificate (RFC 8705), refused from any other
/// connection, or to a DPoP key (RFC 9449), refused without a proof by that key. [`require_any_scope`](macro@require_any_scope) and
/// [`authenticated`](macro@authenticated) take it too (`#[authenticated(bound)]`);
/// [`public`](macro@public) cannot, since it reads no token. The flag is the single word
/// `bound`: `bound = true` and `bound(…)` are errors, and a lowercase word near it (`bund`,
/// `bounded`) is reported as a misspelling, not read as a scope.
///
/// End them with the bare flag `once` (alone or beside `bound`, in either order) to admit
/// each token once on this method: a token must carry a `jti`, and a `jti` that already
/// called the method is refused with `UNAUTHENTICATED`, in the token's whole lifetime and on
/// every replica that shares the layer's store. For calls that must not be repeated on one
/// authorization, such as a refund. It takes no value either, a near miss (`onc`, `one`) is
/// reported, and [`public`](macro@public) cannot take it.
///
/// ```
/// # use examples::pb::{orders_admin_server, *};
/// # use examples::{OrderScope, OrderStream};
/// # use tonic::{Request, Response, Status};
/// # struct AdminDesk;
/// #[oauth_grpc::protect]
/// #[tonic::async_trait]
/// impl orders_admin_server::OrdersAdmin for AdminDesk {
///     #[require_scope("orders:admin", "orders:write")]
///     async fn purge_cancelled(&self, _: Request<PurgeCancelledRequest>) -> Result<Response<PurgeCancelledResponse>, Status> {
///         Ok(Response::new(PurgeCancelledResponse::default()))
///     }
///
///     type ExportOrdersStream = OrderStream;
///
///     #[require_scope(OrderScope::Admin, rpc = "ExportOrders")]
///     async fn export_orders(&self, _: Request<ExportOrdersRequest>) -> Result<Response<OrderStream>, Status> {
///         # let orders: OrderStream = Box::pin(tokio_stream::empty());
///         Ok(Response::new(orders))
///     }
/// }
/// # use oauth_grpc::ProtectedService;
/// # assert_eq!(AdminDesk::POLICY.methods()[0].rule().to_string(), "all of: orders:admin, orders:write");
/// ```
///
/// Only certificate-bound tokens may purge:
///
/// ```
/// # use examples::pb::{orders_admin_server, *};
/// # use examples::{OrderScope, OrderStream};
/// # use tonic::{Request, Response, Status};
/// # struct AdminDesk;
/// #[oauth_grpc::protect(default = require_scope(OrderScope::Admin))]
/// #[tonic::async_trait]
/// impl orders_admin_server::OrdersAdmin for AdminDesk {
///     #[require_scope(OrderScope::Admin, bound)]
///     async fn purge_cancelled(&self, _: Request<PurgeCancelledRequest>) -> Result<Response<PurgeCancelledResponse>, Status> {
///         Ok(Response::new(PurgeCancelledResponse::default()))
///     }
///     # type ExportOrdersStream = OrderStream;
///     # async fn export_orders(&self, _: Request<ExportOrdersRequest>) -> Result<Response<OrderStream>, Status> {
///     #     Ok(Response::new(Box::pin(tokio_stream::empty())))
///     # }
/// }
/// use oauth_grpc::ProtectedService;
/// let purge = AdminDesk::POLICY.method("PurgeCancelled").unwrap();
/// assert!(purge.sender_constrained());
/// assert!(!AdminDesk::POLICY.method("ExportOrders").unwrap().sender_constrained());
/// ```
///
/// Each bound token may purge once:
///
/// ```
/// # use examples::pb::{orders_admin_server, *};
/// # use examples::{OrderScope, OrderStream};
/// # use tonic::{Request, Response, Status};
/// # struct AdminDesk;
/// #[oauth_grpc::protect(default = require_scope(OrderScope::Admin))]
/// #[tonic::async_trait]
/// impl orders_admin_server::OrdersAdmin for AdminDesk {
///     #[require_scope(OrderScope::Admin, bound, once)]
///     async fn purge_cancelled(&self, _: Request<PurgeCancelledRequest>) -> Result<Response<PurgeCancelledResponse>, Status> {
///         Ok(Response::new(PurgeCancelledResponse::default()))
///     }
///     # type ExportOrdersStream = OrderStream;
///     # async fn export_orders(&self, _: Request<ExportOrdersRequest>) -> Result<Response<OrderStream>, Status> {
///     #     Ok(Response::new(Box::pin(tokio_stream::empty())))
///     # }
/// }
/// use oauth_grpc::ProtectedService;
/// let purge = AdminDesk::POLICY.method("PurgeCancelled").unwrap();
/// assert!(purge.once() && purge.sender_constrained());
/// assert!(!AdminDesk::POLICY.method("ExportOrders").unwrap().once());
/// ```
#[proc_macro_attribute]
pub fn require_scope(_args: TokenStream, item: TokenStream) -> TokenStream {
    protect::stray_rule("require_scope", item.into()).into()
}

/// Admits a call whose token holds **at least one** of the listed scopes.
///
/// Takes the same arguments as [`require_scope`](macro@require_scope), `bound` and `once`
/// included (`#[require_any_scope("orders:admin", "orders:purge", bound)]`). Only valid on a
/// method of a [`protect`](macro@protect) impl.
///
/// ```
/// # use examples::pb::{orders_admin_server, *};
/// # use examples::OrderStream;
/// # use tonic::{Request, Response, Status};
/// # struct AdminDesk;
/// #[oauth_grpc::protect(default = authenticated)]
/// #[tonic::async_trait]
/// impl orders_admin_server::OrdersAdmin for AdminDesk {
///     #[require_any_scope("orders:admin", "orders:purge")]
///     async fn purge_cancelled(&self, _: Request<PurgeCancelledRequest>) -> Result<Response<PurgeCancelledResponse>, Status> {
///         Ok(Response::new(PurgeCancelledResponse::default()))
///     }
///     # type ExportOrdersStream = OrderStream;
///     # async fn export_orders(&self, _: Request<ExportOrdersRequest>) -> Result<Response<OrderStream>, Status> {
///     #     let orders: OrderStream = Box::pin(tokio_stream::empty());
///     #     Ok(Response::new(orders))
///     # }
/// }
/// # use oauth_grpc::ProtectedService;
/// # assert_eq!(AdminDesk::POLICY.methods()[0].rule().to_string(), "any of: orders:admin, orders:purge");
/// ```
#[proc_macro_attribute]
pub fn require_any_scope(_args: TokenStream, item: TokenStream) -> TokenStream {
    protect::stray_rule("require_any_scope", item.into()).into()
}

/// Admits a call with any valid token, whatever its scopes.
///
/// Takes no scopes; `#[authenticated(rpc = "ProtoName")]` when the name needs it,
/// `#[authenticated(bound)]` to admit only sender-constrained tokens and
/// `#[authenticated(once)]` to admit each token once (see
/// [`require_scope`](macro@require_scope)). Only valid on a method of a
/// [`protect`](macro@protect) impl.
///
/// ```
/// # use examples::pb::{orders_admin_server, *};
/// # use examples::OrderStream;
/// # use tonic::{Request, Response, Status};
/// # struct AdminDesk;
/// #[oauth_grpc::protect(default = require_scope("orders:admin"))]
/// #[tonic::async_trait]
/// impl orders_admin_server::OrdersAdmin for AdminDesk {
///     # async fn purge_cancelled(&self, _: Request<PurgeCancelledRequest>) -> Result<Response<PurgeCancelledResponse>, Status> {
///     #     Ok(Response::new(PurgeCancelledResponse::default()))
///     # }
///     type ExportOrdersStream = OrderStream;
///
///     #[authenticated]
///     async fn export_orders(&self, _: Request<ExportOrdersRequest>) -> Result<Response<OrderStream>, Status> {
///         # let orders: OrderStream = Box::pin(tokio_stream::empty());
///         Ok(Response::new(orders))
///     }
/// }
/// # use oauth_grpc::{ProtectedService, Rule};
/// # assert_eq!(AdminDesk::POLICY.methods()[1].rule(), Rule::Authenticated);
/// ```
#[proc_macro_attribute]
pub fn authenticated(_args: TokenStream, item: TokenStream) -> TokenStream {
    protect::stray_rule("authenticated", item.into()).into()
}

/// Admits every call; no token is read. Opening a method is always stated on the method.
///
/// Takes no scopes, no `bound` and no `once` (a public method reads no token, so it cannot
/// require a bound one or count a token's uses); `#[public(rpc = "ProtoName")]` when the name
/// needs it. Only valid on a method of a [`protect`](macro@protect) impl.
///
/// ```
/// # use examples::pb::{orders_admin_server, *};
/// # use examples::OrderStream;
/// # use tonic::{Request, Response, Status};
/// # struct AdminDesk;
/// #[oauth_grpc::protect(default = require_scope("orders:admin"))]
/// #[tonic::async_trait]
/// impl orders_admin_server::OrdersAdmin for AdminDesk {
///     # async fn purge_cancelled(&self, _: Request<PurgeCancelledRequest>) -> Result<Response<PurgeCancelledResponse>, Status> {
///     #     Ok(Response::new(PurgeCancelledResponse::default()))
///     # }
///     type ExportOrdersStream = OrderStream;
///
///     #[public]
///     async fn export_orders(&self, _: Request<ExportOrdersRequest>) -> Result<Response<OrderStream>, Status> {
///         # let orders: OrderStream = Box::pin(tokio_stream::empty());
///         Ok(Response::new(orders))
///     }
/// }
/// # use oauth_grpc::{ProtectedService, Rule};
/// # assert_eq!(AdminDesk::POLICY.methods()[1].rule(), Rule::Public);
/// ```
#[proc_macro_attribute]
pub fn public(_args: TokenStream, item: TokenStream) -> TokenStream {
    protect::stray_rule("public", item.into()).into()
}

/// Lets the streams of one rpc run past their token's expiry.
///
/// By default a server-streaming, client-streaming or bidi call admitted with a token ends
/// with `UNAUTHENTICATED` ("the token has expired") when the token expires. A method marked
/// `#[outlives_token(reason = "…")]` is checked when its stream opens and not again: whoever
/// held the token then keeps the stream after the token expired or was revoked. Use it only
/// for streams that must outlive tokens on purpose; the reason is in the compiled table and in
/// the permission reports. Only valid next to the rule of a streaming method of a
/// [`protect`](macro@protect) impl.
///
/// ```
/// # use examples::pb::{orders_admin_server, *};
/// # use examples::OrderStream;
/// # use tonic::{Request, Response, Status};
/// # struct AdminDesk;
/// #[oauth_grpc::protect(default = require_scope("orders:admin"))]
/// #[tonic::async_trait]
/// impl orders_admin_server::OrdersAdmin for AdminDesk {
///     # async fn purge_cancelled(&self, _: Request<PurgeCancelledRequest>) -> Result<Response<PurgeCancelledResponse>, Status> {
///     #     Ok(Response::new(PurgeCancelledResponse::default()))
///     # }
///     type ExportOrdersStream = OrderStream;
///
///     #[outlives_token(reason = "a full export takes longer than a token lives")]
///     async fn export_orders(&self, _: Request<ExportOrdersRequest>) -> Result<Response<OrderStream>, Status> {
///         # let orders: OrderStream = Box::pin(tokio_stream::empty());
///         Ok(Response::new(orders))
///     }
/// }
/// # use oauth_grpc::ProtectedService;
/// let export = AdminDesk::POLICY.method("ExportOrders").unwrap();
/// assert_eq!(export.outlives_token(), Some("a full export takes longer than a token lives"));
/// ```
#[proc_macro_attribute]
pub fn outlives_token(_args: TokenStream, item: TokenStream) -> TokenStream {
    protect::stray_rule("outlives_token", item.into()).into()
}

/// Declares a scope catalog: an enum whose variants stand for scope strings.
///
/// Generates `as_str`, `as_scope` (which rules call), `from_scope`, `VARIANTS`, `Display`,
/// `From<_> for Scope` and `oauth_grpc::ScopeCatalog`. Scope strings are checked against RFC
/// 6749 §3.3 and for duplicates at compile time.
///
/// ```
/// oauth_grpc::scopes! {
///     /// Scopes of the billing API.
///     pub enum BillingScope {
///         /// Read invoices.
///         Read = "billing:read",
///         Refund = "billing:refund",
///     }
/// }
///
/// assert_eq!(BillingScope::Refund.as_str(), "billing:refund");
/// assert_eq!(BillingScope::from_scope("billing:read"), Some(BillingScope::Read));
/// assert_eq!(BillingScope::VARIANTS.len(), 2);
/// ```
#[proc_macro]
pub fn scopes(input: TokenStream) -> TokenStream {
    scopes::scopes(input.into()).into()
}

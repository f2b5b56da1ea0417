//! The macros, for a glob import: `use oauth_grpc::prelude::*;`.
//!
//! Inside a `#[protect]` impl the rule attributes work without any import, because the
//! macro reads them. Importing them as well makes a rule that is written *outside* such an
//! impl — a forgotten `#[protect]` — reach this crate, which then explains the mistake,
//! instead of rustc's "cannot find attribute `require_scope` in this scope".
//!
//! ```
//! # use examples::pb::*;
//! # use examples::OrderStream;
//! use examples::pb::orders_admin_server::{OrdersAdmin, OrdersAdminServer};
//! use oauth_grpc::prelude::*;
//! use tonic::{Request, Response, Status};
//!
//! struct AdminDesk;
//!
//! #[protect]
//! #[tonic::async_trait]
//! impl OrdersAdmin for AdminDesk {
//!     #[require_scope("orders:admin")]
//!     async fn purge_cancelled(&self, _: Request<PurgeCancelledRequest>) -> Result<Response<PurgeCancelledResponse>, Status> {
//!         Ok(Response::new(PurgeCancelledResponse::default()))
//!     }
//!
//!     type ExportOrdersStream = OrderStream;
//!
//!     #[authenticated]
//!     async fn export_orders(&self, _: Request<ExportOrdersRequest>) -> Result<Response<OrderStream>, Status> {
//!         Ok(Response::new(Box::pin(tokio_stream::empty())))
//!     }
//! }
//!
//! let _server = OrdersAdminServer::new(AdminDesk);
//! # use oauth_grpc::ProtectedService;
//! # assert_eq!(AdminDesk::POLICY.methods()[0].path(), "/orders.v1.OrdersAdmin/PurgeCancelled");
//! ```
//!
//! Without `#[protect]` on that impl, `#[require_scope("orders:admin")]` is a compile error
//! that says to add it:
//!
//! ```compile_fail
//! # use examples::pb::*;
//! # use examples::OrderStream;
//! # use examples::pb::orders_admin_server::OrdersAdmin;
//! # use tonic::{Request, Response, Status};
//! use oauth_grpc::prelude::*;
//! # struct AdminDesk;
//!
//! #[tonic::async_trait]
//! impl OrdersAdmin for AdminDesk {
//!     #[require_scope("orders:admin")] // error: `#[require_scope]` only works on a method of an impl marked `#[oauth_grpc::protect]`; …
//!     async fn purge_cancelled(&self, _: Request<PurgeCancelledRequest>) -> Result<Response<PurgeCancelledResponse>, Status> {
//!         Ok(Response::new(PurgeCancelledResponse::default()))
//!     }
//!     # type ExportOrdersStream = OrderStream;
//!     # async fn export_orders(&self, _: Request<ExportOrdersRequest>) -> Result<Response<OrderStream>, Status> {
//!     #     Ok(Response::new(Box::pin(tokio_stream::empty())))
//!     # }
//! }
//! ```

#[doc(no_inline)]
pub use crate::{authenticated, outlives_token, protect, public, require_any_scope, require_scope};

//! The server side: [`OAuthLayer`] in front of the services, the bearer token it reads, the
//! audit record of each decision, and how handlers reach the verified caller.

pub mod audit;
mod bearer;
mod certificate;
mod dpop;
mod layer;
mod request;
mod stream;

pub use self::bearer::bearer_token;
pub use self::dpop::{Dpop, DpopNonces};
pub use self::layer::{OAuth, OAuthLayer, ResponseFuture, UnknownPaths};
pub use self::request::RequestPrincipal;
pub use self::stream::TokenBound;

#![doc = include_str!("../../README.md")]
#![deny(unsafe_code)]

pub mod audit;
mod backend;
mod cache;
#[cfg(feature = "client")]
pub mod client;
pub mod error;
#[cfg(any(feature = "jwks", feature = "introspection", feature = "client"))]
pub mod http;
#[cfg(feature = "introspection")]
pub mod introspect;
mod json;
pub mod keys;
pub mod layer;
pub mod policy;
pub mod principal;
#[cfg(feature = "jwks")]
mod remote;
#[cfg(feature = "reports")]
pub mod report;
#[cfg(any(feature = "introspection", feature = "client"))]
pub mod secret;
mod status;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;
pub mod validate;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use backend::crypto_backend;
pub use error::{AuthError, TokenError};
pub use layer::{OAuth, OAuthLayer};
pub use oauth_grpc_macros::{
    authenticated, protect, public, require_any_scope, require_scope, scopes,
};
pub use policy::{
    Denial, InvalidScope, MethodPolicy, PolicySet, ProtectedService, Rule, Scope, ScopeCatalog,
    ServicePolicy,
};
pub use principal::{Actor, Principal, PrincipalBuilder, RequestPrincipal, ScopeSet};
pub use validate::{ConfigError, Validator, ValidatorBuilder};

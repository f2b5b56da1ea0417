#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]

// The rooms, in the order a call flows through them: `server` (the layer, the bearer token,
// audit, the request accessor) → `validate` (the one entry point for a token: cache, JWS,
// claims, introspection) → `keys` (key sets, key sources, remote keys, the crypto backend) and
// `provider` (HTTP to the identity provider, discovery, secrets). `policy`, `scope`,
// `principal` and `time` are leaves that everything may read; `error` holds the error types
// and `status` is the only place that turns one into a `tonic::Status`. Imports run down this
// list, never back up. `client`, `report` and `testing` are the optional parts, public
// modules of their own; `prelude` re-exports the macros for a glob import.
mod error;
mod keys;
mod policy;
mod principal;
#[cfg(any(feature = "jwks", feature = "introspection", feature = "client"))]
mod provider;
mod scope;
mod server;
mod status;
mod time;
mod validate;

pub mod metrics;
pub mod store;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "reports")]
pub mod report;
#[cfg(feature = "testing")]
pub mod testing;

pub mod prelude;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[doc(inline)]
pub use crate::error::{
    AuthError, CertificateError, ConfigError, KeyError, ProofError, ProviderError, SecretError,
    TokenError, UrlError,
};
#[doc(inline)]
pub use crate::keys::{Algorithm, KeySet, KeySource, KeyType, VerifyingKey, crypto_backend};
#[doc(inline)]
pub use crate::policy::{
    Delegation, Denial, MethodPolicy, PolicySet, ProtectedService, RpcKind, Rule, ServicePolicy,
};
#[doc(inline)]
pub use crate::principal::{Actor, ClientCertificate, Confirmation, Principal, PrincipalBuilder};
#[cfg(any(feature = "introspection", feature = "client"))]
#[doc(inline)]
pub use crate::provider::ClientSecret;
#[cfg(any(feature = "jwks", feature = "introspection", feature = "client"))]
#[doc(inline)]
pub use crate::provider::HttpClient;
#[doc(inline)]
pub use crate::scope::{InvalidScope, Scope, ScopeCatalog, ScopeSet};
#[doc(inline)]
pub use crate::server::audit;
#[doc(inline)]
pub use crate::server::{
    Dpop, DpopNonces, OAuth, OAuthLayer, RequestPrincipal, ResponseFuture, TokenBound,
    UnknownPaths, bearer_token,
};
#[cfg(feature = "introspection")]
#[doc(inline)]
pub use crate::validate::{ClientAuth, Introspection, TokenRouting};
#[doc(inline)]
pub use crate::validate::{Issuer, TokenTypes, Validator, ValidatorBuilder};
#[doc(inline)]
pub use oauth_grpc_macros::{
    authenticated, outlives_token, protect, public, require_any_scope, require_scope, scopes,
};

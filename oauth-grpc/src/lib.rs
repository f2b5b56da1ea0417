#![doc = include_str!("../../README.md")]
#![deny(unsafe_code)]

pub mod policy;
pub mod principal;
mod status;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use oauth_grpc_macros::{
    authenticated, protect, public, require_any_scope, require_scope, scopes,
};
pub use policy::{
    Denial, InvalidScope, MethodPolicy, PolicySet, ProtectedService, Rule, Scope, ScopeCatalog,
    ServicePolicy,
};
pub use principal::{Actor, Principal, PrincipalBuilder, RequestPrincipal, ScopeSet};

//! Procedural macros of [`oauth-grpc`](https://docs.rs/oauth-grpc). Use them through that
//! crate, which re-exports them and documents them with examples.

mod args;
mod catalog;
mod errors;
mod expand;
mod model;
mod naming;
mod protect;
mod validate;

use proc_macro::TokenStream;

/// Compiles the access rules of a tonic service impl. See `oauth_grpc::protect`.
#[proc_macro_attribute]
pub fn protect(args: TokenStream, input: TokenStream) -> TokenStream {
    protect::protect(args.into(), input.into()).into()
}

/// All of the listed scopes. Only valid inside a `#[protect]` impl.
#[proc_macro_attribute]
pub fn require_scope(_args: TokenStream, item: TokenStream) -> TokenStream {
    protect::stray_rule("require_scope", item.into()).into()
}

/// At least one of the listed scopes. Only valid inside a `#[protect]` impl.
#[proc_macro_attribute]
pub fn require_any_scope(_args: TokenStream, item: TokenStream) -> TokenStream {
    protect::stray_rule("require_any_scope", item.into()).into()
}

/// Any valid token. Only valid inside a `#[protect]` impl.
#[proc_macro_attribute]
pub fn authenticated(_args: TokenStream, item: TokenStream) -> TokenStream {
    protect::stray_rule("authenticated", item.into()).into()
}

/// No token needed. Only valid inside a `#[protect]` impl.
#[proc_macro_attribute]
pub fn public(_args: TokenStream, item: TokenStream) -> TokenStream {
    protect::stray_rule("public", item.into()).into()
}

/// Declares a scope catalog. See `oauth_grpc::scopes!`.
#[proc_macro]
pub fn scopes(input: TokenStream) -> TokenStream {
    catalog::scopes(input.into()).into()
}

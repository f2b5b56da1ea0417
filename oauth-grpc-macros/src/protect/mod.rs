//! The `#[protect]` pipeline: parse → model → validate → expand (or fall back).

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Error, Item};

use crate::errors::Errors;

use self::args::ProtectArgs;
use self::model::{Service, take_rules};

mod args;
mod expand;
mod model;
mod validate;

pub(crate) fn protect(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = match syn::parse2::<Item>(input.clone()) {
        Ok(item) => item,
        Err(error) => return with_errors(input, Err(error)),
    };
    let mut errors = Errors::default();
    let args = if args.is_empty() {
        Some(ProtectArgs::default())
    } else {
        errors.take(syn::parse2::<ProtectArgs>(args))
    };

    let mut item = match item {
        Item::Impl(item) => item,
        other => {
            errors.push(not_an_impl(&other));
            return with_errors(other.into_token_stream(), errors.finish());
        }
    };
    let Some((_, trait_path, _)) = item.trait_.clone() else {
        errors.push(Error::new_spanned(
            &item.self_ty,
            "`#[protect]` goes on the impl of a tonic service trait, e.g. \
             `impl orders_server::Orders for OrderBook`; this impl has no trait",
        ));
        // Strip the rules so they do not report themselves a second time.
        for impl_item in &mut item.items {
            if let syn::ImplItem::Fn(f) = impl_item {
                let _ = take_rules(&mut f.attrs, &mut Errors::default());
            }
        }
        return with_errors(item.into_token_stream(), errors.finish());
    };

    let service = Service::from_impl(item, trait_path, args, &mut errors);
    validate::service(&service, &mut errors);
    match errors.finish() {
        Ok(()) => expand::protect(service),
        Err(error) => {
            let mut out = expand::fallback(&service);
            out.extend(error.to_compile_error());
            out
        }
    }
}

fn not_an_impl(item: &Item) -> Error {
    let what = match item {
        Item::Fn(f) => Some(("a function", f.sig.ident.to_token_stream())),
        Item::Struct(s) => Some(("a struct", s.ident.to_token_stream())),
        Item::Enum(e) => Some(("an enum", e.ident.to_token_stream())),
        Item::Trait(t) => Some(("a trait definition", t.ident.to_token_stream())),
        Item::Mod(m) => Some(("a module", m.ident.to_token_stream())),
        _ => None,
    };
    let (what, tokens) = what.unwrap_or(("this item", item.to_token_stream()));
    Error::new_spanned(
        tokens,
        format!(
            "`#[protect]` goes on the impl of a tonic service trait, e.g. \
             `impl orders_server::Orders for OrderBook`, not on {what}"
        ),
    )
}

fn with_errors(tokens: TokenStream, errors: syn::Result<()>) -> TokenStream {
    let mut out = tokens;
    if let Err(error) = errors {
        out.extend(error.to_compile_error());
    }
    out
}

/// What a rule attribute expands to when no `#[protect]` impl consumed it.
pub(crate) fn stray_rule(name: &str, item: TokenStream) -> TokenStream {
    let error = Error::new(
        proc_macro2::Span::call_site(),
        format!(
            "`#[{name}]` only works on a method of an impl marked `#[oauth_grpc::protect]`; \
             add `#[oauth_grpc::protect]` to the impl of the tonic service trait"
        ),
    );
    let mut out = item;
    out.extend(error.to_compile_error());
    out
}

//! Code generation for a validated `#[protect]` impl. Never fails.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, Pat, parse_quote};

use super::args::{DelegationPolicy, RuleAttr, RuleKind, ScopeArg};
use super::model::{Service, ServiceName};

/// The impl with a guard at the top of every non-public method, plus the
/// `ProtectedService` impl that carries the table.
pub(crate) fn protect(service: Service) -> TokenStream {
    let mut item = service.item.clone();
    for (index, method) in service.methods.iter().enumerate() {
        let Some(rule) = method.rule(service.default.as_ref()) else {
            continue;
        };
        if rule.kind == RuleKind::Public {
            continue;
        }
        if let Some(ImplItem::Fn(f)) = item.items.get_mut(method.item_index) {
            insert_guard(f, index);
        }
    }
    let table = table(&service);
    quote! {
        #item
        #table
    }
}

/// Puts the rule check first in the method body.
///
/// An `async fn` (before `#[async_trait]` runs) returns the status directly. A method that
/// `#[async_trait]` already rewrote returns a boxed future, so the check runs before the
/// future is built and returns a ready one.
fn insert_guard(f: &mut ImplItemFn, index: usize) {
    let is_async = f.sig.asyncness.is_some();
    let Some(arg) = f.sig.inputs.iter_mut().find_map(|arg| match arg {
        FnArg::Typed(arg) => Some(arg),
        FnArg::Receiver(_) => None,
    }) else {
        // Not a tonic method signature; the trait impl itself will not compile.
        return;
    };
    let span = Span::call_site();
    let (request, rebind) = match &*arg.pat {
        Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
            (pat.ident.clone(), None)
        }
        _ => {
            let request = format_ident!("__oauth_grpc_request", span = span);
            let pat = std::mem::replace(&mut *arg.pat, parse_quote!(#request));
            (request.clone(), Some(quote!(let #pat = #request;)))
        }
    };
    let refuse = if is_async {
        quote_spanned!(span=> ::core::result::Result::Err(__oauth_grpc_denied))
    } else {
        quote_spanned!(span=> ::oauth_grpc::__private::reject(__oauth_grpc_denied))
    };
    let guard: syn::Stmt = parse_quote! {
        if let ::core::result::Result::Err(__oauth_grpc_denied) = ::oauth_grpc::__private::guard(
            &#request,
            <Self as ::oauth_grpc::ProtectedService>::POLICY,
            #index,
        ) {
            return #refuse;
        }
    };
    let mut stmts = vec![guard];
    if let Some(rebind) = rebind {
        stmts.push(parse_quote!(#rebind));
    }
    stmts.append(&mut f.block.stmts);
    f.block.stmts = stmts;
}

/// The `&'static str` service name, a const expression. Neither form names `Self`, so it
/// works in the nested consts of a generic impl (`FooServer<T>` is `NamedService` for any `T`).
fn service_name(service: &Service) -> TokenStream {
    match service.service_name() {
        ServiceName::Module(module) => quote!(#module::SERVICE_NAME),
        // Spanned on the server path, so a type that is not a tonic server is reported there.
        ServiceName::Server(server) => quote_spanned! {server.span()=>
            ::oauth_grpc::__private::service_name::<#server<()>>()
        },
    }
}

fn table(service: &Service) -> TokenStream {
    let service_name = service_name(service);
    let self_ty = &service.item.self_ty;
    let (impl_generics, _, where_clause) = service.item.generics.split_for_impl();

    let mut items = Vec::new();
    let mut entries = Vec::new();
    for (index, method) in service.methods.iter().enumerate() {
        let Some(rule) = method.rule(service.default.as_ref()) else {
            continue;
        };
        let rpc = method.rpc();
        let rust_name = &method.rust_name;
        let path_const = format_ident!("__OAUTH_GRPC_PATH_{}", index);
        let scopes_const = format_ident!("__OAUTH_GRPC_SCOPES_{}", index);
        let rule_expr = rule_expr(rule, &scopes_const, true, &mut items);
        items.push(quote! {
            const #path_const: &::core::primitive::str = {
                const RPC: &::core::primitive::str = #rpc;
                const LEN: ::core::primitive::usize = __OAUTH_GRPC_SERVICE.len() + RPC.len() + 2;
                const BYTES: [::core::primitive::u8; LEN] =
                    ::oauth_grpc::__private::join_path::<LEN>(__OAUTH_GRPC_SERVICE, RPC);
                match ::core::str::from_utf8(&BYTES) {
                    ::core::result::Result::Ok(path) => path,
                    ::core::result::Result::Err(_) => {
                        ::core::panic!("a gRPC service name is not UTF-8")
                    }
                }
            };
        });
        let kind = match (method.client_streams, method.server_streams) {
            (false, false) => None,
            (false, true) => Some(quote!(ServerStreaming)),
            (true, false) => Some(quote!(ClientStreaming)),
            (true, true) => Some(quote!(BidiStreaming)),
        };
        let kind = kind.map(|kind| quote!(.with_kind(::oauth_grpc::RpcKind::#kind)));
        let outlives = method.outlives.as_ref().map(|o| {
            let reason = &o.reason;
            quote!(.outliving_token(#reason))
        });
        // The rule that applies, so a method without its own rule takes the default's `bound`
        // and `once`.
        let bound = rule.args.is_bound().then(|| quote!(.bound_to_sender()));
        let once = rule.args.is_once().then(|| quote!(.used_once()));
        // The rule's own policy, else the impl's; a public method reads no token.
        let delegation = (rule.kind != RuleKind::Public)
            .then(|| {
                rule.args
                    .delegation
                    .as_ref()
                    .or(service.delegation.as_ref())
            })
            .flatten()
            .map(|d| {
                let policy = delegation_expr(&d.policy);
                quote!(.with_delegation(#policy))
            });
        // A method without a rule attribute takes the default; the table says which did.
        let from_default = method.rules.is_empty().then(|| quote!(.from_default()));
        entries.push(quote! {
            ::oauth_grpc::MethodPolicy::new(#rpc, #path_const, #rust_name, #rule_expr)
                #kind #outlives #bound #once #delegation #from_default
        });
    }
    // The impl's default rule, for reports and lint. Its scopes are not checked for repeats
    // here: every method that takes the default checks them, where they are reported today.
    let default = service.default.as_ref().map(|default| {
        let scopes_const = format_ident!("__OAUTH_GRPC_DEFAULT_SCOPES");
        let rule = rule_expr(default, &scopes_const, false, &mut items);
        quote!(.with_default(#rule))
    });

    quote! {
        impl #impl_generics ::oauth_grpc::ProtectedService for #self_ty #where_clause {
            const POLICY: &'static ::oauth_grpc::ServicePolicy = {
                const __OAUTH_GRPC_SERVICE: &::core::primitive::str = #service_name;
                #(#items)*
                const __OAUTH_GRPC_TABLE: ::oauth_grpc::ServicePolicy =
                    ::oauth_grpc::ServicePolicy::new(__OAUTH_GRPC_SERVICE, &[#(#entries),*])
                        #default;
                &__OAUTH_GRPC_TABLE
            };
        }
    }
}

/// The `Rule` expression, declaring the scope slice it needs in `items`, with a check that
/// its scopes are distinct when `check_distinct`.
fn rule_expr(
    rule: &RuleAttr,
    scopes_const: &syn::Ident,
    check_distinct: bool,
    items: &mut Vec<TokenStream>,
) -> TokenStream {
    let variant = match rule.kind {
        RuleKind::Public => return quote!(::oauth_grpc::Rule::Public),
        RuleKind::Authenticated => return quote!(::oauth_grpc::Rule::Authenticated),
        RuleKind::RequireScope => quote!(AllOf),
        RuleKind::RequireAnyScope => quote!(AnyOf),
    };
    let scopes = rule.args.scopes.iter().map(scope_expr);
    // Spanned on the rule, so a repeated scope that only const evaluation can see (a literal
    // and a catalog variant with the same text) is reported there.
    let check = check_distinct.then(|| {
        quote_spanned! {rule.span=>
            const _: () = ::oauth_grpc::__private::assert_distinct(#scopes_const);
        }
    });
    items.push(quote! {
        const #scopes_const: &[::oauth_grpc::Scope] = &[#(#scopes),*];
        #check
    });
    quote!(::oauth_grpc::Rule::#variant(#scopes_const))
}

fn delegation_expr(policy: &DelegationPolicy) -> TokenStream {
    match policy {
        DelegationPolicy::Allow => quote!(::oauth_grpc::Delegation::Allowed),
        DelegationPolicy::Forbid => quote!(::oauth_grpc::Delegation::Forbidden),
        DelegationPolicy::Actors { list, .. } => {
            quote!(::oauth_grpc::Delegation::Actors(&[#(#list),*]))
        }
    }
}

fn scope_expr(scope: &ScopeArg) -> TokenStream {
    match scope {
        ScopeArg::Lit(lit) => quote!(::oauth_grpc::Scope::from_static(#lit)),
        // Spanned on the path, so a misspelt variant is reported where it is written.
        ScopeArg::Path(path) => quote_spanned!(path.span()=> #path.as_scope()),
    }
}

/// What is emitted when validation failed: the user's impl without our attributes, and a
/// placeholder table, so the only errors are the real ones.
///
/// The placeholder names the service and the scope paths as the real table would, so that
/// their imports stay used (no `unused import` beside the real error) and a misspelt scope
/// variant is reported in the same build.
pub(crate) fn fallback(service: &Service) -> TokenStream {
    let mut item = service.item.clone();
    if !service.async_trait_below && service.methods.iter().any(|m| m.is_async) {
        // The missing `#[async_trait]` is reported; adding it here keeps rustc from adding a
        // lifetime mismatch error per method.
        item.attrs
            .push(parse_quote!(#[::oauth_grpc::__private::async_trait]));
    }
    let item = &item;
    let self_ty = &item.self_ty;
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    let service_name = service_name(service);
    let rules = service
        .default
        .iter()
        .chain(service.methods.iter().flat_map(|m| &m.rules))
        .chain(service.misplaced.iter().map(|m| &m.rule));
    let scopes = rules
        .flat_map(|rule| &rule.args.scopes)
        .filter(|scope| matches!(scope, ScopeArg::Path(_)))
        .map(scope_expr);
    quote! {
        #item
        impl #impl_generics ::oauth_grpc::ProtectedService for #self_ty #where_clause {
            const POLICY: &'static ::oauth_grpc::ServicePolicy = {
                const _: &::core::primitive::str = #service_name;
                const _: &[::oauth_grpc::Scope] = &[#(#scopes),*];
                &::oauth_grpc::__private::FALLBACK
            };
        }
    }
}

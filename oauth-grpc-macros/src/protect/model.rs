//! A typed view of a `#[protect]` impl: its trait, its methods and their rules, with the
//! original tokens kept for error spans.

use syn::{ImplItem, ItemImpl, Path};

use super::args::{DelegationArg, OutlivesArgs, ProtectArgs, RuleAttr, RuleKind, misspelt_rule};
use crate::errors::Errors;
use crate::naming;

/// One method of the impl.
pub(crate) struct Method {
    pub(crate) ident: syn::Ident,
    /// The name without `r#`.
    pub(crate) rust_name: String,
    /// Every rule attribute found on it, in order.
    pub(crate) rules: Vec<RuleAttr>,
    /// A rule attribute was written but did not parse (its error is already reported).
    pub(crate) unparsed_rule: bool,
    /// Position of the method among the impl's items.
    pub(crate) item_index: usize,
    pub(crate) is_async: bool,
    /// Whether the request is a stream (`Request<Streaming<…>>`).
    pub(crate) client_streams: bool,
    /// Whether the response is a stream (the impl has tonic's `type {Rpc}Stream`).
    pub(crate) server_streams: bool,
    /// `#[outlives_token(reason = "…")]`, if written (and well-formed).
    pub(crate) outlives: Option<OutlivesArgs>,
}

impl Method {
    /// The rule that applies: its own (the first, if several were written) or the default.
    pub(crate) fn rule<'a>(&'a self, default: Option<&'a RuleAttr>) -> Option<&'a RuleAttr> {
        self.rules.first().or(default)
    }

    /// The proto rpc this method serves.
    pub(crate) fn rpc(&self) -> String {
        self.rules
            .first()
            .and_then(|r| r.args.rpc.as_ref())
            .map(|rpc| rpc.value.value())
            .unwrap_or_else(|| naming::default_rpc_name(&self.rust_name))
    }
}

/// A rule attribute on an impl item that is not a method.
pub(crate) struct Misplaced {
    pub(crate) rule: RuleAttr,
    pub(crate) item: String,
}

/// The impl, with our attributes stripped, and what they said.
pub(crate) struct Service {
    /// The user's impl without any rule attribute.
    pub(crate) item: ItemImpl,
    pub(crate) trait_path: Path,
    pub(crate) default: Option<RuleAttr>,
    /// `#[protect(server = …)]`: the tonic server type, when named.
    pub(crate) server: Option<Path>,
    /// `#[protect(delegation = …)]`: the delegation policy of rules that do not say one.
    pub(crate) delegation: Option<DelegationArg>,
    /// `#[protect(..)]` arguments did not parse (the error is already reported).
    pub(crate) unparsed_default: bool,
    pub(crate) methods: Vec<Method>,
    pub(crate) misplaced: Vec<Misplaced>,
    /// Whether `#[async_trait]` is still to run on this impl.
    pub(crate) async_trait_below: bool,
}

impl Service {
    /// Reads the impl; attribute parse errors go to `errors`, the rest is validation's job.
    pub(crate) fn from_impl(
        mut item: ItemImpl,
        trait_path: Path,
        args: Option<ProtectArgs>,
        errors: &mut Errors,
    ) -> Self {
        let unparsed_default = args.is_none();
        let args = args.unwrap_or_default();
        let mut methods = Vec::new();
        let mut misplaced = Vec::new();
        // tonic's trait has a `type {Rpc}Stream` for every server-streaming rpc.
        let stream_types: Vec<String> = item
            .items
            .iter()
            .filter_map(|impl_item| match impl_item {
                ImplItem::Type(t) => Some(t.ident.to_string()),
                _ => None,
            })
            .collect();
        for (item_index, impl_item) in item.items.iter_mut().enumerate() {
            let (attrs, what) = match impl_item {
                ImplItem::Fn(f) => (&mut f.attrs, None),
                ImplItem::Type(t) => (&mut t.attrs, Some(format!("associated type `{}`", t.ident))),
                ImplItem::Const(c) => (
                    &mut c.attrs,
                    Some(format!("associated const `{}`", c.ident)),
                ),
                ImplItem::Macro(m) => (&mut m.attrs, Some("macro invocation".to_owned())),
                _ => continue,
            };
            let outlives = take_outlives(attrs, errors, what.as_deref());
            let (rules, unparsed_rule) = take_rules(attrs, errors);
            match (impl_item, what) {
                (ImplItem::Fn(f), _) => {
                    let mut method = Method {
                        rust_name: syn::ext::IdentExt::unraw(&f.sig.ident).to_string(),
                        ident: f.sig.ident.clone(),
                        rules,
                        unparsed_rule,
                        item_index,
                        is_async: f.sig.asyncness.is_some(),
                        client_streams: request_streams(&f.sig),
                        server_streams: false,
                        outlives,
                    };
                    method.server_streams =
                        stream_types.contains(&format!("{}Stream", method.rpc()));
                    methods.push(method);
                }
                (_, Some(item)) => misplaced.extend(rules.into_iter().map(|rule| Misplaced {
                    rule,
                    item: item.clone(),
                })),
                (_, None) => {}
            }
        }
        let async_trait_below = item.attrs.iter().any(|attr| {
            attr.path()
                .segments
                .last()
                .is_some_and(|s| s.ident == "async_trait")
        });
        Service {
            item,
            trait_path,
            default: args.default,
            server: args.server,
            delegation: args.delegation,
            unparsed_default,
            methods,
            misplaced,
            async_trait_below,
        }
    }

    /// Where the service name comes from: the server type named in `server =`, tonic's
    /// `SERVICE_NAME` in the module of a trait named by its path (`foo_server::Foo`), or the
    /// `FooServer` that tonic generates beside a trait named alone (`Foo`).
    pub(crate) fn service_name(&self) -> ServiceName {
        if let Some(server) = &self.server {
            return ServiceName::Server(server.clone());
        }
        let mut module = self.trait_path.clone();
        let last = module.segments.pop().map(syn::punctuated::Pair::into_value);
        module.segments.pop_punct();
        match last {
            Some(last) if module.segments.is_empty() => {
                let name = syn::ext::IdentExt::unraw(&last.ident);
                // Spanned on the trait, so a `FooServer` not in scope is reported there.
                let server = syn::Ident::new(&format!("{name}Server"), last.ident.span());
                ServiceName::Server(Path::from(server))
            }
            _ => ServiceName::Module(module),
        }
    }
}

/// The source of the service name in `/{service}/{method}`.
pub(crate) enum ServiceName {
    /// `module::SERVICE_NAME`.
    Module(Path),
    /// `service_name::<Server<()>>()`, tonic's `NamedService::NAME`.
    Server(Path),
}

/// Removes `#[outlives_token(…)]` from `attrs`: the parsed opt-out of a method (errors for a
/// malformed one, or one on another item, go to `errors`).
fn take_outlives(
    attrs: &mut Vec<syn::Attribute>,
    errors: &mut Errors,
    not_a_method: Option<&str>,
) -> Option<OutlivesArgs> {
    let mut found = None;
    attrs.retain(|attr| {
        if !OutlivesArgs::is(attr) {
            return true;
        }
        if let Some(item) = not_a_method {
            errors.push(syn::Error::new_spanned(
                attr,
                format!("`#[outlives_token]` belongs on a streaming rpc method, not on {item}"),
            ));
            return false;
        }
        match errors.take(OutlivesArgs::from_attribute(attr)) {
            Some(args) if found.is_some() => errors.push(syn::Error::new_spanned(
                &args.name,
                "`#[outlives_token]` appears twice on this method; keep one",
            )),
            Some(args) => found = Some(args),
            None => {}
        }
        false
    });
    found
}

/// Whether the rpc's request is a stream: its argument's type names tonic's `Streaming`.
fn request_streams(sig: &syn::Signature) -> bool {
    sig.inputs.iter().any(|input| match input {
        syn::FnArg::Typed(arg) => names_streaming(&arg.ty),
        syn::FnArg::Receiver(_) => false,
    })
}

fn names_streaming(ty: &syn::Type) -> bool {
    fn walk(tokens: proc_macro2::TokenStream) -> bool {
        tokens.into_iter().any(|tree| match tree {
            proc_macro2::TokenTree::Ident(ident) => ident == "Streaming",
            proc_macro2::TokenTree::Group(group) => walk(group.stream()),
            _ => false,
        })
    }
    walk(quote::ToTokens::to_token_stream(ty))
}

/// Removes our rule attributes from `attrs`, returning the parsed ones and whether any failed
/// to parse.
pub(crate) fn take_rules(
    attrs: &mut Vec<syn::Attribute>,
    errors: &mut Errors,
) -> (Vec<RuleAttr>, bool) {
    let mut rules = Vec::new();
    let mut unparsed = false;
    attrs.retain(|attr| match RuleKind::from_path(attr.path()) {
        Some(kind) => {
            match errors.take(RuleAttr::from_attribute(kind, attr)) {
                Some(rule) => rules.push(rule),
                None => unparsed = true,
            }
            false
        }
        // A misspelt rule is ours to report, and to remove so rustc does not report it again.
        None => match misspelt_rule(attr) {
            Some(error) => {
                errors.push(error);
                unparsed = true;
                false
            }
            None => true,
        },
    });
    (rules, unparsed)
}

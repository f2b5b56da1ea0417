//! Parsing the arguments of `#[protect(..)]` and of the rule attributes.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitStr, Path, Token};

pub(crate) mod kw {
    syn::custom_keyword!(rpc);
    syn::custom_keyword!(default);
    syn::custom_keyword!(server);
    syn::custom_keyword!(reason);
    syn::custom_keyword!(bound);
    syn::custom_keyword!(delegation);
}

/// The flag that makes a rule admit only sender-constrained tokens.
pub(crate) const BOUND: &str = "bound";

/// The name of the opt-out attribute of a streaming rpc.
pub(crate) const OUTLIVES_TOKEN: &str = "outlives_token";

/// `#[outlives_token(reason = "…")]`: a stream of this rpc may run past its token's expiry.
pub(crate) struct OutlivesArgs {
    /// The attribute's name, for spans.
    pub(crate) name: Ident,
    pub(crate) reason: LitStr,
}

impl OutlivesArgs {
    /// Whether `attr` is ours (`outlives_token`, `oauth_grpc::outlives_token`, …).
    pub(crate) fn is(attr: &syn::Attribute) -> bool {
        our_attribute(attr.path()).is_some_and(|name| name == OUTLIVES_TOKEN)
    }

    pub(crate) fn from_attribute(attr: &syn::Attribute) -> syn::Result<Self> {
        let name = our_attribute(attr.path())
            .cloned()
            .unwrap_or_else(|| Ident::new(OUTLIVES_TOKEN, proc_macro2::Span::call_site()));
        let missing = || {
            syn::Error::new_spanned(
                attr,
                "`#[outlives_token]` needs a reason: `#[outlives_token(reason = \"…\")]`, saying \
                 why this stream may run past its token (the permission report shows it)",
            )
        };
        let syn::Meta::List(list) = &attr.meta else {
            return Err(missing());
        };
        let reason = list.parse_args_with(|input: ParseStream<'_>| {
            input.parse::<kw::reason>()?;
            input.parse::<Token![=]>()?;
            let reason: LitStr = input.parse()?;
            if !input.is_empty() {
                return Err(input.error("`#[outlives_token]` takes only `reason = \"…\"`"));
            }
            Ok(reason)
        });
        let reason = match reason {
            Ok(reason) => reason,
            Err(error) if list.tokens.is_empty() => {
                let _ = error;
                return Err(missing());
            }
            Err(error) => {
                return Err(syn::Error::new(
                    error.span(),
                    format!("{error}; write `#[outlives_token(reason = \"…\")]`"),
                ));
            }
        };
        if reason.value().trim().is_empty() {
            return Err(syn::Error::new_spanned(
                &reason,
                "the reason of `#[outlives_token]` is empty; say why this stream may run past its token",
            ));
        }
        Ok(Self { name, reason })
    }
}

/// The four rule attributes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum RuleKind {
    RequireScope,
    RequireAnyScope,
    Authenticated,
    Public,
}

impl RuleKind {
    pub(crate) const ALL: [RuleKind; 4] = [
        RuleKind::RequireScope,
        RuleKind::RequireAnyScope,
        RuleKind::Authenticated,
        RuleKind::Public,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            RuleKind::RequireScope => "require_scope",
            RuleKind::RequireAnyScope => "require_any_scope",
            RuleKind::Authenticated => "authenticated",
            RuleKind::Public => "public",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The rule that `name` misspells, if it is a near miss of one (`require_scopes`).
    pub(crate) fn suggest(name: &str) -> Option<Self> {
        let names = Self::ALL.map(Self::name);
        crate::suggest::near_miss(name, &names).and_then(Self::from_name)
    }

    /// Recognises `rule`, `oauth_grpc::rule`, `oauth_grpc::prelude::rule`, with or without a
    /// leading `::`.
    pub(crate) fn from_path(path: &Path) -> Option<Self> {
        our_attribute(path).and_then(|name| Self::from_name(&name.to_string()))
    }

    pub(crate) fn takes_scopes(self) -> bool {
        matches!(self, RuleKind::RequireScope | RuleKind::RequireAnyScope)
    }
}

/// The name of an attribute written the way ours are (`name`, `oauth_grpc::name`,
/// `oauth_grpc::prelude::name`), whatever the name.
pub(crate) fn our_attribute(path: &Path) -> Option<&Ident> {
    let segments: Vec<&Ident> = path.segments.iter().map(|s| &s.ident).collect();
    match segments.as_slice() {
        [name] if path.leading_colon.is_none() => Some(name),
        [krate, name] if *krate == "oauth_grpc" => Some(name),
        [krate, prelude, name] if *krate == "oauth_grpc" && *prelude == "prelude" => Some(name),
        _ => None,
    }
}

/// `#[require_scopes(…)]` and other near misses of a rule attribute: the error to report.
pub(crate) fn misspelt_rule(attr: &syn::Attribute) -> Option<syn::Error> {
    let name = our_attribute(attr.path())?;
    let written = IdentExt::unraw(name).to_string();
    let kind = RuleKind::suggest(&written)?;
    Some(syn::Error::new_spanned(
        name,
        format!(
            "unknown rule attribute `{written}`; did you mean `{}`?",
            kind.name()
        ),
    ))
}

/// One scope in a rule: `"orders:read"` or a path such as `OrderScope::Read`.
#[derive(Clone)]
pub(crate) enum ScopeArg {
    Lit(LitStr),
    Path(Path),
}

impl ScopeArg {
    /// What makes two scope arguments the same: the literal's text, or the path as written.
    pub(crate) fn key(&self) -> String {
        match self {
            ScopeArg::Lit(lit) => format!("{:?}", lit.value()),
            ScopeArg::Path(path) => path
                .to_token_stream()
                .to_string()
                .split_whitespace()
                .collect(),
        }
    }

    pub(crate) fn display(&self) -> String {
        match self {
            ScopeArg::Lit(lit) => lit.value(),
            ScopeArg::Path(_) => self.key(),
        }
    }
}

impl ToTokens for ScopeArg {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            ScopeArg::Lit(lit) => lit.to_tokens(tokens),
            ScopeArg::Path(path) => path.to_tokens(tokens),
        }
    }
}

/// `rpc = "GetHTTPStatus"`.
#[derive(Clone)]
pub(crate) struct RpcArg {
    pub(crate) key: kw::rpc,
    pub(crate) value: LitStr,
}

/// `delegation = allow | forbid | actors("…", …)`: which delegated calls a rule admits.
#[derive(Clone)]
pub(crate) struct DelegationArg {
    pub(crate) key: kw::delegation,
    pub(crate) policy: DelegationPolicy,
}

#[derive(Clone)]
pub(crate) enum DelegationPolicy {
    Allow,
    Forbid,
    /// `actors("a", "b")`: the word `actors` (for spans) and the actors as written.
    Actors {
        name: Ident,
        list: Vec<LitStr>,
    },
}

/// The forms of a delegation policy, for errors.
const DELEGATION_FORMS: &str = "`delegation = allow` (the default), `delegation = forbid` (only \
     the subject itself) or `delegation = actors(\"assistant\", …)` (only these actors, by \
     their `act.sub`)";

impl DelegationArg {
    /// Parses `= policy` after the key.
    fn parse_after(key: kw::delegation, input: ParseStream<'_>) -> syn::Result<Self> {
        input.parse::<Token![=]>()?;
        if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            let message = match lit.value().as_str() {
                word @ ("allow" | "forbid") => format!(
                    "a delegation policy is a word, not a string: write `delegation = {word}`"
                ),
                _ => {
                    format!("a delegation policy is a word, not a string: write {DELEGATION_FORMS}")
                }
            };
            return Err(syn::Error::new_spanned(&lit, message));
        }
        let name = Ident::parse_any(input).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected a delegation policy after `delegation =`: {DELEGATION_FORMS}"),
            )
        })?;
        let word = IdentExt::unraw(&name).to_string();
        let policy = match word.as_str() {
            "allow" | "forbid" => {
                if input.peek(syn::token::Paren) {
                    let arguments: proc_macro2::TokenTree = input.parse()?;
                    return Err(syn::Error::new_spanned(
                        arguments,
                        format!("`{word}` takes no arguments; write {DELEGATION_FORMS}"),
                    ));
                }
                if word == "allow" {
                    DelegationPolicy::Allow
                } else {
                    DelegationPolicy::Forbid
                }
            }
            "actors" => {
                if !input.peek(syn::token::Paren) {
                    return Err(syn::Error::new_spanned(
                        &name,
                        "`actors` needs the actors it admits, by their `act.sub`: \
                         `delegation = actors(\"assistant\", \"billing-service\")`",
                    ));
                }
                let content;
                syn::parenthesized!(content in input);
                let list = content
                    .parse_terminated(
                        |input: ParseStream<'_>| {
                            if input.peek(LitStr) {
                                input.parse::<LitStr>()
                            } else {
                                Err(input.error(
                                    "an actor is the string of its `act.sub`, e.g. \
                                     `actors(\"assistant\")`",
                                ))
                            }
                        },
                        Token![,],
                    )?
                    .into_iter()
                    .collect();
                DelegationPolicy::Actors { name, list }
            }
            _ => {
                let hint = near_policy(&word)
                    .map(|near| format!("did you mean `{near}`? "))
                    .unwrap_or_default();
                return Err(syn::Error::new_spanned(
                    &name,
                    format!("unknown delegation policy `{word}`; {hint}write {DELEGATION_FORMS}"),
                ));
            }
        };
        Ok(Self { key, policy })
    }
}

/// The policy that `word` most likely means: a near miss (`forbd`) or a word of the same
/// sense (`forbidden`, `deny`, `none`; `allowed`, `any`; `actor`, `only`).
fn near_policy(word: &str) -> Option<&'static str> {
    const POLICIES: [&str; 3] = ["allow", "forbid", "actors"];
    match word {
        "forbidden" | "forbade" | "deny" | "denied" | "none" | "never" | "no" | "off" => {
            Some("forbid")
        }
        "allowed" | "any" | "all" | "always" | "yes" | "on" => Some("allow"),
        "actor" | "only" | "agents" => Some("actors"),
        _ => crate::suggest::near_miss(word, &POLICIES),
    }
}

/// The inside of a rule's parentheses: scopes, then the optional flag `bound`, and optional
/// `rpc = "…"` and `delegation = …` anywhere, comma separated.
#[derive(Clone, Default)]
pub(crate) struct RuleArgs {
    pub(crate) scopes: Vec<ScopeArg>,
    pub(crate) rpc: Option<RpcArg>,
    /// Every `bound` written, in order: the rule admits only sender-constrained tokens. More
    /// than one is an error, reported by validation.
    pub(crate) bound: Vec<kw::bound>,
    /// Lowercase words that misspell `bound` (`bund`, `bounded`), reported by validation.
    /// They are not scopes, so no "cannot find value" error follows them.
    pub(crate) misspelt_flags: Vec<Ident>,
    /// `delegation = …`, at most once.
    pub(crate) delegation: Option<DelegationArg>,
}

impl RuleArgs {
    /// Whether the rule admits only sender-constrained tokens.
    pub(crate) fn is_bound(&self) -> bool {
        !self.bound.is_empty()
    }

    /// Adds a scope; a scope after `bound` is an error.
    fn push_scope(&mut self, scope: ScopeArg) -> syn::Result<()> {
        if !self.bound.is_empty() {
            return Err(syn::Error::new_spanned(
                &scope,
                "a scope after `bound`: `bound` applies to the whole rule and ends the list of \
                 scopes, e.g. `(\"orders:read\", \"orders:admin\", bound)`",
            ));
        }
        self.scopes.push(scope);
        Ok(())
    }
}

const SCOPE_EXPECTED: &str = "expected a scope: a string literal such as \"orders:read\" or a \
     scope catalog variant such as `OrderScope::Read`, `rpc = \"ProtoName\"` or the flag `bound`";

const BOUND_IS_BARE: &str = "it is a bare flag: write `bound` alone at the end of the rule to \
     admit only sender-constrained tokens, e.g. `#[require_scope(\"orders:admin\", bound)]`, or \
     leave it out to admit plain bearer tokens too";

impl Parse for RuleArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = RuleArgs::default();
        while !input.is_empty() {
            if input.peek(LitStr) {
                args.push_scope(ScopeArg::Lit(input.parse()?))?;
            } else if input.peek(kw::bound) && !input.peek2(Token![::]) {
                // `bound` alone is the flag; `bound::X` stays a path and `r#bound` a scope.
                let flag: kw::bound = input.parse()?;
                if input.peek(Token![=]) {
                    let eq: Token![=] = input.parse()?;
                    let value = until_comma(input)?;
                    return Err(syn::Error::new_spanned(
                        quote::quote!(#eq #value),
                        format!("`bound` takes no value; {BOUND_IS_BARE}"),
                    ));
                }
                if input.peek(syn::token::Paren) {
                    let arguments: proc_macro2::TokenTree = input.parse()?;
                    return Err(syn::Error::new_spanned(
                        arguments,
                        format!("`bound` takes no arguments; {BOUND_IS_BARE}"),
                    ));
                }
                args.bound.push(flag);
            } else if input.peek(kw::delegation) && input.peek2(Token![=]) {
                let key: kw::delegation = input.parse()?;
                let delegation = DelegationArg::parse_after(key, input)?;
                if args.delegation.is_some() {
                    return Err(syn::Error::new(
                        key.span,
                        "`delegation =` appears twice in this rule; give it once",
                    ));
                }
                args.delegation = Some(delegation);
            } else if input.peek(kw::delegation)
                && !input.peek2(Token![::])
                && !input.peek2(Token![=])
            {
                let key: kw::delegation = input.parse()?;
                return Err(syn::Error::new(
                    key.span,
                    format!("`delegation` needs a policy: {DELEGATION_FORMS}"),
                ));
            } else if input.peek(Ident::peek_any) && input.peek2(Token![=]) {
                let key = Ident::parse_any(&input.fork())?;
                if key != "rpc" {
                    let written = IdentExt::unraw(&key).to_string();
                    let hint = crate::suggest::near_miss(&written, &["rpc", "delegation"])
                        .map(|near| format!("did you mean `{near}`? "))
                        .unwrap_or_default();
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown key `{key}`; {hint}a rule takes scopes, the flag `bound`, \
                             `delegation = …` and at most one `rpc = \"ProtoName\"`"
                        ),
                    ));
                }
                let key: kw::rpc = input.parse()?;
                input.parse::<Token![=]>()?;
                let value = if input.peek(LitStr) {
                    input.parse::<LitStr>()?
                } else {
                    return Err(input.error(
                        "expected the proto name of the rpc as a string literal, e.g. \
                         `rpc = \"GetHTTPStatus\"`",
                    ));
                };
                if args.rpc.is_some() {
                    return Err(syn::Error::new(
                        key.span,
                        "`rpc =` appears twice in this rule; give it once",
                    ));
                }
                args.rpc = Some(RpcArg { key, value });
            } else if input.peek(Ident::peek_any) || input.peek(Token![::]) {
                let path = Path::parse_mod_style(input)
                    .map_err(|e| syn::Error::new(e.span(), format!("{SCOPE_EXPECTED}; {e}")))?;
                match misspelt_bound(&path) {
                    Some(word) => args.misspelt_flags.push(word.clone()),
                    None => args.push_scope(ScopeArg::Path(path))?,
                }
            } else {
                return Err(input.error(SCOPE_EXPECTED));
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

/// `bund`, `bounded`, `sender_bound`: a lowercase word that misspells the flag `bound`.
///
/// A scope written as a path is a catalog variant (`OrderScope::Read`, or `Read` once
/// imported) or a constant (`AUDIT`); Rust names neither in lowercase, so a lowercase word
/// near `bound` is taken for the flag. `Bound`, `BOUND` and any path of two segments stay
/// scopes (a variant or constant may have that name), and so does a raw `r#bund`; a
/// lowercase constant with such a name is reachable as `self::bund`.
fn misspelt_bound(path: &Path) -> Option<&Ident> {
    let word = path.get_ident()?;
    let name = word.to_string();
    let lowercase = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    (lowercase && crate::suggest::near_miss(&name, &[BOUND]).is_some()).then_some(word)
}

/// The tokens up to the next top-level `,` (or the end), consumed.
fn until_comma(input: ParseStream<'_>) -> syn::Result<TokenStream> {
    let mut out = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        out.extend(std::iter::once(input.parse::<proc_macro2::TokenTree>()?));
    }
    Ok(out)
}

/// A rule as written: `#[require_scope("a", "b")]`, `#[public(rpc = "X")]`, and the rule
/// named in `#[protect(default = …)]`.
#[derive(Clone)]
pub(crate) struct RuleAttr {
    pub(crate) kind: RuleKind,
    /// The whole attribute (or the default's tokens), for spans.
    pub(crate) tokens: TokenStream,
    /// The rule's name as written, for errors found after expansion.
    pub(crate) span: proc_macro2::Span,
    pub(crate) args: RuleArgs,
}

impl RuleAttr {
    pub(crate) fn span_tokens(&self) -> &TokenStream {
        &self.tokens
    }

    /// Parses an attribute already known to be a rule.
    pub(crate) fn from_attribute(kind: RuleKind, attr: &syn::Attribute) -> syn::Result<Self> {
        let args = match &attr.meta {
            syn::Meta::Path(_) => RuleArgs::default(),
            syn::Meta::List(list) => list.parse_args_with(RuleArgs::parse)?,
            syn::Meta::NameValue(nv) => {
                return Err(syn::Error::new_spanned(
                    nv.eq_token,
                    format!(
                        "expected `#[{name}(…)]`, not `#[{name} = …]`",
                        name = kind.name()
                    ),
                ));
            }
        };
        let span = attr
            .path()
            .segments
            .last()
            .map_or_else(proc_macro2::Span::call_site, |s| s.ident.span());
        Ok(Self {
            kind,
            tokens: attr.to_token_stream(),
            span,
            args,
        })
    }
}

/// The arguments of `#[protect(..)]`: `default = <rule>` and `server = path::FooServer`, each
/// at most once, in any order.
#[derive(Default)]
pub(crate) struct ProtectArgs {
    pub(crate) default: Option<RuleAttr>,
    /// The tonic server type of the trait, when the macro cannot find it by itself.
    pub(crate) server: Option<Path>,
    /// `delegation = …`: the delegation policy of every method whose rule does not say one.
    pub(crate) delegation: Option<DelegationArg>,
}

const PROTECT_ARGUMENTS: &str = "`#[protect]` takes `default = <rule>` (`require_scope(\"…\")`, \
     `require_any_scope(\"…\")` or `authenticated`), `delegation = forbid | allow | \
     actors(\"…\")` and `server = foo_server::FooServer`";

const DEFAULT_RULES: &str = "`require_scope(\"…\")`, `require_any_scope(\"…\")` or `authenticated`";

impl Parse for ProtectArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = ProtectArgs::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::default) {
                let key: kw::default = input.parse()?;
                input.parse::<Token![=]>()?;
                let default = parse_default(input)?;
                if args.default.is_some() {
                    return Err(syn::Error::new(
                        key.span,
                        "`default =` appears twice; an impl has one default rule",
                    ));
                }
                args.default = Some(default);
            } else if lookahead.peek(kw::server) {
                let key: kw::server = input.parse()?;
                input.parse::<Token![=]>()?;
                let server = parse_server(input)?;
                if args.server.is_some() {
                    return Err(syn::Error::new(
                        key.span,
                        "`server =` appears twice; an impl serves one tonic service",
                    ));
                }
                args.server = Some(server);
            } else if lookahead.peek(kw::delegation) {
                let key: kw::delegation = input.parse()?;
                if !input.peek(Token![=]) {
                    return Err(syn::Error::new(
                        key.span,
                        format!("`delegation` needs a policy: {DELEGATION_FORMS}"),
                    ));
                }
                let delegation = DelegationArg::parse_after(key, input)?;
                if args.delegation.is_some() {
                    return Err(syn::Error::new(
                        key.span,
                        "`delegation =` appears twice; an impl has one default delegation policy",
                    ));
                }
                args.delegation = Some(delegation);
            } else {
                let unexpected = input.fork().parse::<TokenStream>()?;
                return Err(match unexpected.into_iter().next() {
                    Some(token) => syn::Error::new_spanned(
                        token,
                        format!("unknown argument; {PROTECT_ARGUMENTS}"),
                    ),
                    None => lookahead.error(),
                });
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

/// The rule after `default =`.
fn parse_default(input: ParseStream<'_>) -> syn::Result<RuleAttr> {
    let start = input.fork();
    let name = Ident::parse_any(input).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("expected a rule after `default =`: {DEFAULT_RULES}"),
        )
    })?;
    let Some(kind) = RuleKind::from_name(&name.to_string()) else {
        let hint = RuleKind::suggest(&name.to_string())
            .map(|kind| format!("did you mean `{}`? ", kind.name()))
            .unwrap_or_default();
        return Err(syn::Error::new(
            name.span(),
            format!("unknown rule `{name}`; {hint}`default =` takes {DEFAULT_RULES}"),
        ));
    };
    let rule_args = if input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in input);
        content.parse::<RuleArgs>()?
    } else {
        RuleArgs::default()
    };
    Ok(RuleAttr {
        kind,
        tokens: tokens_between(&start, input),
        span: name.span(),
        args: rule_args,
    })
}

/// The type after `server =`: a path to tonic's `FooServer`, without generic arguments.
fn parse_server(input: ParseStream<'_>) -> syn::Result<Path> {
    const EXPECTED: &str = "expected the tonic server type of the trait after `server =`, \
         e.g. `server = foo_server::FooServer`";
    if !(input.peek(Ident::peek_any) || input.peek(Token![::])) {
        return Err(input.error(EXPECTED));
    }
    let path: Path = input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), format!("{EXPECTED}; {e}")))?;
    if let Some(segment) = path.segments.iter().find(|s| !s.arguments.is_none()) {
        return Err(syn::Error::new_spanned(
            &segment.arguments,
            format!(
                "write the server type without generic arguments, e.g. `server = {}`: \
                 `#[protect]` only reads its service name",
                path.segments
                    .iter()
                    .map(|s| s.ident.to_string())
                    .collect::<Vec<_>>()
                    .join("::")
            ),
        ));
    }
    Ok(path)
}

/// The tokens consumed between a fork taken earlier and the current position.
fn tokens_between(start: ParseStream<'_>, end: ParseStream<'_>) -> TokenStream {
    let mut out = TokenStream::new();
    let _ = start.step(|cursor| {
        let mut rest = *cursor;
        while rest != end.cursor() {
            match rest.token_tree() {
                Some((tt, next)) => {
                    out.extend(std::iter::once(tt));
                    rest = next;
                }
                None => break,
            }
        }
        Ok(((), rest))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tokens: &str) -> RuleArgs {
        syn::parse_str::<RuleArgs>(tokens).unwrap_or_else(|e| panic!("{tokens}: {e}"))
    }

    #[test]
    fn the_bare_word_bound_is_the_flag() {
        for tokens in [
            "\"a\", bound",
            "OrderScope::Read, bound",
            "bound",
            "\"a\", bound, rpc = \"X\"",
            "rpc = \"X\", \"a\", bound",
        ] {
            let args = parse(tokens);
            assert!(args.is_bound(), "{tokens}");
            assert!(args.misspelt_flags.is_empty(), "{tokens}");
        }
        assert!(!parse("\"a\"").is_bound());
        assert_eq!(parse("\"a\", bound, bound").bound.len(), 2);
    }

    #[test]
    fn scope_paths_that_look_like_bound_stay_scopes() {
        for tokens in [
            "Bound",
            "BOUND",
            "r#bound",
            "bound::Read",
            "::bound",
            "self::bund",
            "r#bund",
        ] {
            let args = parse(tokens);
            assert!(!args.is_bound(), "{tokens}");
            assert!(args.misspelt_flags.is_empty(), "{tokens}");
            assert_eq!(args.scopes.len(), 1, "{tokens}");
        }
    }

    #[test]
    fn lowercase_near_misses_of_bound_are_misspelt_flags() {
        for word in [
            "bund",
            "bounded",
            "bounds",
            "bond",
            "sender_bound",
            "bound_token",
        ] {
            let args = parse(&format!("\"a\", {word}"));
            let written: Vec<String> = args.misspelt_flags.iter().map(Ident::to_string).collect();
            assert_eq!(written, [word]);
            assert_eq!(args.scopes.len(), 1, "{word}");
        }
        // Lowercase words far from `bound` stay scope paths (rustc reports them if unknown).
        for word in ["audit", "scope", "mtls"] {
            let args = parse(word);
            assert!(args.misspelt_flags.is_empty(), "{word}");
            assert_eq!(args.scopes.len(), 1, "{word}");
        }
    }

    #[test]
    fn bound_takes_no_value_no_arguments_and_no_scope_after_it() {
        for (tokens, message) in [
            ("\"a\", bound = true", "`bound` takes no value"),
            ("bound = false, \"a\"", "`bound` takes no value"),
            ("bound(mtls)", "`bound` takes no arguments"),
            ("\"a\", bound, \"b\"", "a scope after `bound`"),
            ("bound, OrderScope::Read", "a scope after `bound`"),
        ] {
            let error = syn::parse_str::<RuleArgs>(tokens)
                .err()
                .map(|e| e.to_string());
            assert!(
                error.as_deref().is_some_and(|e| e.starts_with(message)),
                "{tokens}: {error:?}"
            );
        }
    }
}

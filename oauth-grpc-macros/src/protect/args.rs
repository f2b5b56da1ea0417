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
    syn::custom_keyword!(once);
    syn::custom_keyword!(delegation);
}

/// The bare flags a rule may end with, after its scopes, in any order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Flag {
    /// `bound`: only sender-constrained tokens.
    Bound,
    /// `once`: each token (by its `jti`) once.
    Once,
}

impl Flag {
    pub(crate) const ALL: [Flag; 2] = [Flag::Bound, Flag::Once];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Flag::Bound => "bound",
            Flag::Once => "once",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// What the flag does, for "did you mean" hints.
    pub(crate) fn meaning(self) -> &'static str {
        match self {
            Flag::Bound => "admit only sender-constrained tokens",
            Flag::Once => "admit each token once, by its `jti`",
        }
    }

    /// Why it takes no value or arguments, and how to write it.
    fn bare(self) -> &'static str {
        match self {
            Flag::Bound => {
                "it is a bare flag: write `bound` alone at the end of the rule to admit only \
                 sender-constrained tokens, e.g. `#[require_scope(\"orders:admin\", bound)]`, or \
                 leave it out to admit plain bearer tokens too"
            }
            Flag::Once => {
                "it is a bare flag: write `once` alone at the end of the rule to admit each \
                 token once (by its `jti`), e.g. `#[require_scope(\"orders:refund\", once)]`, or \
                 leave it out to admit a token as often as it is presented"
            }
        }
    }

    /// An example of the flag ending a list of scopes.
    fn example(self) -> &'static str {
        match self {
            Flag::Bound => "`(\"orders:read\", \"orders:admin\", bound)`",
            Flag::Once => "`(\"orders:write\", \"orders:refund\", once)`",
        }
    }
}

/// The flags in words, for messages: "the flags `bound` and `once`".
const FLAGS: &str = "the flags `bound` and `once`";

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

/// A lowercase word that misspells a flag (`bund`, `onc`), and the flag it stands for.
#[derive(Clone)]
pub(crate) struct MisspeltFlag {
    pub(crate) word: Ident,
    pub(crate) flag: Flag,
}

/// The inside of a rule's parentheses: scopes, then the optional flags `bound` and `once` in
/// any order, and optional `rpc = "…"` and `delegation = …` anywhere, comma separated.
#[derive(Clone, Default)]
pub(crate) struct RuleArgs {
    pub(crate) scopes: Vec<ScopeArg>,
    pub(crate) rpc: Option<RpcArg>,
    /// Every `bound` written, in order: the rule admits only sender-constrained tokens. More
    /// than one is an error, reported by validation.
    pub(crate) bound: Vec<kw::bound>,
    /// Every `once` written, in order: the rule admits each token (by its `jti`) once. More
    /// than one is an error, reported by validation.
    pub(crate) once: Vec<kw::once>,
    /// The first flag written, which ends the list of scopes.
    first_flag: Option<Flag>,
    /// Lowercase words that misspell a flag (`bund`, `bounded`, `onc`), reported by
    /// validation. They are not scopes, so no "cannot find value" error follows them.
    pub(crate) misspelt_flags: Vec<MisspeltFlag>,
    /// `delegation = …`, at most once.
    pub(crate) delegation: Option<DelegationArg>,
}

impl RuleArgs {
    /// Whether the rule admits only sender-constrained tokens.
    pub(crate) fn is_bound(&self) -> bool {
        !self.bound.is_empty()
    }

    /// Whether the rule admits each token once.
    pub(crate) fn is_once(&self) -> bool {
        !self.once.is_empty()
    }

    /// Adds a scope; a scope after a flag is an error.
    fn push_scope(&mut self, scope: ScopeArg) -> syn::Result<()> {
        if let Some(flag) = self.first_flag {
            return Err(syn::Error::new_spanned(
                &scope,
                format!(
                    "a scope after `{name}`: `{name}` applies to the whole rule and ends the list \
                     of scopes, e.g. {example}",
                    name = flag.name(),
                    example = flag.example()
                ),
            ));
        }
        self.scopes.push(scope);
        Ok(())
    }

    /// Records a flag that was just parsed.
    fn flagged(&mut self, flag: Flag) {
        self.first_flag.get_or_insert(flag);
    }
}

const SCOPE_EXPECTED: &str = "expected a scope: a string literal such as \"orders:read\" or a \
     scope catalog variant such as `OrderScope::Read`, `rpc = \"ProtoName\"` or the flags \
     `bound` and `once`";

/// After a bare flag: a value (`= …`) or arguments (`(…)`) are errors.
fn no_value(input: ParseStream<'_>, flag: Flag) -> syn::Result<()> {
    let name = flag.name();
    if input.peek(Token![=]) {
        let eq: Token![=] = input.parse()?;
        let value = until_comma(input)?;
        return Err(syn::Error::new_spanned(
            quote::quote!(#eq #value),
            format!("`{name}` takes no value; {}", flag.bare()),
        ));
    }
    if input.peek(syn::token::Paren) {
        let arguments: proc_macro2::TokenTree = input.parse()?;
        return Err(syn::Error::new_spanned(
            arguments,
            format!("`{name}` takes no arguments; {}", flag.bare()),
        ));
    }
    Ok(())
}

impl Parse for RuleArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = RuleArgs::default();
        while !input.is_empty() {
            if input.peek(LitStr) {
                args.push_scope(ScopeArg::Lit(input.parse()?))?;
            } else if input.peek(kw::bound) && !input.peek2(Token![::]) {
                // `bound` alone is the flag; `bound::X` stays a path and `r#bound` a scope.
                let flag: kw::bound = input.parse()?;
                no_value(input, Flag::Bound)?;
                args.bound.push(flag);
                args.flagged(Flag::Bound);
            } else if input.peek(kw::once) && !input.peek2(Token![::]) {
                // The same for `once`: `once::X` stays a path and `r#once` a scope.
                let flag: kw::once = input.parse()?;
                no_value(input, Flag::Once)?;
                args.once.push(flag);
                args.flagged(Flag::Once);
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
                    let keys = ["rpc", "delegation", "bound", "once"];
                    let hint = match crate::suggest::near_miss(&written, &keys) {
                        Some(near) if Flag::from_name(near).is_some() => {
                            format!("did you mean the flag `{near}`, written alone without `=`? ")
                        }
                        Some(near) => format!("did you mean `{near}`? "),
                        None => String::new(),
                    };
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown key `{key}`; {hint}a rule takes scopes, {FLAGS}, \
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
                match misspelt_flag(&path) {
                    Some((word, flag)) => args.misspelt_flags.push(MisspeltFlag {
                        word: word.clone(),
                        flag,
                    }),
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

/// `bund`, `bounded`, `sender_bound`, `onc`, `one`: a lowercase word that misspells a flag,
/// and the flag.
///
/// A scope written as a path is a catalog variant (`OrderScope::Read`, or `Read` once
/// imported) or a constant (`AUDIT`); Rust names neither in lowercase, so a lowercase word
/// near `bound` or `once` is taken for the flag. `Bound`, `ONCE` and any path of two
/// segments stay scopes (a variant or constant may have that name), and so does a raw
/// `r#bund`; a lowercase constant with such a name is reachable as `self::bund`.
fn misspelt_flag(path: &Path) -> Option<(&Ident, Flag)> {
    let word = path.get_ident()?;
    let name = word.to_string();
    let lowercase = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !lowercase {
        return None;
    }
    let names = Flag::ALL.map(Flag::name);
    let flag = crate::suggest::near_miss(&name, &names).and_then(Flag::from_name)?;
    Some((word, flag))
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

    /// The misspelt flags of `tokens`, as written, with the flag each stands for.
    fn misspelt(tokens: &str) -> Vec<(String, Flag)> {
        parse(tokens)
            .misspelt_flags
            .iter()
            .map(|m| (m.word.to_string(), m.flag))
            .collect()
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
            assert!(!args.is_once(), "{tokens}");
            assert!(args.misspelt_flags.is_empty(), "{tokens}");
        }
        assert!(!parse("\"a\"").is_bound());
        assert_eq!(parse("\"a\", bound, bound").bound.len(), 2);
    }

    #[test]
    fn the_bare_word_once_is_the_flag() {
        for tokens in [
            "\"a\", once",
            "OrderScope::Refund, once",
            "once",
            "\"a\", once, rpc = \"X\"",
            "rpc = \"X\", \"a\", once",
            "\"a\", once, delegation = forbid",
        ] {
            let args = parse(tokens);
            assert!(args.is_once(), "{tokens}");
            assert!(!args.is_bound(), "{tokens}");
            assert!(args.misspelt_flags.is_empty(), "{tokens}");
            assert!(args.scopes.len() <= 1, "{tokens}");
        }
        assert!(!parse("\"a\"").is_once());
        assert_eq!(parse("\"a\", once, once").once.len(), 2);
    }

    #[test]
    fn bound_and_once_go_together_in_any_order() {
        for tokens in [
            "\"a\", \"b\", bound, once",
            "\"a\", \"b\", once, bound",
            "\"a\", \"b\", once, rpc = \"X\", bound",
            "delegation = forbid, \"a\", \"b\", bound, once",
        ] {
            let args = parse(tokens);
            assert!(args.is_bound() && args.is_once(), "{tokens}");
            assert_eq!(args.scopes.len(), 2, "{tokens}");
        }
    }

    #[test]
    fn scope_paths_that_look_like_a_flag_stay_scopes() {
        for tokens in [
            "Bound",
            "BOUND",
            "r#bound",
            "bound::Read",
            "::bound",
            "self::bund",
            "r#bund",
            "Once",
            "ONCE",
            "r#once",
            "once::Refund",
            "::once",
            "self::onc",
            "r#one",
        ] {
            let args = parse(tokens);
            assert!(!args.is_bound(), "{tokens}");
            assert!(!args.is_once(), "{tokens}");
            assert!(args.misspelt_flags.is_empty(), "{tokens}");
            assert_eq!(args.scopes.len(), 1, "{tokens}");
        }
    }

    #[test]
    fn lowercase_near_misses_of_a_flag_are_misspelt_flags() {
        for (word, flag) in [
            ("bund", Flag::Bound),
            ("bounded", Flag::Bound),
            ("bounds", Flag::Bound),
            ("bond", Flag::Bound),
            ("sender_bound", Flag::Bound),
            ("bound_token", Flag::Bound),
            ("onc", Flag::Once),
            ("one", Flag::Once),
            ("onse", Flag::Once),
            ("ounce", Flag::Once),
            ("onced", Flag::Once),
            ("once_only", Flag::Once),
            ("use_once", Flag::Once),
        ] {
            let tokens = format!("\"a\", {word}");
            assert_eq!(misspelt(&tokens), [(word.to_owned(), flag)], "{word}");
            assert_eq!(parse(&tokens).scopes.len(), 1, "{word}");
        }
        // Lowercase words far from both flags stay scope paths (rustc reports them if
        // unknown).
        for word in [
            "audit",
            "scope",
            "mtls",
            "refund",
            "read",
            "admin",
            "single_use",
        ] {
            let args = parse(word);
            assert!(args.misspelt_flags.is_empty(), "{word}");
            assert_eq!(args.scopes.len(), 1, "{word}");
        }
    }

    #[test]
    fn flags_take_no_value_no_arguments_and_no_scope_after_them() {
        for (tokens, message) in [
            ("\"a\", bound = true", "`bound` takes no value"),
            ("bound = false, \"a\"", "`bound` takes no value"),
            ("bound(mtls)", "`bound` takes no arguments"),
            ("\"a\", bound, \"b\"", "a scope after `bound`"),
            ("bound, OrderScope::Read", "a scope after `bound`"),
            ("\"a\", once = true", "`once` takes no value"),
            ("once = 1, \"a\"", "`once` takes no value"),
            ("\"a\", once(jti)", "`once` takes no arguments"),
            ("\"a\", once, \"b\"", "a scope after `once`"),
            ("once, OrderScope::Read", "a scope after `once`"),
            // The first flag written ends the scopes; the message names it.
            ("\"a\", once, bound, \"b\"", "a scope after `once`"),
            ("\"a\", bound, once, \"b\"", "a scope after `bound`"),
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

    #[test]
    fn an_unknown_key_near_a_flag_says_to_write_the_flag_alone() {
        for (tokens, hint) in [
            (
                "\"a\", onse = true",
                "did you mean the flag `once`, written alone without `=`?",
            ),
            (
                "\"a\", bund = true",
                "did you mean the flag `bound`, written alone without `=`?",
            ),
            ("\"a\", rcp = \"X\"", "did you mean `rpc`?"),
        ] {
            let error = syn::parse_str::<RuleArgs>(tokens)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(hint), "{tokens}: {error}");
            assert!(
                error.contains("the flags `bound` and `once`"),
                "{tokens}: {error}"
            );
        }
    }
}

//! `scopes!`: a scope catalog as an enum, so a misspelt scope is an ordinary compile error.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Attribute, Error, Ident, LitStr, Token, Visibility};

use crate::errors::{Errors, check_scope, duplicates};

/// `#[attrs] Variant = "scope"`.
struct Variant {
    attrs: Vec<Attribute>,
    ident: Ident,
    scope: LitStr,
}

impl Parse for Variant {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let ident: Ident = input.parse()?;
        if !input.peek(Token![=]) {
            return Err(Error::new(
                ident.span(),
                format!(
                    "variant `{ident}` needs its scope string, e.g. `{ident} = \"orders:read\"`"
                ),
            ));
        }
        input.parse::<Token![=]>()?;
        if !input.peek(LitStr) {
            return Err(input.error(format!(
                "expected the scope of `{ident}` as a string literal, e.g. `{ident} = \"orders:read\"`"
            )));
        }
        Ok(Variant {
            attrs,
            ident,
            scope: input.parse()?,
        })
    }
}

/// `#[attrs] vis enum Name { Variant = "scope", … }`.
struct Catalog {
    attrs: Vec<Attribute>,
    vis: Visibility,
    enum_token: Token![enum],
    ident: Ident,
    variants: Vec<Variant>,
}

impl Parse for Catalog {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let enum_token: Token![enum] = input.parse().map_err(|e| {
            Error::new(
                e.span(),
                "expected `enum`: `scopes! { pub enum OrderScope { Read = \"orders:read\" } }`",
            )
        })?;
        let ident: Ident = input.parse()?;
        if !input.peek(syn::token::Brace) {
            return Err(input.error(
                "expected `{` and the variants; a scope catalog takes no generics or where clause",
            ));
        }
        let content;
        syn::braced!(content in input);
        let variants = Punctuated::<Variant, Token![,]>::parse_terminated(&content)?
            .into_iter()
            .collect();
        Ok(Catalog {
            attrs,
            vis,
            enum_token,
            ident,
            variants,
        })
    }
}

/// One `scopes!` call holds one or more catalogs.
struct Catalogs(Vec<Catalog>);

impl Parse for Catalogs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut all = Vec::new();
        while !input.is_empty() {
            all.push(input.parse()?);
        }
        Ok(Catalogs(all))
    }
}

pub(crate) fn scopes(input: TokenStream) -> TokenStream {
    let catalogs = match syn::parse2::<Catalogs>(input) {
        Ok(catalogs) => catalogs.0,
        Err(error) => return error.to_compile_error(),
    };
    let mut errors = Errors::default();
    for catalog in &catalogs {
        validate(catalog, &mut errors);
    }
    if let Err(error) = errors.finish() {
        // The enum still exists, so that its uses elsewhere add no errors of their own.
        let mut out: TokenStream = catalogs.iter().map(fallback).collect();
        out.extend(error.to_compile_error());
        return out;
    }
    catalogs.iter().map(expand).collect()
}

fn validate(catalog: &Catalog, errors: &mut Errors) {
    if catalog.variants.is_empty() {
        errors.push(Error::new_spanned(
            &catalog.ident,
            format!(
                "scope catalog `{}` is empty; declare at least one scope, e.g. \
                 `Read = \"orders:read\"`",
                catalog.ident
            ),
        ));
    }
    for variant in &catalog.variants {
        errors.take(check_scope(&variant.scope));
    }
    for (_, again) in duplicates(&catalog.variants, |v| v.ident.to_string()) {
        errors.push(Error::new_spanned(
            &again.ident,
            format!(
                "variant `{}` is declared twice in `{}`; rename or remove one",
                again.ident, catalog.ident
            ),
        ));
    }
    for (first, again) in duplicates(&catalog.variants, |v| v.scope.value()) {
        errors.push(Error::new_spanned(
            &again.scope,
            format!(
                "scope {:?} is already declared as `{}::{}`; each scope appears once in a \
                 catalog",
                again.scope.value(),
                catalog.ident,
                first.ident
            ),
        ));
    }
}

fn expand(catalog: &Catalog) -> TokenStream {
    let Catalog {
        attrs,
        vis,
        enum_token,
        ident,
        variants,
    } = catalog;
    let names: Vec<&Ident> = variants.iter().map(|v| &v.ident).collect();
    let scopes: Vec<&LitStr> = variants.iter().map(|v| &v.scope).collect();
    let decls = variants.iter().map(|v| {
        let attrs = &v.attrs;
        let name = &v.ident;
        let has_doc = attrs.iter().any(|a| a.path().is_ident("doc"));
        let doc = (!has_doc).then(|| {
            let text = format!(" The `{}` scope.", v.scope.value());
            quote!(#[doc = #text])
        });
        quote!(#(#attrs)* #doc #name)
    });
    let all_const = format_ident!("VARIANTS");
    quote! {
        #(#attrs)*
        #[derive(
            ::core::clone::Clone, ::core::marker::Copy, ::core::cmp::PartialEq, ::core::cmp::Eq,
            ::core::hash::Hash, ::core::cmp::PartialOrd, ::core::cmp::Ord, ::core::fmt::Debug,
        )]
        #vis #enum_token #ident {
            #(#decls,)*
        }

        #[allow(dead_code)]
        impl #ident {
            /// Every variant, in declaration order.
            #vis const #all_const: &'static [Self] = &[#(Self::#names),*];

            /// The scope string, e.g. as it appears in a token's `scope` claim.
            #vis const fn as_str(self) -> &'static ::core::primitive::str {
                match self {
                    #(Self::#names => #scopes,)*
                }
            }

            /// The scope as a [`Scope`](::oauth_grpc::Scope); rules call this.
            #vis const fn as_scope(self) -> ::oauth_grpc::Scope {
                ::oauth_grpc::Scope::from_static(self.as_str())
            }

            /// The variant whose scope string is exactly `scope`.
            #vis fn from_scope(scope: &::core::primitive::str) -> ::core::option::Option<Self> {
                match scope {
                    #(#scopes => ::core::option::Option::Some(Self::#names),)*
                    _ => ::core::option::Option::None,
                }
            }
        }

        impl ::oauth_grpc::ScopeCatalog for #ident {
            const ALL: &'static [::oauth_grpc::Scope] =
                &[#(::oauth_grpc::Scope::from_static(#scopes)),*];

            fn scope(self) -> ::oauth_grpc::Scope {
                self.as_scope()
            }
        }

        impl ::core::fmt::Display for #ident {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::core::convert::From<#ident> for ::oauth_grpc::Scope {
            fn from(scope: #ident) -> Self {
                scope.as_scope()
            }
        }

        impl ::core::convert::AsRef<::core::primitive::str> for #ident {
            fn as_ref(&self) -> &::core::primitive::str {
                self.as_str()
            }
        }
    }
}

/// The enum with each variant once and the methods rules call, after an error.
fn fallback(catalog: &Catalog) -> TokenStream {
    let Catalog {
        attrs,
        vis,
        enum_token,
        ident,
        variants,
    } = catalog;
    let mut seen = std::collections::HashSet::new();
    let names: Vec<&Ident> = variants
        .iter()
        .map(|v| &v.ident)
        .filter(|name| seen.insert(name.to_string()))
        .collect();
    quote! {
        #(#attrs)*
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
        #vis #enum_token #ident {
            #(#names,)*
        }

        #[allow(dead_code)]
        impl #ident {
            #vis const fn as_str(self) -> &'static ::core::primitive::str {
                "invalid-scope-catalog"
            }

            #vis const fn as_scope(self) -> ::oauth_grpc::Scope {
                ::oauth_grpc::Scope::from_static("invalid-scope-catalog")
            }
        }
    }
}

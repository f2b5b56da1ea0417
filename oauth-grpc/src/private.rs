//! Support for the code that the macros generate. Not public API: names and signatures may
//! change in any release.

pub use tonic::async_trait;

use tonic::server::NamedService;

use std::future::Future;
use std::pin::Pin;

use tonic::{Request, Status};

use std::sync::Once;

use crate::policy::{Denial, ServicePolicy};
use crate::scope::Scope;
use crate::server::RequestPrincipal;

/// The check at the top of every protected method: the rule of method `index` of `policy`
/// against the principal that the layer verified.
#[inline]
pub fn guard<T>(
    request: &Request<T>,
    policy: &'static ServicePolicy,
    index: usize,
) -> Result<(), Status> {
    let Some(method) = policy.methods().get(index) else {
        // Unreachable with generated tables; refuse rather than guess.
        return Err(crate::status::no_rule());
    };
    let principal = request.try_principal();
    match method.rule().evaluate(principal) {
        // The layer refuses unbound tokens on such a method; a principal that got here
        // without that check (put in by other code) is refused too.
        Ok(())
            if method.sender_constrained()
                && !principal.is_some_and(crate::principal::Principal::is_sender_constrained) =>
        {
            Err(crate::status::invalid_token(
                crate::error::TokenError::NotSenderConstrained,
            ))
        }
        // A one-time method cannot tell the uses of a token without `jti` apart; the layer
        // refuses it first, and spends the token (a principal put in by other code was not).
        Ok(()) if method.once() && principal.and_then(|p| p.token_id()).is_none() => Err(
            crate::status::invalid_token(crate::error::TokenError::MissingTokenId),
        ),
        // The layer refuses these too; checked again in the method, as the scopes are.
        Ok(()) => method
            .delegation()
            .evaluate(principal)
            .map_err(Status::from),
        // A token was sent, but no layer verified it: say so, to the caller and (once) to
        // the operator, instead of claiming that no token came.
        Err(Denial::Unauthenticated) if request.metadata().contains_key("authorization") => {
            static WARNED: Once = Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    target: "oauth_grpc::audit",
                    rpc = method.path(),
                    "a protected method was called with a bearer token but no verified caller: no OAuthLayer with a rule for it ran; mount the service behind OAuthLayer with this service in its PolicySet (logged once)"
                );
            });
            Err(crate::status::unchecked_token())
        }
        Err(denial) => Err(Status::from(denial)),
    }
}

/// The boxed future that a method transformed by `async_trait` returns when its guard refuses.
pub fn reject<'a, T: Send + 'a>(
    status: Status,
) -> Pin<Box<dyn Future<Output = Result<T, Status>> + Send + 'a>> {
    Box::pin(std::future::ready(Err(status)))
}

/// The gRPC service name of a tonic server type, `FooServer<()>`, at compile time.
pub const fn service_name<S: NamedService>() -> &'static str {
    S::NAME
}

/// Joins `/{service}/{method}` into a fixed-size buffer, at compile time.
pub const fn join_path<const N: usize>(service: &str, method: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let (service, method) = (service.as_bytes(), method.as_bytes());
    // The caller sizes N as service + method + 2; a wrong N fails const evaluation.
    out[0] = b'/';
    let mut i = 0;
    while i < service.len() {
        out[1 + i] = service[i];
        i += 1;
    }
    out[1 + service.len()] = b'/';
    let mut j = 0;
    while j < method.len() {
        out[2 + service.len() + j] = method[j];
        j += 1;
    }
    out
}

/// Compile-time check that a rule does not name one scope twice, for the cases the macro
/// cannot see (a literal and a catalog variant with the same text).
#[allow(clippy::panic)] // evaluated in a `const _`, where a panic is a compile error
pub const fn assert_distinct(scopes: &[Scope]) {
    let mut i = 0;
    while i < scopes.len() {
        let mut j = i + 1;
        while j < scopes.len() {
            if str_eq(scopes[i].as_str(), scopes[j].as_str()) {
                panic!("a rule names the same scope twice; list each scope once");
            }
            j += 1;
        }
        i += 1;
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Placeholder table emitted next to an impl that failed to compile, so that the only
/// errors shown are the real ones.
pub const FALLBACK: ServicePolicy = ServicePolicy::new("", &[]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_path_builds_the_grpc_path() {
        const BUF: [u8; 23] = join_path::<23>("pkg.Service", "Method");
        assert_eq!(&BUF, b"/pkg.Service/Method\0\0\0\0");
        const EXACT: [u8; 19] = join_path::<19>("pkg.Service", "Method");
        assert_eq!(std::str::from_utf8(&EXACT), Ok("/pkg.Service/Method"));
    }

    #[test]
    fn str_eq_compares_bytes() {
        assert!(str_eq("a:b", "a:b"));
        assert!(!str_eq("a:b", "a:c"));
        assert!(!str_eq("a", "ab"));
    }
}

/// Entry points for the fuzz targets of `fuzz/`, which reach parsers that have no public
/// function of their own. Not public API.
pub mod fuzz {
    /// Checks `proof` as the layer checks a call's DPoP proof on its own (RFC 9449 §4.3: the
    /// structure, `typ`, an asymmetric `alg`, a public `jwk` that fits it, the signature
    /// under it, the claims' types), every asymmetric algorithm allowed; the RFC 7638
    /// thumbprint of its key when it passes.
    pub fn dpop_proof(proof: &str) -> Result<String, crate::ProofError> {
        crate::validate::dpop::verify_proof(proof, &crate::validate::dpop::ASYMMETRIC)
            .map(|proof| proof.jkt)
    }

    /// An `htu` normalised as the layer compares it (RFC 3986 §6.2.2–6.2.3, no query or
    /// fragment), or `None` for one it refuses.
    pub fn normalised_htu(uri: &str) -> Option<String> {
        crate::validate::dpop::normalise_htu(uri)
    }

    /// Interprets `body` as an introspection endpoint's answer, exactly as the validator
    /// does after its POST: trusted issuer `https://issuer.test/`, audience `orders-api`.
    ///
    /// `Ok(Some(principal))` for an active token, `Ok(None)` for an inactive one.
    #[cfg(feature = "introspection")]
    pub fn introspection_answer(
        body: &[u8],
    ) -> Result<Option<crate::Principal>, crate::TokenError> {
        use std::sync::LazyLock;

        use crate::{ClientSecret, ConfigError, Introspection, Validator};

        static VALIDATOR: LazyLock<Result<Validator, ConfigError>> = LazyLock::new(|| {
            Validator::builder()
                .issuer("https://issuer.test/")
                .audience("orders-api")
                .introspection(Introspection::new(
                    "http://127.0.0.1:9/introspect",
                    "orders-api",
                    ClientSecret::new("fuzz"),
                ))
                .build()
        });
        let validator = VALIDATOR
            .as_ref()
            .map_err(|_| crate::TokenError::Unavailable)?;
        validator.interpret_introspection(body)
    }
}

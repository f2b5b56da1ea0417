//! The crypto backend, chosen for the user: [`crypto_backend`] names it.
//!
//! With the default `aws-lc` feature, token signatures are checked by AWS-LC directly, on
//! keys parsed once when a key set is built (`verifier.rs`); jsonwebtoken still parses JWKs
//! and PEM keys, checks DPoP proofs and signs for the client and the test issuer. With
//! `rust-crypto` alone, every signature goes through jsonwebtoken's RustCrypto provider.
//!
//! `jsonwebtoken` 11 picks no backend by itself and panics at the first signature check when
//! none is installed. This crate installs one before any validator exists: AWS-LC with
//! `aws-lc`, RustCrypto with `rust-crypto`. With both features on, AWS-LC wins. A provider
//! the application installed itself is left in place (with `aws-lc` it then serves only
//! jsonwebtoken's own uses above). Then a known HMAC signature is checked once, through the
//! same path token signatures take, so a backend that cannot verify is a configuration error
//! at start-up, never a panic on a request.

use crate::error::ConfigError;

#[cfg(not(any(feature = "aws-lc", feature = "rust-crypto")))]
compile_error!(
    "oauth-grpc needs a crypto backend: enable the `aws-lc` (default) or `rust-crypto` feature"
);

/// Installs the backend selected by the crate features (once per process) and checks that
/// signatures verify.
pub(crate) fn install() -> Result<(), ConfigError> {
    static CHECK: std::sync::OnceLock<Result<(), &'static str>> = std::sync::OnceLock::new();
    let outcome = CHECK.get_or_init(|| {
        #[cfg(feature = "aws-lc")]
        let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc")))]
        let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
        // An `Err` means a provider was installed first: keep it, but check it below.
        let _ = provider.install_default();
        self_test()
    });
    outcome.map_err(ConfigError::CryptoBackend)
}

/// HS256 over "oauth-grpc" with the key "oauth-grpc-self-test-key-32bytes".
const MESSAGE: &[u8] = b"oauth-grpc";
const KEY: &[u8] = b"oauth-grpc-self-test-key-32bytes";
const SIGNATURE: &str = "Hio_b2uy46KkDUpmuySXXUoJsGWZvfCVvmUxfh12Y3M";
/// The same signature with its first byte changed: it must not verify.
const TAMPERED: &str = "Iio_b2uy46KkDUpmuySXXUoJsGWZvfCVvmUxfh12Y3M";

fn self_test() -> Result<(), &'static str> {
    let key = jsonwebtoken::DecodingKey::from_secret(KEY);
    let alg = jsonwebtoken::Algorithm::HS256;
    // jsonwebtoken's provider (DPoP proofs, and every token with `rust-crypto` alone) …
    check(|signature| jsonwebtoken::crypto::verify(signature, MESSAGE, &key, alg))?;
    // … and the path of token signatures, on a key prepared as a key set prepares it.
    let prepared =
        super::verifier::Prepared::new(&key, &[alg]).map_err(|_| "the self-test key is refused")?;
    // A panic in the check is caught and reported; nothing observes the key after it.
    let prepared = &std::panic::AssertUnwindSafe(prepared);
    check(|signature| {
        let decoded = super::verifier::Signature::decode(signature)
            .map_err(|()| jsonwebtoken::errors::ErrorKind::InvalidSignature)?;
        prepared
            .verify(&key, alg, MESSAGE, &decoded)
            .map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into())
    })
}

/// A backend must accept the known signature and refuse the tampered one: one that accepts
/// everything is refused at start-up, before it can accept a forged token.
fn check(
    verify: impl Fn(&str) -> jsonwebtoken::errors::Result<bool> + std::panic::RefUnwindSafe,
) -> Result<(), &'static str> {
    const PANICKED: &str = "it panicked; enable exactly one of the `aws-lc` and `rust-crypto` features of oauth-grpc, or install a jsonwebtoken CryptoProvider before building a validator";
    match std::panic::catch_unwind(|| verify(SIGNATURE)) {
        Ok(Ok(true)) => {}
        Ok(_) => return Err("a known HMAC signature does not verify"),
        Err(_) => return Err(PANICKED),
    }
    match std::panic::catch_unwind(|| verify(TAMPERED)) {
        Ok(Ok(false) | Err(_)) => Ok(()),
        Ok(Ok(true)) => Err("a tampered HMAC signature verifies: the backend accepts forgeries"),
        Err(_) => Err(PANICKED),
    }
}

/// The name of the backend this build verifies signatures with.
///
/// ```
/// assert!(["aws-lc", "rust-crypto"].contains(&oauth_grpc::crypto_backend()));
/// ```
pub fn crypto_backend() -> &'static str {
    if cfg!(feature = "aws-lc") {
        "aws-lc"
    } else {
        "rust-crypto"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installed_backend_passes() {
        assert!(install().is_ok());
    }

    #[test]
    fn a_backend_that_accepts_everything_is_refused() {
        let err = check(|_| Ok(true)).unwrap_err();
        assert!(err.contains("accepts forgeries"), "{err}");
    }

    #[test]
    fn a_backend_that_refuses_everything_is_refused() {
        assert_eq!(
            check(|_| Ok(false)),
            Err("a known HMAC signature does not verify")
        );
    }

    #[test]
    fn a_panicking_backend_is_refused() {
        #[allow(clippy::panic)]
        let err = check(|_| panic!("no provider")).unwrap_err();
        assert!(err.contains("panicked"), "{err}");
    }
}

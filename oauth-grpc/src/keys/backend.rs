//! The crypto backend of `jsonwebtoken`, chosen for the user: [`crypto_backend`] names it.
//!
//! `jsonwebtoken` 11 picks no backend by itself and panics at the first signature check when
//! none is installed. This crate installs one before any validator exists: AWS-LC with the
//! default `aws-lc` feature, RustCrypto with `rust-crypto`. With both features on, AWS-LC
//! wins. A provider the application installed itself is left in place. Then a known HMAC
//! signature is checked once, so a backend that cannot verify is a configuration error at
//! start-up, never a panic on a request.

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

fn self_test() -> Result<(), &'static str> {
    let key = jsonwebtoken::DecodingKey::from_secret(KEY);
    let verify =
        || jsonwebtoken::crypto::verify(SIGNATURE, MESSAGE, &key, jsonwebtoken::Algorithm::HS256);
    match std::panic::catch_unwind(verify) {
        Ok(Ok(true)) => Ok(()),
        Ok(_) => Err("a known HMAC signature does not verify"),
        Err(_) => Err(
            "it panicked; enable exactly one of the `aws-lc` and `rust-crypto` features of oauth-grpc, or install a jsonwebtoken CryptoProvider before building a validator",
        ),
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

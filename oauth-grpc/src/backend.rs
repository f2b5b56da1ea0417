//! The crypto backend of `jsonwebtoken`, chosen for the user.
//!
//! `jsonwebtoken` 11 picks no backend by itself and panics at the first signature check when
//! none is installed. This crate installs one before any validator exists: AWS-LC with the
//! default `aws-lc` feature, RustCrypto with `rust-crypto`. With both features on, AWS-LC
//! wins. A provider the application installed itself is left in place.

#[cfg(not(any(feature = "aws-lc", feature = "rust-crypto")))]
compile_error!(
    "oauth-grpc needs a crypto backend: enable the `aws-lc` (default) or `rust-crypto` feature"
);

/// Installs the backend selected by the crate features, once per process.
pub(crate) fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(feature = "aws-lc")]
        let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc")))]
        let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
        // An `Err` means the application installed its own provider first: keep it.
        let _ = provider.install_default();
    });
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

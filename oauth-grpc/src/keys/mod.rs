//! The keys a [`Validator`](crate::Validator) trusts: [`KeySet`] (parsed once, each key bound to
//! the algorithms its type allows), [`KeySource`] (fixed keys, or the identity provider's,
//! fetched and refreshed), the remote keys, and the crypto backend that verifies signatures.

mod backend;
mod parse;
#[cfg(feature = "jwks")]
mod remote;
mod set;
mod source;
mod verifier;

pub use self::backend::crypto_backend;
pub(crate) use self::backend::install as install_backend;
pub use self::set::{Algorithm, KeySet, KeyType, VerifyingKey};
pub use self::source::KeySource;
pub(crate) use self::source::Keys;
pub(crate) use self::verifier::{Signature, Unusable};

/// One JWK as a verifying key, under the rules of a JWKS entry (types, curves, sizes, `use`,
/// `key_ops`, a declared `alg`); the message says why not, without key material.
pub(crate) fn jwk_key(value: serde_json::Value) -> Result<VerifyingKey, String> {
    parse::parse_jwk_value(value)
}

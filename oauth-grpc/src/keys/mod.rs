//! The keys a [`Validator`](crate::Validator) trusts: [`KeySet`] (parsed once, each key bound to
//! the algorithms its type allows), [`KeySource`] (fixed keys, or the identity provider's,
//! fetched and refreshed), the remote keys, and the crypto backend that verifies signatures.

mod backend;
mod parse;
#[cfg(feature = "jwks")]
mod remote;
mod set;
mod source;

pub use self::backend::crypto_backend;
pub(crate) use self::backend::install as install_backend;
pub use self::set::{Algorithm, KeySet, KeyType, VerifyingKey};
pub use self::source::KeySource;
pub(crate) use self::source::Keys;

//! Helpers for your own tests: a test issuer that mints real signed tokens, and a conformance
//! run that calls every rpc of a running server with the tokens an attacker would try.
//!
//! A security test of your service in a few lines:
//!
//! ```no_run
//! # use examples::OrderBook;
//! # use examples::OrderScope;
//! # async fn run(addr: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
//! use oauth_grpc::testing::{Conformance, TestIssuer};
//! use oauth_grpc::PolicySet;
//!
//! let issuer = TestIssuer::generate("https://issuer.test/")?;   // the server trusts issuer.key_set()
//! let policies = PolicySet::new().service::<OrderBook>();
//! let report = Conformance::new(&issuer, "orders-api", &policies)
//!     .catalog::<OrderScope>()
//!     .run(&format!("http://{addr}"))
//!     .await?;
//! report.assert_passed();
//! # Ok(())
//! # }
//! ```
//!
//! Each rpc is called with no token, an expired token, a token for another audience, a token
//! holding every known scope except the ones the rule requires, and a token with exactly the
//! required scopes. The first three must give 16 `UNAUTHENTICATED`, the fourth 7
//! `PERMISSION_DENIED`, the last neither (the handler may still refuse the empty request with
//! a code of its own). Public rpcs must answer neither 16 nor 7 in every case.

mod conformance;
mod issuer;

pub use self::conformance::{Call, Conformance, ConformanceReport};
pub use self::issuer::{TestIssuer, TokenBuilder};

/// Why a test helper could not do its work.
///
/// ```
/// let err = oauth_grpc::testing::TestIssuer::from_pem("https://i/", b"nope", oauth_grpc::Algorithm::EdDSA, "k");
/// assert!(err.is_err());
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TestingError(pub(crate) String);

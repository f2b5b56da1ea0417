//! How handlers reach the verified caller: [`RequestPrincipal`] on `tonic::Request`.
//!
//! The layer verifies the bearer token and stores a [`Principal`] in the request's
//! extensions; the check that `#[protect]` writes at the top of each protected method reads it
//! back. Handlers call [`RequestPrincipal::principal`]:
//!
//! ```
//! use oauth_grpc::{Principal, RequestPrincipal};
//! use tonic::{Request, Status};
//!
//! fn owner_of(request: &Request<()>) -> Result<String, Status> {
//!     let caller = request.principal()?; // UNAUTHENTICATED if no token was verified
//!     Ok(caller.subject().unwrap_or("anonymous").to_owned())
//! }
//!
//! let mut request = Request::new(());
//! assert!(owner_of(&request).is_err());
//! request
//!     .extensions_mut()
//!     .insert(Principal::builder().subject("alice").scopes(["orders:read"]).build());
//! assert_eq!(owner_of(&request).unwrap(), "alice");
//! ```

use crate::principal::Principal;

/// Reads the verified [`Principal`] from a tonic request.
///
/// ```
/// use oauth_grpc::{Principal, RequestPrincipal};
///
/// let mut request = tonic::Request::new(());
/// assert!(request.try_principal().is_none());
/// assert_eq!(request.principal().unwrap_err().code(), tonic::Code::Unauthenticated);
///
/// request.extensions_mut().insert(Principal::builder().subject("alice").build());
/// assert_eq!(request.principal().unwrap().subject(), Some("alice"));
/// ```
pub trait RequestPrincipal {
    /// The verified caller.
    ///
    /// In a method guarded by a rule other than `#[public]`, the generated check has already
    /// made sure it is there, so `?` never fails in practice.
    ///
    /// # Errors
    ///
    /// `UNAUTHENTICATED` with `www-authenticate: Bearer` when no token was verified for this
    /// call (a `#[public]` method, or a server mounted without the layer).
    fn principal(&self) -> Result<&Principal, tonic::Status>;

    /// The verified caller, or `None` when the call carried no verified token.
    fn try_principal(&self) -> Option<&Principal>;
}

impl<T> RequestPrincipal for tonic::Request<T> {
    fn principal(&self) -> Result<&Principal, tonic::Status> {
        self.try_principal()
            .ok_or_else(crate::status::missing_token)
    }

    fn try_principal(&self) -> Option<&Principal> {
        self.extensions().get::<Principal>()
    }
}

//! Refusals: [`TokenError`] (why a token was not accepted) and [`AuthError`] (why a call was).

use crate::policy::{Denial, Rule};

/// Why a bearer token was not accepted. Each maps to `UNAUTHENTICATED`
/// `error="invalid_token"`, except [`Unavailable`](Self::Unavailable).
///
/// ```
/// use oauth_grpc::TokenError;
///
/// assert_eq!(TokenError::Expired.code(), "expired");
/// assert_eq!(TokenError::Expired.to_string(), "the token has expired");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS: wrong number of segments, bad base64url, bad JSON.
    #[error("the token is malformed")]
    Malformed,
    /// A JWE (five segments): encrypted tokens are not accepted.
    #[error("encrypted tokens are not accepted")]
    Encrypted,
    /// `cty: JWT`: a nested token.
    #[error("nested tokens are not accepted")]
    Nested,
    /// `alg` is `none`, unknown, or not allowed for this validator.
    #[error("the token's signing algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// `alg` does not fit the key: another key type, or the key declares another `alg`.
    #[error("the token's signing algorithm does not match its key")]
    AlgorithmMismatch,
    /// No trusted key has the token's `kid` (and no kid-less key verifies it), or without `kid`
    /// no key fits its `alg`.
    #[error("the token's signing key is not trusted")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// The header names a critical extension (`crit`) that is not understood.
    #[error("the token uses an unsupported critical header")]
    UnsupportedCritical,
    /// `typ` is not an access token type (RFC 9068 `at+jwt`).
    #[error("the token is not an access token")]
    WrongType,
    /// `exp` is in the past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("the token was issued in the future")]
    IssuedInFuture,
    /// `exp - iat` exceeds the configured maximum lifetime.
    #[error("the token's lifetime is too long")]
    LifetimeTooLong,
    /// A claim the validator needs is absent.
    #[error("the token lacks a required claim")]
    MissingClaim,
    /// A claim has the wrong JSON type or an impossible value.
    #[error("the token has an invalid claim")]
    InvalidClaim,
    /// `iss` is not a trusted issuer.
    #[error("the token's issuer is not trusted")]
    WrongIssuer,
    /// `aud` does not name this service.
    #[error("the token is not meant for this service")]
    WrongAudience,
    /// Introspection says the token is not active (revoked, expired or unknown).
    #[error("the token is not active")]
    Inactive,
    /// The token is bound (`cnf`, RFC 7800) by a confirmation method this server cannot
    /// check, and by none it can: refused rather than used as a bearer token.
    #[error("the token is bound by a confirmation method this server cannot check")]
    UnsupportedConfirmation,
    /// The token is bound to a TLS client certificate (RFC 8705 `cnf.x5t#S256`), and the
    /// call came with another certificate or none.
    #[error("the token is bound to another client certificate")]
    CertificateMismatch,
    /// The method admits only sender-constrained tokens (the `bound` rule option, or
    /// `OAuthLayer::require_sender_constrained`), and this token is a plain bearer token.
    #[error("this method needs a sender-constrained token")]
    NotSenderConstrained,
    /// The token is bound to a DPoP key (RFC 9449 `cnf.jkt`) and came with the `Bearer`
    /// scheme: a DPoP-bound token is accepted only with the `DPoP` scheme and a proof
    /// (RFC 9449 §7.2).
    #[error("the token is bound to a DPoP key; send it with the DPoP scheme and a proof")]
    DpopBoundAsBearer,
    /// The token is bound to a DPoP key (`cnf.jkt`) other than the key of the call's proof.
    #[error("the token is bound to another DPoP key")]
    DpopKeyMismatch,
    /// The token came with the `DPoP` scheme but is not bound to a DPoP key.
    #[error("the DPoP scheme needs a DPoP-bound token")]
    NotDpopBound,
    /// The `act` claim (RFC 8693 §4.1), or an `act` nested in it, is not a JSON object with a
    /// string `sub`: who acts on the subject's behalf cannot be told.
    #[error("the token's act claim is malformed: each actor needs a sub")]
    MalformedActor,
    /// The `act` chain nests deeper than the validator admits
    /// ([`ValidatorBuilder::max_delegation_depth`](crate::ValidatorBuilder::max_delegation_depth),
    /// 4 by default).
    #[error("the token's delegation chain is too deep")]
    DelegationTooDeep,
    /// The method is for one-time use (`once`) and this token was used on it before, on
    /// this replica or another one sharing its store.
    #[error("the token was already used")]
    AlreadyUsed,
    /// The method is for one-time use (`once`) and the token has no `jti` to tell its uses
    /// apart.
    #[error("this call needs a token with a jti (the method accepts each token once)")]
    MissingTokenId,
    /// The token, its subject or its client was revoked
    /// ([`Revocations::revoke`](crate::store::Revocations::revoke)).
    #[error("the token was revoked")]
    Revoked,
    /// The identity provider cannot be reached for keys or introspection right now. Maps to
    /// `UNAVAILABLE`, so that clients retry.
    #[error("the identity provider is unavailable")]
    Unavailable,
}

impl TokenError {
    /// A stable snake_case code for audit records and metrics.
    ///
    /// ```
    /// # use oauth_grpc::TokenError;
    /// assert_eq!(TokenError::WrongAudience.code(), "wrong_audience");
    /// ```
    pub const fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Encrypted => "encrypted",
            Self::Nested => "nested",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::AlgorithmMismatch => "algorithm_mismatch",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::UnsupportedCritical => "unsupported_critical",
            Self::WrongType => "wrong_type",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::MissingClaim => "missing_claim",
            Self::InvalidClaim => "invalid_claim",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Inactive => "inactive",
            Self::UnsupportedConfirmation => "unsupported_confirmation",
            Self::CertificateMismatch => "certificate_mismatch",
            Self::NotSenderConstrained => "not_sender_constrained",
            Self::DpopBoundAsBearer => "dpop_bound_as_bearer",
            Self::DpopKeyMismatch => "dpop_key_mismatch",
            Self::NotDpopBound => "not_dpop_bound",
            Self::MalformedActor => "malformed_actor",
            Self::DelegationTooDeep => "delegation_too_deep",
            Self::AlreadyUsed => "already_used",
            Self::MissingTokenId => "missing_jti",
            Self::Revoked => "revoked",
            Self::Unavailable => "provider_unavailable",
        }
    }
}

/// Why the runtime layer refused a call.
///
/// ```
/// use oauth_grpc::AuthError;
///
/// let status = tonic::Status::from(AuthError::MissingToken);
/// assert_eq!(status.code(), tonic::Code::Unauthenticated);
/// assert_eq!(status.metadata().get("www-authenticate").unwrap(), "Bearer");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No bearer credentials: no `authorization` value, or one with another scheme.
    #[error("this call needs a bearer token")]
    MissingToken,
    /// The credentials are malformed: several values, bad syntax, over the size limit.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The token was refused.
    #[error(transparent)]
    InvalidToken(TokenError),
    /// The token is valid but lacks the scopes of the rule.
    #[error("the token lacks the scopes this call needs")]
    InsufficientScope(Rule),
    /// The request path has no access rule.
    #[error("no access rule for this call")]
    NoRule,
    /// The call is delegated (RFC 8693 `act`) and the method admits only its subject
    /// directly (`delegation = forbid`).
    #[error("delegated calls are not allowed")]
    DelegationForbidden,
    /// The call's current actor is not one the method lists (`delegation = actors(…)`).
    #[error("this actor is not allowed")]
    ActorNotAllowed,
    /// The DPoP proof of the call was refused (RFC 9449 §7.1 `invalid_dpop_proof`).
    #[error(transparent)]
    InvalidProof(ProofError),
    /// The server wants a DPoP proof with its current nonce (RFC 9449 §9 `use_dpop_nonce`);
    /// the refusal carries the nonce in `dpop-nonce`.
    #[error("the DPoP proof needs the server's current nonce (see dpop-nonce)")]
    UseDpopNonce,
    /// The shared store (one-time tokens, the revocation list) did not answer in time, so the
    /// call cannot be decided: refused as `UNAVAILABLE`, never admitted unchecked.
    #[error("the shared store is unavailable; retry later")]
    StoreUnavailable,
}

impl AuthError {
    /// A stable snake_case code for audit records and metrics.
    ///
    /// ```
    /// # use oauth_grpc::{AuthError, TokenError};
    /// assert_eq!(AuthError::InvalidToken(TokenError::Expired).code(), "expired");
    /// assert_eq!(AuthError::MissingToken.code(), "missing_token");
    /// ```
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidToken(e) => e.code(),
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::NoRule => "no_rule",
            Self::DelegationForbidden => "delegation_forbidden",
            Self::ActorNotAllowed => "actor_not_allowed",
            Self::InvalidProof(e) => e.code(),
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::StoreUnavailable => "store_unavailable",
        }
    }
}

/// Why a DPoP proof (RFC 9449) was refused. Each maps to `UNAUTHENTICATED`
/// `DPoP error="invalid_dpop_proof"`, except [`ReplayCheckUnavailable`](Self::ReplayCheckUnavailable).
///
/// ```
/// use oauth_grpc::ProofError;
///
/// assert_eq!(ProofError::Replayed.code(), "dpop_proof_replayed");
/// assert_eq!(ProofError::Replayed.to_string(), "the DPoP proof was used before");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The call uses the `DPoP` scheme without a `dpop` value.
    #[error("this call needs a DPoP proof")]
    Missing,
    /// More than one `dpop` value.
    #[error("several DPoP proofs; send exactly one")]
    Several,
    /// The `dpop` value is over the size limit (8 KiB).
    #[error("the DPoP proof is too long")]
    TooLong,
    /// Not a compact JWS with a JSON-object header and payload (no repeated members).
    #[error("the DPoP proof is malformed")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's type is not dpop+jwt")]
    WrongType,
    /// `alg` is missing, `none`, symmetric, or not in the server's allow-list.
    #[error("the DPoP proof's signing algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The header names a critical extension (`crit`).
    #[error("the DPoP proof uses an unsupported critical header")]
    UnsupportedCritical,
    /// `jwk` holds private key members.
    #[error("the DPoP proof's jwk holds a private key")]
    PrivateKey,
    /// `jwk` is missing or not a usable public signing key.
    #[error("the DPoP proof's jwk is not a usable public key")]
    InvalidKey,
    /// `alg` does not fit the type of the `jwk`.
    #[error("the DPoP proof's signing algorithm does not match its key")]
    AlgorithmMismatch,
    /// The signature does not verify under `jwk`.
    #[error("the DPoP proof's signature is invalid")]
    BadSignature,
    /// `jti`, `htm`, `htu` or `iat` is missing, or a claim has the wrong type.
    #[error("the DPoP proof lacks a required claim or has an invalid one")]
    InvalidClaims,
    /// `htm` is not `POST`, the method of every gRPC call.
    #[error("the DPoP proof's htm is not the method of this call")]
    WrongMethod,
    /// `htu` is not the URI of this call.
    #[error("the DPoP proof's htu is not the URI of this call")]
    WrongUri,
    /// `iat` is outside the accepted window around the server's time.
    #[error("the DPoP proof is too old or issued in the future")]
    Stale,
    /// `ath` is missing or is not the hash of the access token.
    #[error("the DPoP proof's ath does not match the access token")]
    TokenHashMismatch,
    /// The proof (its key and `jti`) was seen before within its window.
    #[error("the DPoP proof was used before")]
    Replayed,
    /// The replay check cannot record the proof (its store is full or unreachable): refused
    /// as `UNAVAILABLE`, never accepted unchecked.
    #[error("the DPoP replay check is unavailable; retry later")]
    ReplayCheckUnavailable,
}

impl ProofError {
    /// A stable snake_case code for audit records and metrics.
    ///
    /// ```
    /// # use oauth_grpc::ProofError;
    /// assert_eq!(ProofError::WrongUri.code(), "dpop_wrong_uri");
    /// ```
    pub const fn code(self) -> &'static str {
        match self {
            Self::Missing => "dpop_proof_missing",
            Self::Several => "dpop_proof_several",
            Self::TooLong => "dpop_proof_too_long",
            Self::Malformed => "dpop_proof_malformed",
            Self::WrongType => "dpop_wrong_type",
            Self::UnsupportedAlgorithm => "dpop_unsupported_algorithm",
            Self::UnsupportedCritical => "dpop_unsupported_critical",
            Self::PrivateKey => "dpop_private_key",
            Self::InvalidKey => "dpop_invalid_key",
            Self::AlgorithmMismatch => "dpop_algorithm_mismatch",
            Self::BadSignature => "dpop_bad_signature",
            Self::InvalidClaims => "dpop_invalid_claims",
            Self::WrongMethod => "dpop_wrong_method",
            Self::WrongUri => "dpop_wrong_uri",
            Self::Stale => "dpop_stale",
            Self::TokenHashMismatch => "dpop_token_hash_mismatch",
            Self::Replayed => "dpop_proof_replayed",
            Self::ReplayCheckUnavailable => "dpop_replay_check_unavailable",
        }
    }
}

impl From<ProofError> for AuthError {
    fn from(error: ProofError) -> Self {
        Self::InvalidProof(error)
    }
}

impl From<TokenError> for AuthError {
    fn from(error: TokenError) -> Self {
        Self::InvalidToken(error)
    }
}

impl From<Denial> for AuthError {
    fn from(denial: Denial) -> Self {
        match denial {
            Denial::Unauthenticated => Self::MissingToken,
            Denial::InsufficientScope(rule) => Self::InsufficientScope(rule),
            Denial::DelegationForbidden => Self::DelegationForbidden,
            Denial::ActorNotAllowed => Self::ActorNotAllowed,
        }
    }
}

/// Why a TLS client certificate could not be read.
///
/// ```
/// use oauth_grpc::{CertificateError, ClientCertificate};
///
/// assert_eq!(ClientCertificate::from_der(b"not DER"), Err(CertificateError::Malformed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// Not one well-formed X.509 certificate in DER.
    #[error("the client certificate is not a well-formed X.509 certificate (DER)")]
    Malformed,
}

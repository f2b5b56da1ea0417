//! DPoP on the server (RFC 9449): [`Dpop`], the configuration [`OAuthLayer::dpop`] takes,
//! and the per-call check of the proof — its place in the call (`htm`, `htu`, `iat`, `ath`),
//! the server's nonce, and its one-time use.
//!
//! gRPC carries DPoP as metadata: `authorization: DPoP <token>` and `dpop: <proof JWT>`. Every
//! call is an HTTP/2 `POST`, so a proof's `htm` is `POST` and its `htu` is
//! `{scheme}://{authority}{path}` of the call, e.g.
//! `https://orders.example.com/orders.v1.Orders/CreateOrder`.
//!
//! [`OAuthLayer::dpop`]: crate::OAuthLayer::dpop

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::error::{AuthError, ConfigError, ProofError};
use crate::keys::Algorithm;
use crate::validate::dpop::{Proof, normalise_htu, verify_proof};

/// The metadata key of a DPoP proof (RFC 9449 §4.1, the `DPoP` header in lower case).
pub(crate) const DPOP: &str = "dpop";
/// The metadata key of a server nonce (RFC 9449 §8, `DPoP-Nonce`).
pub(crate) const DPOP_NONCE: &str = "dpop-nonce";

/// The algorithms a proof may be signed with unless configured otherwise.
const DEFAULT_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::RS256,
];
/// How long after its `iat` a proof is accepted (and how far ahead), besides the leeway.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);
/// How many proofs the replay check remembers at most.
const DEFAULT_REPLAY_CAPACITY: usize = 100_000;
/// The longest `dpop` value accepted.
const MAX_PROOF_LEN: usize = 8 * 1024;
/// Shards of the replay check, so that concurrent calls rarely wait on one lock.
const SHARDS: usize = 16;

/// DPoP (RFC 9449) for [`OAuthLayer`](crate::OAuthLayer): tokens bound to a key the client
/// proves it holds on every call, without client certificates.
///
/// With DPoP on, a call may send `authorization: DPoP <token>` with a `dpop` proof. The layer
/// checks the proof — one `dpop` value of at most 8 KiB, a compact JWS with `typ: dpop+jwt`,
/// an asymmetric `alg` of [`algorithms`](Self::algorithms), a public `jwk` in its header that
/// fits the `alg` and verifies the signature, `htm` `POST`, `htu` the call's URI, `iat` within
/// [`max_age`](Self::max_age) plus the validator's leeway, `ath` the hash of the token, the
/// server's nonce when [`nonces`](Self::nonces) are on — and that the token's `cnf.jkt` is the
/// thumbprint of the proof's key; then it records the proof so that it is accepted once. A
/// DPoP-bound token sent as a bearer token is refused (RFC 9449 §7.2), and so is the `DPoP`
/// scheme with an unbound token. Plain bearer tokens keep working beside DPoP unless the
/// method needs a sender-constrained token (the `bound` rule option).
///
/// ```
/// use std::time::Duration;
/// use oauth_grpc::{Algorithm, Dpop};
///
/// let dpop = Dpop::new()
///     .algorithms([Algorithm::ES256, Algorithm::EdDSA])?
///     .public_origin("https://orders.example.com")?
///     .max_age(Duration::from_secs(30));
/// # let _ = dpop;
/// # Ok::<(), oauth_grpc::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Dpop {
    algorithms: Vec<Algorithm>,
    max_age: Duration,
    origins: Vec<String>,
    replay_capacity: usize,
    nonces: Option<DpopNonces>,
}

impl fmt::Debug for Dpop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dpop")
            .field("algorithms", &self.algorithms)
            .field("max_age", &self.max_age)
            .field("origins", &self.origins)
            .field("replay_capacity", &self.replay_capacity)
            .field("nonces", &self.nonces)
            .finish()
    }
}

impl Default for Dpop {
    fn default() -> Self {
        Self::new()
    }
}

impl Dpop {
    /// DPoP with proofs signed by ES256, ES384, EdDSA, PS256 or RS256, accepted for 60 seconds
    /// around their `iat`, for the URI the call names, without server nonces.
    ///
    /// ```
    /// # use oauth_grpc::Dpop;
    /// assert!(format!("{:?}", Dpop::new()).contains("ES256"));
    /// ```
    pub fn new() -> Self {
        Self {
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            max_age: DEFAULT_MAX_AGE,
            origins: Vec::new(),
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
            nonces: None,
        }
    }

    /// The algorithms a proof may be signed with, in the order the `algs` of challenges lists
    /// them.
    ///
    /// # Errors
    ///
    /// [`ConfigError::DpopAlgorithm`] for an HMAC algorithm (a proof needs an asymmetric
    /// signature, RFC 9449 §4.2), and [`ConfigError::Empty`] for none at all.
    ///
    /// ```
    /// # use oauth_grpc::{Algorithm, ConfigError, Dpop};
    /// assert!(Dpop::new().algorithms([Algorithm::ES256]).is_ok());
    /// assert!(matches!(
    ///     Dpop::new().algorithms([Algorithm::HS256]),
    ///     Err(ConfigError::DpopAlgorithm(_))
    /// ));
    /// ```
    pub fn algorithms(
        mut self,
        algorithms: impl IntoIterator<Item = Algorithm>,
    ) -> Result<Self, ConfigError> {
        let mut chosen = Vec::new();
        for alg in algorithms {
            if !crate::validate::dpop::ASYMMETRIC.contains(&alg) {
                return Err(ConfigError::DpopAlgorithm(alg));
            }
            if !chosen.contains(&alg) {
                chosen.push(alg);
            }
        }
        if chosen.is_empty() {
            return Err(ConfigError::Empty("list of DPoP algorithms"));
        }
        self.algorithms = chosen;
        Ok(self)
    }

    /// How long a proof is accepted after its `iat`, and how far ahead of the server's clock
    /// its `iat` may be; both besides the validator's leeway. 60 seconds by default. The
    /// replay check remembers each proof for as long.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use oauth_grpc::Dpop;
    /// let dpop = Dpop::new().max_age(Duration::from_secs(30));
    /// assert!(format!("{dpop:?}").contains("30s"));
    /// ```
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The scheme and authority clients reach this server at, e.g.
    /// `https://orders.example.com` behind a proxy or load balancer: a proof's `htu` must be
    /// this origin followed by the call's path. Call it once per name the server has. Without
    /// it the layer expects the scheme and authority the call itself names (`:scheme` and
    /// `:authority`), which a proof made for another server with the same audience also names
    /// — configure the origin in production.
    ///
    /// # Errors
    ///
    /// [`ConfigError::DpopOrigin`] for anything but `http(s)://host[:port]` (no path other
    /// than `/`, no query, no user info).
    ///
    /// ```
    /// # use oauth_grpc::{ConfigError, Dpop};
    /// let dpop = Dpop::new().public_origin("https://Orders.Example.com:443")?;
    /// assert!(format!("{dpop:?}").contains("https://orders.example.com"));
    /// assert!(matches!(
    ///     Dpop::new().public_origin("orders.example.com"),
    ///     Err(ConfigError::DpopOrigin(_))
    /// ));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn public_origin(mut self, origin: &str) -> Result<Self, ConfigError> {
        let invalid = || ConfigError::DpopOrigin(crate::error::shown_url(origin));
        if origin.contains(['?', '#']) {
            return Err(invalid());
        }
        let normalised = normalise_htu(origin).ok_or_else(invalid)?;
        let Some(origin) = normalised.strip_suffix('/') else {
            return Err(invalid());
        };
        if origin.matches('/').count() != 2 {
            // A path: the proof's `htu` is the origin and the gRPC path, nothing between.
            return Err(invalid());
        }
        if !self.origins.iter().any(|known| known == origin) {
            self.origins.push(origin.to_owned());
        }
        Ok(self)
    }

    /// How many proofs the replay check remembers at most (100,000 by default): each
    /// accepted proof is remembered until it would be too old to accept again. When that
    /// many live proofs are held, new calls with proofs are refused with `UNAVAILABLE`
    /// rather than accepted unchecked; size it above the busiest rate of DPoP calls times
    /// the window (twice [`max_age`](Self::max_age) plus the leeway). This record is the
    /// replica's own; with [`OAuthLayer::shared_store`](crate::OAuthLayer::shared_store) the
    /// proofs are recorded in the shared store instead, and this capacity is unused.
    ///
    /// ```
    /// # use oauth_grpc::Dpop;
    /// let dpop = Dpop::new().replay_capacity(1_000_000);
    /// # let _ = dpop;
    /// ```
    #[must_use]
    pub fn replay_capacity(mut self, proofs: usize) -> Self {
        self.replay_capacity = proofs.max(SHARDS);
        self
    }

    /// Requires every proof to carry a nonce of this server (RFC 9449 §9). A proof without
    /// the current nonce is refused with `UNAUTHENTICATED` `DPoP error="use_dpop_nonce"` and
    /// a fresh nonce in the `dpop-nonce` metadata; the client makes a new proof with it. Nonces
    /// rotate; an accepted proof with an older nonce gets the current one in the response's
    /// `dpop-nonce` header.
    ///
    /// ```
    /// # use oauth_grpc::{Dpop, DpopNonces};
    /// let dpop = Dpop::new().nonces(DpopNonces::new());
    /// # let _ = dpop;
    /// ```
    #[must_use]
    pub fn nonces(mut self, nonces: DpopNonces) -> Self {
        self.nonces = Some(nonces);
        self
    }

    /// The configuration as the layer uses it.
    pub(crate) fn into_check(self) -> DpopCheck {
        let algs = self
            .algorithms
            .iter()
            .map(|alg| format!("{alg:?}"))
            .collect::<Vec<_>>()
            .join(" ");
        DpopCheck {
            algs,
            algorithms: self.algorithms,
            max_age: self.max_age.as_secs(),
            origins: self.origins,
            replay: ReplayCheck::new(self.replay_capacity),
            nonces: self.nonces,
        }
    }
}

/// Server nonces for DPoP proofs (RFC 9449 §9): unpredictable values the server hands out,
/// which proofs must carry, so that a proof cannot be made ahead of time. Stateless: a nonce
/// is the time step it was made in and an HMAC-SHA256 of it under a secret, so every replica
/// with the same secret accepts the nonces of the others.
///
/// ```
/// use std::time::Duration;
/// use oauth_grpc::DpopNonces;
///
/// // Replicas share one secret, e.g. read from a mounted file.
/// let nonces = DpopNonces::with_secret(&[7u8; 32])?.rotate_every(Duration::from_secs(30));
/// # let _ = nonces;
/// # Ok::<(), oauth_grpc::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct DpopNonces {
    key: jsonwebtoken::EncodingKey,
    rotate_every: u64,
}

impl fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopNonces")
            .field("secret", &"<redacted>")
            .field("rotate_every", &Duration::from_secs(self.rotate_every))
            .finish()
    }
}

impl Default for DpopNonces {
    fn default() -> Self {
        Self::new()
    }
}

impl DpopNonces {
    /// Nonces under a random secret of this process, rotating every 60 seconds: for one
    /// server, or replicas behind sticky connections. Replicas that share calls need
    /// [`with_secret`](Self::with_secret).
    ///
    /// ```
    /// # use oauth_grpc::DpopNonces;
    /// assert!(format!("{:?}", DpopNonces::new()).contains("<redacted>"));
    /// ```
    pub fn new() -> Self {
        let mut secret = [0u8; 32];
        // Without randomness, a secret nobody knows is still one nobody can guess: the
        // nonces then only prove that the proof was made after the server handed them out
        // at this address and time, which the layer also checks by `iat`.
        if getrandom::fill(&mut secret).is_err() {
            let fallback = Sha256::digest(format!("{:?}", std::time::SystemTime::now()));
            secret.copy_from_slice(&fallback);
        }
        Self {
            key: jsonwebtoken::EncodingKey::from_secret(&secret),
            rotate_every: 60,
        }
    }

    /// Nonces under `secret`, shared by the replicas of the service (at least 32 bytes).
    ///
    /// # Errors
    ///
    /// [`ConfigError::DpopNonceSecret`] for a secret shorter than 32 bytes.
    ///
    /// ```
    /// # use oauth_grpc::{ConfigError, DpopNonces};
    /// assert!(matches!(DpopNonces::with_secret(b"short"), Err(ConfigError::DpopNonceSecret)));
    /// ```
    pub fn with_secret(secret: &[u8]) -> Result<Self, ConfigError> {
        if secret.len() < 32 {
            return Err(ConfigError::DpopNonceSecret);
        }
        Ok(Self {
            key: jsonwebtoken::EncodingKey::from_secret(secret),
            rotate_every: 60,
        })
    }

    /// How often a new nonce is handed out (60 seconds by default, at least one second). A
    /// nonce is accepted in its step and the two after it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use oauth_grpc::DpopNonces;
    /// let nonces = DpopNonces::new().rotate_every(Duration::from_secs(300));
    /// assert!(format!("{nonces:?}").contains("300s"));
    /// ```
    #[must_use]
    pub fn rotate_every(mut self, every: Duration) -> Self {
        self.rotate_every = every.as_secs().max(1);
        self
    }

    fn step(&self, now: u64) -> u64 {
        now / self.rotate_every
    }

    fn nonce_of(&self, step: u64) -> Option<String> {
        let message = format!("oauth-grpc dpop nonce {step}");
        let mac =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, Algorithm::HS256).ok()?;
        // 22 base64url characters: 132 bits of the HMAC.
        Some(format!("{step}.{}", mac.get(..22)?))
    }

    /// The nonce to hand out now.
    pub(crate) fn current(&self, now: u64) -> Option<String> {
        self.nonce_of(self.step(now))
    }

    /// Whether `nonce` is one of ours of the current or the two previous steps, and if so
    /// whether it is the current one.
    fn check(&self, nonce: &str, now: u64) -> Option<bool> {
        let (step, _) = nonce.split_once('.')?;
        let step: u64 = step.parse().ok()?;
        let current = self.step(now);
        if step > current || current - step > 2 {
            return None;
        }
        let expected = self.nonce_of(step)?;
        let same = expected.len() == nonce.len()
            && expected
                .bytes()
                .zip(nonce.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same.then_some(step == current)
    }
}

/// The layer's DPoP check: the configuration, and the proofs seen.
pub(crate) struct DpopCheck {
    /// The `algs` of challenges: the allowed algorithms, space-separated.
    pub(crate) algs: String,
    algorithms: Vec<Algorithm>,
    max_age: u64,
    origins: Vec<String>,
    replay: ReplayCheck,
    nonces: Option<DpopNonces>,
}

impl fmt::Debug for DpopCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dpop")
            .field("algs", &self.algs)
            .field("max_age", &self.max_age)
            .field("origins", &self.origins)
            .field("nonces", &self.nonces.is_some())
            .finish_non_exhaustive()
    }
}

/// A proof that passed every check but its one-time use.
pub(crate) struct CheckedProof {
    /// The RFC 7638 thumbprint of the proof's key.
    pub(crate) jkt: std::sync::Arc<str>,
    /// What the replay check records.
    replay_key: [u8; 32],
    expires: u64,
    /// A newer nonce to hand out with the response, if the proof carried an older one.
    pub(crate) fresh_nonce: Option<String>,
}

impl DpopCheck {
    /// The call's proof: exactly one `dpop` value, within the size limit.
    pub(crate) fn proof_value(headers: &HeaderMap) -> Result<&str, ProofError> {
        let mut values = headers.get_all(DPOP).iter();
        let Some(value) = values.next() else {
            return Err(ProofError::Missing);
        };
        if values.next().is_some() {
            return Err(ProofError::Several);
        }
        if value.len() > MAX_PROOF_LEN {
            return Err(ProofError::TooLong);
        }
        value.to_str().map_err(|_| ProofError::Malformed)
    }

    /// The URIs a proof's `htu` may name for a call to `path`, normalised: the configured
    /// origins, else the scheme and authority of the call.
    pub(crate) fn expected_uris<B>(&self, request: &http::Request<B>, secure: bool) -> Vec<String> {
        let path = request.uri().path();
        if !self.origins.is_empty() {
            return self
                .origins
                .iter()
                .filter_map(|origin| normalise_htu(&format!("{origin}{path}")))
                .collect();
        }
        let scheme = request
            .uri()
            .scheme_str()
            .unwrap_or(if secure { "https" } else { "http" });
        let authority = request
            .uri()
            .authority()
            .map(|authority| authority.as_str())
            .or_else(|| {
                request
                    .headers()
                    .get(http::header::HOST)
                    .and_then(|host| host.to_str().ok())
            });
        authority
            .and_then(|authority| normalise_htu(&format!("{scheme}://{authority}{path}")))
            .into_iter()
            .collect()
    }

    /// Every check of the proof but its one-time use and the token's binding to its key:
    /// the proof's own (structure, `typ`, `alg`, key, signature, claims), then `htm`, `htu`,
    /// `iat`, `ath` and the nonce.
    pub(crate) fn check(
        &self,
        proof: &str,
        expected_uris: &[String],
        token: &str,
        now: u64,
        leeway: u64,
    ) -> Result<CheckedProof, AuthError> {
        let Proof {
            jkt,
            jti,
            htm,
            htu,
            iat,
            ath,
            nonce,
        } = verify_proof(proof, &self.algorithms)?;
        if htm != "POST" {
            return Err(ProofError::WrongMethod.into());
        }
        let htu = normalise_htu(&htu).ok_or(ProofError::WrongUri)?;
        if !expected_uris.contains(&htu) {
            return Err(ProofError::WrongUri.into());
        }
        let window = self.max_age.saturating_add(leeway);
        if iat.abs_diff(now) > window {
            return Err(ProofError::Stale.into());
        }
        let expected_ath = crate::validate::dpop::token_hash(token);
        match ath {
            Some(ath) if constant_time_eq(ath.as_bytes(), expected_ath.as_bytes()) => {}
            _ => return Err(ProofError::TokenHashMismatch.into()),
        }
        let fresh_nonce = match &self.nonces {
            None => None,
            Some(nonces) => match nonce.as_deref().and_then(|n| nonces.check(n, now)) {
                Some(true) => None,
                Some(false) => nonces.current(now),
                None => return Err(AuthError::UseDpopNonce),
            },
        };
        let mut hasher = Sha256::new();
        hasher.update(jkt.as_bytes());
        hasher.update([0]);
        hasher.update(jti.as_bytes());
        Ok(CheckedProof {
            jkt: std::sync::Arc::from(jkt),
            replay_key: hasher.finalize().into(),
            // Accepted until `iat + window`: remembered as long.
            expires: iat.saturating_add(window),
            fresh_nonce,
        })
    }

    /// Records the proof as used; refuses one used before: in `store` when the layer shares
    /// one with other replicas, else in this replica's replay record. A store that does not
    /// answer refuses the proof (`UNAVAILABLE`): a replay is never accepted.
    pub(crate) async fn consume(
        &self,
        proof: &CheckedProof,
        now: u64,
        store: Option<&crate::store::StoreUse>,
    ) -> Result<(), ProofError> {
        let Some(store) = store else {
            return self.replay.insert(proof.replay_key, proof.expires, now);
        };
        let mut key = String::from("dpop:");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(proof.replay_key, &mut key);
        // Remembered for as long as the proof would be accepted, and a second more.
        let ttl = Duration::from_secs(proof.expires.saturating_sub(now).saturating_add(1));
        match store.observe(store.store.insert_new(&key, b"1", ttl).await) {
            Ok(true) => Ok(()),
            Ok(false) => Err(ProofError::Replayed),
            Err(_) => Err(ProofError::ReplayCheckUnavailable),
        }
    }

    /// The nonce a `use_dpop_nonce` refusal hands out, when nonces are on.
    pub(crate) fn current_nonce(&self, now: u64) -> Option<String> {
        self.nonces.as_ref().and_then(|nonces| nonces.current(now))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The proofs accepted and not yet too old to be accepted again, by SHA-256 of their key's
/// thumbprint and `jti` (never the raw `jti`). Bounded: when a shard is full of live proofs,
/// a new one is refused (`UNAVAILABLE`), never accepted unrecorded.
struct ReplayCheck {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

#[derive(Default)]
struct Shard {
    seen: HashMap<[u8; 32], u64>,
    /// When expired entries were last dropped (Unix seconds).
    purged_at: u64,
}

impl ReplayCheck {
    fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    fn insert(&self, key: [u8; 32], expires: u64, now: u64) -> Result<(), ProofError> {
        let shard = &self.shards[usize::from(key[0]) % SHARDS];
        // A panic elsewhere while holding the lock leaves the map as it was: keep using it.
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&until) = shard.seen.get(&key)
            && until >= now
        {
            return Err(ProofError::Replayed);
        }
        if shard.seen.len() >= self.per_shard && shard.purged_at != now {
            shard.seen.retain(|_, until| *until >= now);
            shard.purged_at = now;
        }
        if shard.seen.len() >= self.per_shard {
            return Err(ProofError::ReplayCheckUnavailable);
        }
        shard.seen.insert(key, expires);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_accepted_once_and_forgotten_when_too_old() {
        let replay = ReplayCheck::new(64);
        assert_eq!(replay.insert([1; 32], 100, 50), Ok(()));
        assert_eq!(replay.insert([1; 32], 100, 60), Err(ProofError::Replayed));
        assert_eq!(replay.insert([1; 32], 100, 100), Err(ProofError::Replayed));
        // Too old to be accepted by the proof checks anyway: may be recorded anew.
        assert_eq!(replay.insert([1; 32], 200, 101), Ok(()));
    }

    #[test]
    fn a_full_replay_check_refuses_rather_than_forgets() {
        let replay = ReplayCheck::new(SHARDS); // one proof per shard
        assert_eq!(replay.insert([0; 32], 100, 10), Ok(()));
        let mut other = [0; 32];
        other[1] = 1; // the same shard
        assert_eq!(
            replay.insert(other, 100, 10),
            Err(ProofError::ReplayCheckUnavailable)
        );
        // Once the first is too old, room is made.
        assert_eq!(replay.insert(other, 200, 101), Ok(()));
        assert_eq!(
            replay.insert([0; 32], 200, 101),
            Err(ProofError::ReplayCheckUnavailable)
        );
    }

    #[test]
    fn nonces_rotate_and_are_accepted_for_three_steps() {
        let nonces = DpopNonces::with_secret(&[3; 32])
            .unwrap_or_else(|_| DpopNonces::new())
            .rotate_every(Duration::from_secs(60));
        let now = 6_000;
        let current = nonces.current(now).unwrap_or_default();
        assert_eq!(nonces.check(&current, now), Some(true));
        assert_eq!(nonces.check(&current, now + 60), Some(false));
        assert_eq!(nonces.check(&current, now + 120), Some(false));
        assert_eq!(nonces.check(&current, now + 180), None);
        // Not from the future, not forged, not another secret's.
        assert_eq!(nonces.check(&current, now - 60), None);
        let (step, _) = current.split_once('.').unwrap_or_default();
        assert_eq!(
            nonces.check(&format!("{step}.AAAAAAAAAAAAAAAAAAAAAA"), now),
            None
        );
        let other = DpopNonces::with_secret(&[4; 32]).unwrap_or_else(|_| DpopNonces::new());
        assert_eq!(other.check(&current, now), None);
        assert_eq!(nonces.check("garbage", now), None);
        assert_ne!(nonces.current(now + 60), Some(current));
    }

    #[test]
    fn origins_are_scheme_and_authority_only() {
        for good in ["https://orders.example.com", "http://127.0.0.1:50051/"] {
            assert!(Dpop::new().public_origin(good).is_ok(), "{good}");
        }
        for bad in [
            "orders.example.com",
            "https://orders.example.com/api",
            "https://orders.example.com?x",
            "https://user@orders.example.com",
            "ftp://orders.example.com",
        ] {
            assert!(
                matches!(
                    Dpop::new().public_origin(bad),
                    Err(ConfigError::DpopOrigin(_))
                ),
                "{bad}"
            );
        }
    }
}

//! Helpers for your own tests: a test issuer that mints real signed tokens, and a conformance
//! run that calls every rpc of a running server with the tokens an attacker would try.
//!
//! A security test of your service in a few lines:
//!
//! ```no_run
//! # async fn run(addr: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
//! use oauth_grpc::testing::{Conformance, TestIssuer};
//! use oauth_grpc::PolicySet;
//!
//! let issuer = TestIssuer::generate("https://issuer.test/")?;   // the server trusts issuer.key_set()
//! let policies = PolicySet::new().service::<examples::OrderBook>();
//! let report = Conformance::new(&issuer, "orders-api", &policies)
//!     .catalog::<examples::OrderScope>()
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

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use tonic::Code;

use crate::keys::KeySet;
use crate::policy::{PolicySet, Rule, ScopeCatalog};

/// Why a test helper could not do its work.
///
/// ```
/// let err = oauth_grpc::testing::TestIssuer::from_pem("https://i/", b"nope", oauth_grpc::keys::Algorithm::EdDSA, "k");
/// assert!(err.is_err());
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TestingError(String);

/// An issuer for tests: one signing key, its public JWKS, and tokens made to order.
pub struct TestIssuer {
    issuer: String,
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Jwk,
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410); the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

impl TestIssuer {
    /// An issuer with a freshly generated Ed25519 key.
    ///
    /// # Errors
    ///
    /// When the system has no randomness or the crypto backend refuses the key.
    ///
    /// ```
    /// let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// assert_eq!(issuer.key_set().len(), 1);
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn generate(issuer: impl Into<String>) -> Result<Self, TestingError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| TestingError(format!("no randomness: {e}")))?;
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        let kid = format!(
            "test-{:02x}{:02x}{:02x}{:02x}",
            seed[0], seed[1], seed[2], seed[3]
        );
        Self::with_key(
            issuer.into(),
            EncodingKey::from_ed_der(&der),
            Algorithm::EdDSA,
            kid,
        )
    }

    /// An issuer signing with a PEM private key.
    ///
    /// # Errors
    ///
    /// When the PEM is not a private key for `alg`.
    ///
    /// ```
    /// use oauth_grpc::{keys::Algorithm, testing::TestIssuer};
    /// assert!(TestIssuer::from_pem("https://i/", b"not pem", Algorithm::RS256, "k").is_err());
    /// ```
    pub fn from_pem(
        issuer: impl Into<String>,
        pem: &[u8],
        alg: Algorithm,
        kid: impl Into<String>,
    ) -> Result<Self, TestingError> {
        let key = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            _ => EncodingKey::from_rsa_pem(pem),
        }
        .map_err(|_| TestingError(format!("not a PEM private key for {alg:?}")))?;
        Self::with_key(issuer.into(), key, alg, kid.into())
    }

    fn with_key(
        issuer: String,
        key: EncodingKey,
        alg: Algorithm,
        kid: String,
    ) -> Result<Self, TestingError> {
        crate::backend::install().map_err(|e| TestingError(e.to_string()))?;
        let mut jwk = Jwk::from_encoding_key(&key, alg)
            .map_err(|_| TestingError("the crypto backend refused the key".into()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            issuer,
            kid,
            alg,
            key,
            jwk,
        })
    }

    /// The issuer URL (`iss`).
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// assert_eq!(issuer.issuer(), "https://issuer.test/");
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public JWKS document.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// assert!(issuer.jwks().contains("\"keys\""));
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn jwks(&self) -> String {
        serde_json::to_string(&JwkSet {
            keys: vec![self.jwk.clone()],
        })
        .unwrap_or_default()
    }

    /// The public key as a [`KeySet`], for the server's validator.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// assert_eq!(issuer.key_set().kids().next(), Some(Some(issuer.kid())));
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn key_set(&self) -> KeySet {
        KeySet::from_jwks(self.jwks().as_bytes()).unwrap_or_default()
    }

    /// The key id.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// assert!(issuer.kid().starts_with("test-"));
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A valid RFC 9068 access token for `audience`, to adjust before signing.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// let token = issuer.token("orders-api").scopes(["orders:read"]).subject("alice").sign()?;
    /// assert_eq!(token.split('.').count(), 3);
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn token(&self, audience: impl Into<String>) -> TokenBuilder<'_> {
        let now = now();
        TokenBuilder {
            issuer: self,
            claims: json!({
                "iss": self.issuer,
                "aud": audience.into(),
                "sub": "conformance-subject",
                "client_id": "conformance-client",
                "iat": now,
                "exp": now + 300,
                "jti": format!("test-{now}-{}", next_id()),
                "scope": "",
            }),
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A token being made by [`TestIssuer::token`].
#[derive(Debug)]
pub struct TokenBuilder<'a> {
    issuer: &'a TestIssuer,
    claims: Value,
}

impl TokenBuilder<'_> {
    /// Grants these scopes (the `scope` claim).
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// let token = issuer.token("api").scopes(["a", "b"]).sign()?;
    /// # let _ = token;
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    #[must_use]
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        self.claims["scope"] = json!(scopes.join(" "));
        self
    }

    /// Sets `sub`.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// let token = issuer.token("api").subject("alice").sign()?;
    /// # let _ = token;
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.claims["sub"] = json!(subject.into());
        self
    }

    /// Makes the token expired an hour ago.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// let token = issuer.token("api").expired().sign()?;
    /// # let _ = token;
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    #[must_use]
    pub fn expired(mut self) -> Self {
        let now = now();
        self.claims["iat"] = json!(now - 7200);
        self.claims["exp"] = json!(now - 3600);
        self
    }

    /// Sets any claim.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// let token = issuer.token("api").claim("tenant", "acme".into()).sign()?;
    /// # let _ = token;
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    #[must_use]
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims[name] = value;
        self
    }

    /// Signs the token (`typ: at+jwt`).
    ///
    /// # Errors
    ///
    /// When the backend cannot sign.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// assert!(issuer.token("api").sign()?.starts_with("ey"));
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn sign(self) -> Result<String, TestingError> {
        let mut header = jsonwebtoken::Header::new(self.issuer.alg);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.issuer.kid.clone());
        jsonwebtoken::encode(&header, &self.claims, &self.issuer.key)
            .map_err(|_| TestingError("cannot sign the token".into()))
    }
}

/// One call of a conformance run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outcome {
    /// The rpc path.
    pub path: String,
    /// Its rule.
    pub rule: Rule,
    /// Which token was sent.
    pub case: &'static str,
    /// What was expected, in words.
    pub expected: &'static str,
    /// The code the server answered.
    pub code: Code,
    /// Whether the answer is as expected.
    pub passed: bool,
}

/// The results of a conformance run.
#[derive(Debug, Clone)]
pub struct ConformanceReport {
    outcomes: Vec<Outcome>,
}

impl ConformanceReport {
    /// Every call.
    ///
    /// ```
    /// # fn check(report: oauth_grpc::testing::ConformanceReport) {
    /// for outcome in report.outcomes() {
    ///     println!("{} {} {:?}", outcome.path, outcome.case, outcome.code);
    /// }
    /// # }
    /// ```
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// The calls whose answer was not as expected.
    ///
    /// ```
    /// # fn check(report: oauth_grpc::testing::ConformanceReport) {
    /// assert!(report.failures().next().is_none());
    /// # }
    /// ```
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> + '_ {
        self.outcomes.iter().filter(|o| !o.passed)
    }

    /// Whether every answer was as expected.
    ///
    /// ```
    /// # fn check(report: oauth_grpc::testing::ConformanceReport) {
    /// assert!(report.passed());
    /// # }
    /// ```
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// A table of all calls.
    ///
    /// ```
    /// # fn check(report: oauth_grpc::testing::ConformanceReport) {
    /// println!("{}", report.table());
    /// # }
    /// ```
    pub fn table(&self) -> String {
        let width = self
            .outcomes
            .iter()
            .map(|o| o.path.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!(
            "{:width$}  {:22}  {:20}  {:18}  result\n",
            "rpc", "token", "expected", "got"
        );
        for o in &self.outcomes {
            let _ = writeln!(
                out,
                "{:width$}  {:22}  {:20}  {:18}  {}",
                o.path,
                o.case,
                o.expected,
                format!("{} {:?}", o.code as i32, o.code),
                if o.passed { "ok" } else { "FAILED" }
            );
        }
        out
    }

    /// Panics with the table if any answer was not as expected — for use in tests.
    ///
    /// # Panics
    ///
    /// When the run found a failure; the message is the table.
    ///
    /// ```
    /// # fn check(report: oauth_grpc::testing::ConformanceReport) {
    /// report.assert_passed();
    /// # }
    /// ```
    #[allow(clippy::panic)] // the test report of a test helper
    pub fn assert_passed(&self) {
        if !self.passed() {
            panic!(
                "the server does not enforce its access rules:\n{}",
                self.table()
            );
        }
    }
}

/// A conformance run against a running server. See the [module docs](self).
#[derive(Debug)]
pub struct Conformance<'a> {
    issuer: &'a TestIssuer,
    audience: String,
    policies: &'a PolicySet,
    catalog: BTreeSet<String>,
}

impl<'a> Conformance<'a> {
    /// A run with tokens from `issuer` for `audience`, against the rules of `policies`.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// # let policies = oauth_grpc::PolicySet::new();
    /// let run = oauth_grpc::testing::Conformance::new(&issuer, "orders-api", &policies);
    /// # let _ = run;
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    pub fn new(
        issuer: &'a TestIssuer,
        audience: impl Into<String>,
        policies: &'a PolicySet,
    ) -> Self {
        let catalog = policies
            .methods()
            .flat_map(|m| m.rule().scopes().iter().map(|s| s.as_str().to_owned()))
            .collect();
        Self {
            issuer,
            audience: audience.into(),
            policies,
            catalog,
        }
    }

    /// Adds every scope of a catalog to the scopes the "all but the required" token holds.
    ///
    /// ```
    /// # let issuer = oauth_grpc::testing::TestIssuer::generate("https://issuer.test/")?;
    /// # let policies = oauth_grpc::PolicySet::new();
    /// let run = oauth_grpc::testing::Conformance::new(&issuer, "api", &policies)
    ///     .catalog::<examples::OrderScope>();
    /// # let _ = run;
    /// # Ok::<(), oauth_grpc::testing::TestingError>(())
    /// ```
    #[must_use]
    pub fn catalog<C: ScopeCatalog>(mut self) -> Self {
        self.catalog
            .extend(C::ALL.iter().map(|s| s.as_str().to_owned()));
        self
    }

    /// Calls every rpc of the policies at `url` (`http://127.0.0.1:PORT`) five times.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or a token cannot be signed.
    pub async fn run(&self, url: &str) -> Result<ConformanceReport, TestingError> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
            .map_err(|e| TestingError(format!("bad url {url}: {e}")))?
            .connect()
            .await
            .map_err(|e| TestingError(format!("cannot connect to {url}: {e}")))?;
        let mut outcomes = Vec::new();
        for method in self.policies.methods() {
            let rule = method.rule();
            let required: BTreeSet<String> = rule
                .scopes()
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect();
            let others: Vec<&String> = self
                .catalog
                .iter()
                .filter(|s| !required.contains(*s))
                .collect();
            let public = rule == Rule::Public;
            let cases: [(&'static str, Option<String>, Expect); 5] = [
                (
                    "no token",
                    None,
                    if public {
                        Expect::Neither
                    } else {
                        Expect::Unauthenticated
                    },
                ),
                (
                    "expired",
                    Some(
                        self.issuer
                            .token(&self.audience)
                            .scopes(&required)
                            .expired()
                            .sign()?,
                    ),
                    if public {
                        Expect::Neither
                    } else {
                        Expect::Unauthenticated
                    },
                ),
                (
                    "other audience",
                    Some(
                        self.issuer
                            .token("another-audience")
                            .scopes(&required)
                            .sign()?,
                    ),
                    if public {
                        Expect::Neither
                    } else {
                        Expect::Unauthenticated
                    },
                ),
                (
                    "all but required scopes",
                    Some(self.issuer.token(&self.audience).scopes(&others).sign()?),
                    match rule {
                        Rule::AllOf(_) | Rule::AnyOf(_) => Expect::PermissionDenied,
                        _ => Expect::Neither,
                    },
                ),
                (
                    "exactly required scopes",
                    Some(self.issuer.token(&self.audience).scopes(&required).sign()?),
                    Expect::Neither,
                ),
            ];
            for (case, token, expect) in cases {
                let code = call(channel.clone(), method.path(), token.as_deref()).await;
                outcomes.push(Outcome {
                    path: method.path().to_owned(),
                    rule,
                    case,
                    expected: expect.words(),
                    code,
                    passed: expect.matches(code),
                });
            }
        }
        Ok(ConformanceReport { outcomes })
    }
}

#[derive(Clone, Copy)]
enum Expect {
    Unauthenticated,
    PermissionDenied,
    Neither,
}

impl Expect {
    fn words(self) -> &'static str {
        match self {
            Self::Unauthenticated => "16 Unauthenticated",
            Self::PermissionDenied => "7 PermissionDenied",
            Self::Neither => "neither 16 nor 7",
        }
    }

    fn matches(self, code: Code) -> bool {
        match self {
            Self::Unauthenticated => code == Code::Unauthenticated,
            Self::PermissionDenied => code == Code::PermissionDenied,
            Self::Neither => code != Code::Unauthenticated && code != Code::PermissionDenied,
        }
    }
}

/// Calls `path` with one empty message (valid for any protobuf message type) as a stream,
/// which fits every streaming kind; returns the code of the answer.
async fn call(channel: tonic::transport::Channel, path: &str, token: Option<&str>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    if let Err(error) = grpc.ready().await {
        return Status::from_error(Box::new(error)).code();
    }
    let Ok(path) = http::uri::PathAndQuery::try_from(path) else {
        return Code::InvalidArgument;
    };
    let mut request = tonic::Request::new(tokio_stream::once(Vec::new()));
    if let Some(token) = token
        && let Ok(value) = format!("Bearer {token}").parse()
    {
        request.metadata_mut().insert("authorization", value);
    }
    match grpc.streaming(request, path, RawCodec).await {
        Err(status) => status.code(),
        Ok(response) => {
            let mut stream = response.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => return Code::Ok,
                    Err(status) => return status.code(),
                }
            }
        }
    }
}

use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Passes message bytes through unchanged.
struct RawCodec;

struct Raw;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use bytes::Buf as _;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

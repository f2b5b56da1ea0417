//! [`Conformance`]: every rpc of a running server, called with the tokens an attacker would
//! try.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use tonic::Code;

use crate::policy::{Delegation, PolicySet, Rule};
use crate::scope::ScopeCatalog;

use super::{TestIssuer, TestingError};

/// One call of a conformance run: which token was sent to which rpc, and what came back.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Call {
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
    calls: Vec<Call>,
}

impl ConformanceReport {
    /// Every call.
    ///
    /// ```
    /// # fn check(report: oauth_grpc::testing::ConformanceReport) {
    /// for call in report.calls() {
    ///     println!("{} {} {:?}", call.path, call.case, call.code);
    /// }
    /// # }
    /// ```
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// The calls whose answer was not as expected.
    ///
    /// ```
    /// # fn check(report: oauth_grpc::testing::ConformanceReport) {
    /// assert!(report.failures().next().is_none());
    /// # }
    /// ```
    pub fn failures(&self) -> impl Iterator<Item = &Call> + '_ {
        self.calls.iter().filter(|o| !o.passed)
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
            .calls
            .iter()
            .map(|o| o.path.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!(
            "{:width$}  {:22}  {:20}  {:18}  result\n",
            "rpc", "token", "expected", "got"
        );
        for o in &self.calls {
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

/// A conformance run against a running server. See the [module docs](crate::testing).
#[derive(Debug)]
pub struct Conformance<'a> {
    issuer: &'a TestIssuer,
    audience: String,
    policies: &'a PolicySet,
    catalog: BTreeSet<String>,
    max_delegation_depth: usize,
}

impl<'a> Conformance<'a> {
    /// A run with tokens from `issuer` for `audience`, against the rules of `policies`.
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
            max_delegation_depth: 4,
        }
    }

    /// The server's [`max_delegation_depth`](crate::ValidatorBuilder::max_delegation_depth),
    /// when it is not the default 4: the "too deep" case sends one level more.
    ///
    /// ```
    /// # fn run(issuer: &oauth_grpc::testing::TestIssuer, policies: &oauth_grpc::PolicySet) {
    /// use oauth_grpc::testing::Conformance;
    /// let run = Conformance::new(issuer, "orders-api", policies).max_delegation_depth(2);
    /// # let _ = run;
    /// # }
    /// ```
    #[must_use]
    pub fn max_delegation_depth(mut self, depth: u8) -> Self {
        self.max_delegation_depth = usize::from(depth);
        self
    }

    /// Adds every scope of a catalog to the scopes the "all but the required" token holds.
    #[must_use]
    pub fn catalog<C: ScopeCatalog>(mut self) -> Self {
        self.catalog
            .extend(C::ALL.iter().map(|s| s.as_str().to_owned()));
        self
    }

    /// Calls every rpc of the policies at `url` (`http://127.0.0.1:PORT`) nine times: no
    /// token, expired, another audience, all but the required scopes, exactly the required
    /// scopes, and four delegated tokens with the required scopes (RFC 8693 `act`): by an
    /// actor the method admits, by one it does not list, by an admitted actor for a prior
    /// one (nested), and a chain one level deeper than the server admits. A `once` rpc is
    /// called twice more with one token: admitted, then refused as already used.
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
        let mut calls = Vec::new();
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
            let delegation = method.delegation();
            // The actor a delegated call is admitted for, if any is: the first listed, or any.
            let permitted = delegation
                .actors()
                .first()
                .copied()
                .unwrap_or("conformance-agent");
            let unlisted = "conformance-unlisted-agent";
            let (as_permitted, as_unlisted) = match (public, delegation) {
                (true, _) | (false, Delegation::Allowed) => (Expect::Neither, Expect::Neither),
                (false, Delegation::Forbidden) => {
                    (Expect::PermissionDenied, Expect::PermissionDenied)
                }
                (false, _) => (Expect::Neither, Expect::PermissionDenied),
            };
            let delegated = |act: serde_json::Value| {
                self.issuer
                    .token(&self.audience)
                    .scopes(&required)
                    .claim("act", act)
                    .sign()
            };
            let too_deep = (0..=self.max_delegation_depth).fold(None, |prior, level| {
                let mut act = serde_json::json!({ "sub": format!("agent-{level}") });
                if let Some(prior) = prior {
                    act["act"] = prior;
                }
                Some(act)
            });
            let cases: [(&'static str, Option<String>, Expect); 9] = [
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
                (
                    "delegated, admitted actor",
                    Some(delegated(serde_json::json!({ "sub": permitted }))?),
                    as_permitted,
                ),
                (
                    "delegated, unlisted actor",
                    Some(delegated(serde_json::json!({ "sub": unlisted }))?),
                    as_unlisted,
                ),
                (
                    "delegated, nested chain",
                    Some(delegated(serde_json::json!({
                        "sub": permitted,
                        "act": { "sub": unlisted },
                    }))?),
                    as_permitted,
                ),
                (
                    "delegation chain too deep",
                    Some(delegated(too_deep.unwrap_or_default())?),
                    if public {
                        Expect::Neither
                    } else {
                        Expect::Unauthenticated
                    },
                ),
            ];
            let mut cases = Vec::from(cases);
            if method.once() && !public {
                // One token twice: admitted, then refused as already used.
                let token = self.issuer.token(&self.audience).scopes(&required).sign()?;
                cases.push(("once: first use", Some(token.clone()), Expect::Neither));
                cases.push(("once: used again", Some(token), Expect::Unauthenticated));
            }
            for (case, token, expect) in cases {
                let code = call(channel.clone(), method.path(), token.as_deref()).await;
                calls.push(Call {
                    path: method.path().to_owned(),
                    rule,
                    case,
                    expected: expect.words(),
                    code,
                    passed: expect.matches(code),
                });
            }
        }
        Ok(ConformanceReport { calls })
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

//! Token validation per algorithm: the crypto backend's bare signature check on a pre-parsed
//! key (the physical limit), jsonwebtoken's decode with the same claim checks (the baseline a
//! user would write), and our validator uncached and cached.

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use aws_lc_rs::signature::{self, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::Algorithm;
use oauth_grpc_benches::{HMAC_SECRET, KEYS, jsonwebtoken_validation};

/// Polls a future that is expected to be ready at once (a cache hit).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a cache hit does not wait"),
    }
}

#[allow(clippy::large_enum_variant)] // two values built once per benchmark
enum Limit {
    Public(ParsedPublicKey),
    Hmac(aws_lc_rs::hmac::Key),
}

/// One algorithm's token, keys and validators, built once.
struct Subject {
    name: &'static str,
    token: String,
    signature: Vec<u8>,
    limit: Limit,
    decoding: jsonwebtoken::DecodingKey,
    rules: jsonwebtoken::Validation,
    uncached: oauth_grpc::Validator,
    cached: oauth_grpc::Validator,
    now: SystemTime,
}

#[derive(Clone, Copy)]
enum Variant {
    Limit,
    Baseline,
    Uncached,
    Cached,
}

const VARIANTS: [(Variant, &str); 4] = [
    (
        Variant::Limit,
        "limit: bare signature check, pre-parsed key",
    ),
    (Variant::Baseline, "baseline: jsonwebtoken::decode"),
    (Variant::Uncached, "ours: uncached"),
    (Variant::Cached, "ours: cached"),
];

fn subjects() -> Vec<Subject> {
    // Building a validator installs the crypto backend for the raw jsonwebtoken rows too.
    let _ = KEYS[0].validator(false);
    KEYS.iter()
        .map(|key| {
            let token = key.token("orders:read orders:write");
            let (_, signature_b64) = token.rsplit_once('.').expect("three segments");
            let signature = URL_SAFE_NO_PAD.decode(signature_b64).expect("base64url");
            let limit = match key.alg {
                Algorithm::RS256 => Limit::Public(
                    ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, key.spki_der())
                        .expect("RSA key"),
                ),
                Algorithm::PS256 => Limit::Public(
                    ParsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, key.spki_der())
                        .expect("RSA key"),
                ),
                Algorithm::ES256 => Limit::Public(
                    ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, key.spki_der())
                        .expect("EC key"),
                ),
                Algorithm::EdDSA => Limit::Public(
                    ParsedPublicKey::new(&signature::ED25519, key.spki_der()).expect("Ed25519 key"),
                ),
                _ => Limit::Hmac(aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA256,
                    HMAC_SECRET,
                )),
            };
            let cached = key.validator(true);
            ready(cached.validate(&token)).expect("valid");
            Subject {
                name: key.name,
                signature,
                limit,
                decoding: key.decoding_key(),
                rules: jsonwebtoken_validation(key.alg),
                uncached: key.validator(false),
                cached,
                now: SystemTime::now(),
                token,
            }
        })
        .collect()
}

impl Subject {
    /// One check of the token by `variant`.
    fn check(&self, variant: Variant) {
        let token = black_box(self.token.as_str());
        match variant {
            Variant::Limit => {
                let (message, _) = token.rsplit_once('.').expect("three segments");
                match &self.limit {
                    Limit::Public(public) => public
                        .verify_sig(message.as_bytes(), black_box(&self.signature))
                        .expect("valid"),
                    Limit::Hmac(hmac) => aws_lc_rs::hmac::verify(
                        hmac,
                        message.as_bytes(),
                        black_box(&self.signature),
                    )
                    .expect("valid"),
                }
            }
            Variant::Baseline => {
                black_box(
                    jsonwebtoken::decode::<serde_json::Value>(token, &self.decoding, &self.rules)
                        .expect("valid"),
                );
            }
            Variant::Uncached => {
                black_box(self.uncached.validate_at(token, self.now).expect("valid"));
            }
            Variant::Cached => {
                black_box(ready(self.cached.validate(token)).expect("valid"));
            }
        }
    }
}

/// `VALIDATION_INSTRUCTIONS=<alg>:<variant index 0-3>:<checks>`: build every subject, then
/// make that many checks of one and exit — for `benches/instructions.sh`, which counts the
/// instructions under callgrind for two check counts and takes the difference.
fn instructions_mode(spec: &str) {
    let mut parts = spec.split(':');
    let (Some(alg), Some(variant), Some(checks)) = (parts.next(), parts.next(), parts.next())
    else {
        panic!("VALIDATION_INSTRUCTIONS=<alg>:<variant 0-3>:<checks>");
    };
    let variant = VARIANTS[variant.parse::<usize>().expect("a variant index")].0;
    let checks: usize = checks.parse().expect("a number of checks");
    let subjects = subjects();
    let subject = subjects
        .iter()
        .find(|s| s.name == alg)
        .expect("RS256, PS256, ES256, EdDSA or HS256");
    for _ in 0..checks {
        subject.check(variant);
    }
}

fn validation(c: &mut Criterion) {
    if let Ok(spec) = std::env::var("VALIDATION_INSTRUCTIONS") {
        instructions_mode(&spec);
        std::process::exit(0);
    }
    for subject in subjects() {
        let mut group = c.benchmark_group(subject.name);
        for (variant, label) in VARIANTS {
            group.bench_function(label, |b| b.iter(|| subject.check(variant)));
        }
        group.finish();
    }
}

criterion_group!(benches, validation);
criterion_main!(benches);

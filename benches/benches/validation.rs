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

fn validation(c: &mut Criterion) {
    // Building a validator installs the crypto backend for the raw jsonwebtoken rows too.
    let _ = KEYS[0].validator(false);
    for key in KEYS {
        let token = key.token("orders:read orders:write");
        let (message, signature_b64) = token.rsplit_once('.').expect("three segments");
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
        let decoding = key.decoding_key();
        let rules = jsonwebtoken_validation(key.alg);
        let uncached = key.validator(false);
        let cached = key.validator(true);
        ready(cached.validate(&token)).expect("valid");
        let now = SystemTime::now();

        let mut group = c.benchmark_group(key.name);
        group.bench_function(
            "limit: bare signature check, pre-parsed key",
            |b| match &limit {
                Limit::Public(public) => b.iter(|| {
                    public
                        .verify_sig(black_box(message.as_bytes()), black_box(&signature))
                        .expect("valid")
                }),
                Limit::Hmac(hmac) => b.iter(|| {
                    aws_lc_rs::hmac::verify(
                        hmac,
                        black_box(message.as_bytes()),
                        black_box(&signature),
                    )
                    .expect("valid")
                }),
            },
        );
        group.bench_function("baseline: jsonwebtoken::decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &decoding, &rules)
                    .expect("valid")
            })
        });
        group.bench_function("ours: uncached", |b| {
            b.iter(|| uncached.validate_at(black_box(&token), now).expect("valid"))
        });
        group.bench_function("ours: cached", |b| {
            b.iter(|| ready(cached.validate(black_box(&token))).expect("valid"))
        });
        group.finish();
    }
}

criterion_group!(benches, validation);
criterion_main!(benches);

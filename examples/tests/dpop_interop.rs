//! DPoP (RFC 9449) with peers nobody here wrote, over real loopback HTTP and gRPC:
//!
//! - `tests/interop/python/dpop.py` makes proofs with pyjwt + cryptography (EC P-256 ES256,
//!   RSA-2048 PS256 and RS256, Ed25519 EdDSA) and RFC 7638 thumbprints, independently of
//!   oauth-grpc, and fetches client-credentials tokens with a proof;
//! - the certified OpenID provider `oidc-provider` (npm) checks those proofs at its token
//!   endpoint and binds its RFC 9068 JWT access tokens to the proof's key (`cnf.jkt`), refuses
//!   the `dpop_bound_access_tokens` client without a proof, and with `--dpop-nonce` asks for
//!   its nonces;
//! - the Python `grpcio` client (`client.py --dpop`) calls `orders-server --dpop` with those
//!   tokens and a fresh proof per call, and with defective proofs, seeing the codes and the
//!   `www-authenticate` values of RFC 9449 §7.1.
//!
//! The peers are installed by the test itself (see `interop.rs`).

// A failed expectation is this test's report.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod peers;

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use peers::{node, python_dpop, token};

const RESOURCE: &str = "urn:orders-api";
const CLIENT: &str = "orders-dpop";
const SECRET: &str = "orders-dpop-secret";

/// The run's proof keys (`dpop.py keygen`), in a temporary directory removed on drop.
struct Keys {
    dir: PathBuf,
}

impl Keys {
    /// One key of each kind: `ES256` (EC P-256), `RSA` (RSA-2048), `EdDSA` (Ed25519).
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("oauth-grpc-dpop-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let keys = Self { dir };
        for kind in ["ES256", "RSA", "EdDSA"] {
            let out = python_dpop(&["keygen", &keys.path(kind), kind]);
            assert!(out.status.success(), "keygen {kind}: {out:?}");
        }
        keys
    }

    fn path(&self, kind: &str) -> String {
        self.dir
            .join(format!("{kind}.pem"))
            .to_string_lossy()
            .into_owned()
    }

    /// Python's RFC 7638 thumbprint of a key.
    fn jkt(&self, kind: &str) -> String {
        let out = python_dpop(&["jkt", &self.path(kind)]);
        assert!(out.status.success(), "jkt {kind}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `dpop.py token ISSUER CLIENT SECRET KEYFILE --resource urn:orders-api --scope SCOPE EXTRA…`:
/// `Ok(stdout)` (the token, or the JSON response with `--response`) or `Err("ERROR …")`.
fn dpop_token(
    issuer: &str,
    client: &str,
    secret: &str,
    key: &str,
    scope: &str,
    extra: &[&str],
) -> Result<String, String> {
    let mut args = vec![
        "token",
        issuer,
        client,
        secret,
        key,
        "--resource",
        RESOURCE,
        "--scope",
        scope,
    ];
    args.extend(extra);
    let out = python_dpop(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    match out.status.code() {
        Some(0) => Ok(stdout),
        Some(1) => Err(stdout),
        _ => panic!("dpop.py token: {out:?}"),
    }
}

/// The decoded JSON of a JWT segment (0 header, 1 payload), read without checking anything.
fn segment(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).expect("a JWT");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("a JSON object")
}

/// RFC 7638 §3 recomputed here: SHA-256 over the required members in order, no whitespace.
fn thumbprint(jwk: &Value) -> String {
    let members: &[&str] = match jwk["kty"].as_str() {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("RSA") => &["e", "kty", "n"],
        Some("OKP") => &["crv", "kty", "x"],
        other => panic!("kty {other:?}"),
    };
    let fields: Vec<String> = members
        .iter()
        .map(|name| {
            let value = jwk[name].as_str().expect("a string member");
            assert!(
                value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{name} needs no JSON escaping"
            );
            format!(r#""{name}":"{value}""#)
        })
        .collect();
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{{{}}}", fields.join(","))))
}

/// (a) oidc-provider binds its JWT access tokens to the key of Python's proof: `cnf.jkt` is
/// the thumbprint Python computed, the one jose computed, and the one recomputed here from the
/// proof's `jwk` header; `token_type` is `DPoP`. For each proof algorithm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_binds_python_dpop_tokens_to_the_proof_key() {
    let (_provider, issuer) = node("oidc-provider.mjs", &[]);
    let keys = Keys::new("bind");
    for (kind, alg) in [
        ("ES256", "ES256"),
        ("EdDSA", "EdDSA"),
        ("RSA", "PS256"),
        ("RSA", "RS256"),
    ] {
        let jkt = keys.jkt(kind);
        // A proof's own header, as client.py sends it: a public jwk with the thumbprint.
        let out = python_dpop(&[
            "proof",
            &keys.path(kind),
            "POST",
            "http://127.0.0.1:1/x",
            "--alg",
            alg,
        ]);
        assert!(out.status.success(), "proof {alg}: {out:?}");
        let header = segment(String::from_utf8_lossy(&out.stdout).trim(), 0);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], alg);
        assert!(
            header["jwk"].get("d").is_none(),
            "a public jwk: {}",
            header["jwk"]
        );
        assert_eq!(thumbprint(&header["jwk"]), jkt, "{alg}: Python's jkt");

        let response = dpop_token(
            &issuer,
            CLIENT,
            SECRET,
            &keys.path(kind),
            "orders:read orders:write",
            &["--alg", alg, "--response"],
        )
        .unwrap_or_else(|e| panic!("{alg}: {e}"));
        let response: Value = serde_json::from_str(&response).expect("JSON token response");
        assert_eq!(response["token_type"], "DPoP", "{alg}");
        assert_eq!(response["scope"], "orders:read orders:write", "{alg}");
        let access = response["access_token"].as_str().expect("access_token");
        assert_eq!(segment(access, 0)["typ"], "at+jwt");
        let claims = segment(access, 1);
        assert_eq!(claims["cnf"]["jkt"], jkt.as_str(), "{alg}: cnf.jkt");
        assert_eq!(claims["aud"], RESOURCE);
        assert_eq!(claims["client_id"], CLIENT);
    }

    // A client without `dpop_bound_access_tokens` gets a bound token with a proof, a Bearer
    // token without.
    let response = dpop_token(
        &issuer,
        "orders-client",
        "orders-client-secret",
        &keys.path("ES256"),
        "orders:read",
        &["--response"],
    )
    .unwrap();
    let response: Value = serde_json::from_str(&response).unwrap();
    assert_eq!(response["token_type"], "DPoP");
    assert_eq!(
        segment(response["access_token"].as_str().unwrap(), 1)["cnf"]["jkt"],
        keys.jkt("ES256").as_str()
    );
    let plain = token(
        &issuer,
        "orders-client",
        "orders-client-secret",
        &["orders:read"],
        Some(RESOURCE),
    )
    .await;
    assert!(segment(&plain, 1).get("cnf").is_none(), "an unbound token");
}

/// (a) oidc-provider's refusals at its token endpoint: `orders-dpop` without a proof, and the
/// defects `client.py` uses against our server, each refused by a third party too.
#[test]
fn oidc_provider_refuses_defective_python_proofs() {
    let (_provider, issuer) = node("oidc-provider.mjs", &[]);
    let keys = Keys::new("refuse");
    let key = keys.path("ES256");
    let refused =
        |extra: &[&str]| dpop_token(&issuer, CLIENT, SECRET, &key, "orders:read", extra).err();
    // RFC 9449 §5.2: the client is registered with `dpop_bound_access_tokens`. oidc-provider
    // keeps the detail ("DPoP proof JWT not provided") out of its response.
    assert_eq!(
        refused(&["--no-proof"]).as_deref(),
        Some("ERROR 400 invalid_grant grant request is invalid")
    );
    let other = format!("{issuer}/other");
    for (extra, expected) in [
        (
            vec!["--htu", other.as_str()],
            "ERROR 400 invalid_dpop_proof DPoP proof htu mismatch",
        ),
        (
            vec!["--htm", "GET"],
            "ERROR 400 invalid_dpop_proof DPoP proof htm mismatch",
        ),
        (
            vec!["--iat-offset", "-600"],
            "ERROR 400 invalid_dpop_proof DPoP proof iat is not recent enough",
        ),
        (
            vec!["--wrong-signer"],
            "ERROR 400 invalid_dpop_proof invalid DPoP key binding",
        ),
        (
            vec!["--private-jwk"],
            "ERROR 400 invalid_dpop_proof invalid DPoP key binding",
        ),
        (
            vec!["--typ", "JWT"],
            "ERROR 400 invalid_dpop_proof invalid DPoP key binding",
        ),
    ] {
        assert_eq!(refused(&extra).as_deref(), Some(expected), "{extra:?}");
    }
    // The same jti twice (RFC 9449 §11.1): the second is a replay.
    let jti = "interop-replayed-jti";
    assert!(refused(&["--jti", jti]).is_none(), "the first use");
    assert_eq!(
        refused(&["--jti", jti]).as_deref(),
        Some("ERROR 400 invalid_grant grant request is invalid")
    );
}

/// (a) oidc-provider `--dpop-nonce` (RFC 9449 §8): a proof without its nonce gets 400
/// `use_dpop_nonce` and a `DPoP-Nonce`; `dpop.py` retries once with it and gets a bound token.
#[test]
fn oidc_provider_nonces() {
    let (_provider, issuer) = node("oidc-provider.mjs", &["--dpop-nonce"]);
    let keys = Keys::new("nonce");
    let key = keys.path("ES256");
    assert_eq!(
        dpop_token(
            &issuer,
            CLIENT,
            SECRET,
            &key,
            "orders:read",
            &["--no-nonce-retry"]
        )
        .err()
        .as_deref(),
        Some("ERROR 400 use_dpop_nonce nonce is required in the DPoP proof")
    );
    assert_eq!(
        dpop_token(
            &issuer,
            CLIENT,
            SECRET,
            &key,
            "orders:read",
            &["--nonce", "not-a-nonce-of-this-server", "--no-nonce-retry"]
        )
        .err()
        .as_deref(),
        Some("ERROR 400 use_dpop_nonce invalid nonce in DPoP proof")
    );
    let bound = dpop_token(&issuer, CLIENT, SECRET, &key, "orders:read", &[]).unwrap();
    assert_eq!(segment(&bound, 1)["cnf"]["jkt"], keys.jkt("ES256").as_str());
}

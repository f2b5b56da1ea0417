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
//!   `www-authenticate` values of RFC 9449 §7.1; with `--dpop-nonce` it follows the server's
//!   nonces, with `--dpop-origin` proofs name the public origin; a server without `--dpop`
//!   refuses DPoP-bound tokens.
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

use peers::{Process, node, orders_server, python_dpop, python_with, token};

const RESOURCE: &str = "urn:orders-api";
const CLIENT: &str = "orders-dpop";
const SECRET: &str = "orders-dpop-secret";
/// The algorithms `orders-server --dpop` accepts, as its challenges list them.
const ALGS: &str = r#"algs="ES256 ES384 EdDSA PS256 RS256""#;

/// `error_description`s of `orders-server`'s refusals: `ProofError` and `TokenError` in
/// `oauth-grpc/src/error/token.rs`, `use_dpop_nonce` in `oauth-grpc/src/status.rs`.
mod described {
    pub(crate) const MISSING: &str = "this call needs a DPoP proof";
    pub(crate) const SEVERAL: &str = "several DPoP proofs; send exactly one";
    pub(crate) const TOO_LONG: &str = "the DPoP proof is too long";
    pub(crate) const WRONG_TYPE: &str = "the DPoP proof's type is not dpop+jwt";
    pub(crate) const UNSUPPORTED_ALGORITHM: &str =
        "the DPoP proof's signing algorithm is not accepted";
    pub(crate) const PRIVATE_KEY: &str = "the DPoP proof's jwk holds a private key";
    pub(crate) const ALGORITHM_MISMATCH: &str =
        "the DPoP proof's signing algorithm does not match its key";
    pub(crate) const BAD_SIGNATURE: &str = "the DPoP proof's signature is invalid";
    pub(crate) const WRONG_METHOD: &str = "the DPoP proof's htm is not the method of this call";
    pub(crate) const WRONG_URI: &str = "the DPoP proof's htu is not the URI of this call";
    pub(crate) const STALE: &str = "the DPoP proof is too old or issued in the future";
    pub(crate) const REPLAYED: &str = "the DPoP proof was used before";
    /// Missing or another token's `ath`: one error.
    pub(crate) const ATH: &str = "the DPoP proof's ath does not match the access token";
    pub(crate) const KEY_MISMATCH: &str = "the token is bound to another DPoP key";
    pub(crate) const NOT_DPOP_BOUND: &str = "the DPoP scheme needs a DPoP-bound token";
    /// A binding the server cannot check: `cnf.jkt` at a server without DPoP.
    pub(crate) const CANNOT_CHECK: &str =
        "the token is bound by a confirmation method this server cannot check";
    pub(crate) const BOUND_AS_BEARER: &str =
        "the token is bound to a DPoP key; send it with the DPoP scheme and a proof";
    pub(crate) const PROOF_WITH_BEARER: &str =
        "a DPoP proof came with a Bearer token; send the token with the DPoP scheme";
    pub(crate) const USE_NONCE: &str = "the server requires its nonce in the DPoP proof";
}

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

/// `CODE 16` with the `DPoP error="invalid_dpop_proof"` challenge.
fn bad_proof(description: &str) -> String {
    format!(r#"CODE 16 DPoP error="invalid_dpop_proof", error_description="{description}", {ALGS}"#)
}

/// `CODE 16` with a `DPoP error="invalid_token"` challenge.
fn bad_token(description: &str) -> String {
    format!(r#"CODE 16 DPoP error="invalid_token", error_description="{description}", {ALGS}"#)
}

/// `orders-server --issuer ISSUER --audience urn:orders-api --dpop EXTRA…`.
fn dpop_server(issuer: &str, extra: &[&str]) -> (Process, String) {
    let mut args = vec!["--issuer", issuer, "--audience", RESOURCE, "--dpop"];
    args.extend(extra);
    let (process, addr) = orders_server(&args);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    (process, addr)
}

/// `client.py --dpop KEY OPTIONS… ADDR RPC TOKEN`: one line per call.
fn dpop_call(key: &str, options: &[&str], addr: &str, rpc: &str, token: &str) -> Vec<String> {
    let mut all = vec!["--dpop", key];
    all.extend(options);
    python_with(&all, addr, rpc, Some(token))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A token from oidc-provider bound to `key` by a proof signed with `alg`.
fn bound_token(issuer: &str, key: &str, alg: &str, scope: &str) -> String {
    dpop_token(issuer, CLIENT, SECRET, key, scope, &["--alg", alg])
        .unwrap_or_else(|e| panic!("a DPoP token ({alg}): {e}"))
}

/// (b) The Python client with its key's proofs and oidc-provider's bound token: accepted;
/// each defect refused with 16 and RFC 9449 §7.1's challenge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_dpop_proofs_at_orders_server() {
    let (_provider, issuer) = node("oidc-provider.mjs", &[]);
    let (_server, addr) = dpop_server(&issuer, &[]);
    let keys = Keys::new("server");
    let key = keys.path("ES256");
    let both = bound_token(&issuer, &key, "ES256", "orders:read orders:write");
    let reader = bound_token(&issuer, &key, "ES256", "orders:read");
    let call =
        |options: &[&str], rpc: &str, token: &str| dpop_call(&key, options, &addr, rpc, token);

    assert_eq!(call(&[], "WhoAmI", &both), ["OK"]);
    assert_eq!(call(&[], "CreateOrder", &both), ["OK"]);
    // A fresh proof per call, the token from the server's cache after the first.
    assert_eq!(call(&["--calls", "3"], "WhoAmI", &both), ["OK", "OK", "OK"]);
    // RFC 9449 §4.3: htu compared without query and fragment, after RFC 3986 syntax-based
    // normalisation (case, percent-encoded unreserved characters, dot segments).
    for htu in [
        format!("HTTP://127.0.0.1:{}/orders.v1.Orders/WhoAmI", port(&addr)),
        format!("http://{addr}/orders.v1.Orders/WhoAmI?q=1#f"),
        format!("http://{addr}/orders.v1.Orders/%57hoAmI"),
        format!("http://{addr}/orders.v1.Orders/../orders.v1.Orders/WhoAmI"),
    ] {
        assert_eq!(call(&["--htu", &htu], "WhoAmI", &both), ["OK"], "{htu}");
    }
    // The auth-scheme is case-insensitive (RFC 9110 §11.1).
    assert_eq!(call(&["--scheme", "dpop"], "WhoAmI", &both), ["OK"]);
    // The scope check is unchanged, its challenge in the DPoP scheme.
    assert_eq!(
        call(&[], "CreateOrder", &reader),
        [format!(
            r#"CODE 7 DPoP error="insufficient_scope", scope="orders:write", {ALGS}"#
        )]
    );

    let other_path = format!("http://{addr}/orders.v1.Orders/CreateOrder");
    let other_host = format!(
        "http://orders.example.com:{}/orders.v1.Orders/WhoAmI",
        port(&addr)
    );
    let https = format!("https://{addr}/orders.v1.Orders/WhoAmI");
    let localhost = format!("http://localhost:{}/orders.v1.Orders/WhoAmI", port(&addr));
    let trailing = format!("http://{addr}/orders.v1.Orders/WhoAmI/");
    // A proof over 8 KiB (its jti ~6.5 KB, base64url-encoded) but within HTTP/2's header limit.
    let long_jti = "j".repeat(6500);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["--no-proof"], bad_proof(described::MISSING)),
        (vec!["--two-proofs"], bad_proof(described::SEVERAL)),
        (vec!["--jti", &long_jti], bad_proof(described::TOO_LONG)),
        (vec!["--htu", &localhost], bad_proof(described::WRONG_URI)),
        (vec!["--htu", &trailing], bad_proof(described::WRONG_URI)),
        (vec!["--htu", &other_path], bad_proof(described::WRONG_URI)),
        (vec!["--htu", &other_host], bad_proof(described::WRONG_URI)),
        (vec!["--htu", &https], bad_proof(described::WRONG_URI)),
        (vec!["--htm", "GET"], bad_proof(described::WRONG_METHOD)),
        (vec!["--iat-offset", "-600"], bad_proof(described::STALE)),
        (vec!["--iat-offset", "600"], bad_proof(described::STALE)),
        (vec!["--no-ath"], bad_proof(described::ATH)),
        (vec!["--ath-of", &reader], bad_proof(described::ATH)),
        (vec!["--typ", "JWT"], bad_proof(described::WRONG_TYPE)),
        (vec!["--wrong-signer"], bad_proof(described::BAD_SIGNATURE)),
        (vec!["--private-jwk"], bad_proof(described::PRIVATE_KEY)),
        // The header's alg: not allowed, or not one a P-256 key signs (the signature ES256's).
        (
            vec!["--header-alg", "none"],
            bad_proof(described::UNSUPPORTED_ALGORITHM),
        ),
        (
            vec!["--header-alg", "HS256"],
            bad_proof(described::UNSUPPORTED_ALGORITHM),
        ),
        (
            vec!["--header-alg", "ES512"],
            bad_proof(described::UNSUPPORTED_ALGORITHM),
        ),
        (
            vec!["--header-alg", "ES384"],
            bad_proof(described::ALGORITHM_MISMATCH),
        ),
        // A valid proof, by a key the token is not bound to.
        (vec!["--other-key"], bad_token(described::KEY_MISMATCH)),
    ];
    for (options, expected) in cases {
        assert_eq!(call(&options, "WhoAmI", &both), [expected], "{options:?}");
    }
    // RFC 9449 §11.1: one proof, two calls.
    assert_eq!(
        call(&["--replay", "2"], "WhoAmI", &both),
        ["OK".to_owned(), bad_proof(described::REPLAYED)]
    );

    // §7.2, both schemes on one server: the error in the challenge of the scheme used, the
    // DPoP challenge beside it.
    assert_eq!(
        python_with(&[], &addr, "WhoAmI", None),
        format!("CODE 16 Bearer, DPoP {ALGS}")
    );
    // A DPoP-bound token sent as a bearer token is refused.
    assert_eq!(
        python_with(&[], &addr, "WhoAmI", Some(&both)),
        format!(
            r#"CODE 16 Bearer error="invalid_token", error_description="{}", DPoP {ALGS}"#,
            described::BOUND_AS_BEARER
        )
    );
    // A valid proof beside the Bearer scheme.
    assert_eq!(
        call(&["--scheme", "Bearer"], "WhoAmI", &both),
        [format!(
            r#"CODE 16 Bearer error="invalid_request", error_description="{}", DPoP {ALGS}"#,
            described::PROOF_WITH_BEARER
        )]
    );
    // The DPoP scheme with an unbound token, and a valid proof.
    let plain = token(
        &issuer,
        "orders-client",
        "orders-client-secret",
        &["orders:read"],
        Some(RESOURCE),
    )
    .await;
    assert_eq!(
        call(&[], "WhoAmI", &plain),
        [bad_token(described::NOT_DPOP_BOUND)]
    );
    // Public methods need nothing.
    assert_eq!(call(&[], "GetHTTPStatus", &both), ["OK"]);
}

/// (c) RSA-2048 (PS256 and RS256) and Ed25519 (EdDSA) proof keys: oidc-provider (here
/// configured to allow RSA proofs) binds the token, our server takes the proofs; the binding
/// is to the key, so a token bound by a PS256 proof takes RS256 proofs of the same key.
#[test]
fn python_rsa_and_ed25519_proof_keys() {
    let (_provider, issuer) = node("oidc-provider.mjs", &[]);
    let (_server, addr) = dpop_server(&issuer, &[]);
    let keys = Keys::new("kinds");
    for (kind, alg) in [("EdDSA", "EdDSA"), ("RSA", "PS256"), ("RSA", "RS256")] {
        let key = keys.path(kind);
        let bound = bound_token(&issuer, &key, alg, "orders:read orders:write");
        let call = |options: &[&str]| {
            let mut all = vec!["--alg", alg];
            all.extend(options);
            dpop_call(&key, &all, &addr, "CreateOrder", &bound)
        };
        assert_eq!(call(&["--calls", "2"]), ["OK", "OK"], "{alg}");
        assert_eq!(
            call(&["--wrong-signer"]),
            [bad_proof(described::BAD_SIGNATURE)],
            "{alg}"
        );
        assert_eq!(
            call(&["--private-jwk"]),
            [bad_proof(described::PRIVATE_KEY)],
            "{alg}"
        );
        assert_eq!(
            call(&["--other-key"]),
            [bad_token(described::KEY_MISMATCH)],
            "{alg}"
        );
        assert_eq!(
            call(&["--replay", "2"]),
            ["OK".to_owned(), bad_proof(described::REPLAYED)],
            "{alg}"
        );
    }
    let rsa = keys.path("RSA");
    let by_pss = bound_token(&issuer, &rsa, "PS256", "orders:read");
    assert_eq!(
        dpop_call(&rsa, &["--alg", "RS256"], &addr, "WhoAmI", &by_pss),
        ["OK"]
    );
}

/// (b) `orders-server --dpop --dpop-nonce`: a proof without the server's nonce gets 16
/// `use_dpop_nonce` and a `dpop-nonce`; the Python client puts it in its next proof.
#[test]
fn python_follows_orders_server_nonces() {
    let (_provider, issuer) = node("oidc-provider.mjs", &[]);
    let (_server, addr) = dpop_server(&issuer, &["--dpop-nonce"]);
    let keys = Keys::new("server-nonce");
    let key = keys.path("ES256");
    let bound = bound_token(&issuer, &key, "ES256", "orders:read");
    let use_nonce = format!(
        r#"CODE 16 DPoP error="use_dpop_nonce", error_description="{}", {ALGS} dpop-nonce="#,
        described::USE_NONCE
    );

    let lines = dpop_call(&key, &["--calls", "3"], &addr, "WhoAmI", &bound);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let nonce = lines[0]
        .strip_prefix(&use_nonce)
        .unwrap_or_else(|| panic!("{:?}", lines[0]));
    assert!(!nonce.is_empty() && !nonce.contains(' '), "{nonce:?}");
    // RFC 9449 §8.1: nonce = 1*NQCHAR.
    assert!(
        nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    );
    assert!(lines[1].starts_with("OK"), "{lines:?}");
    assert!(lines[2].starts_with("OK"), "{lines:?}");

    let lines = dpop_call(
        &key,
        &["--nonce", "not-a-nonce-of-this-server"],
        &addr,
        "WhoAmI",
        &bound,
    );
    assert!(lines[0].starts_with(&use_nonce), "{lines:?}");
}

/// oidc-provider's opaque DPoP-bound token (no resource), introspected by `orders-server`:
/// `token_type` `DPoP` and `cnf.jkt` in the introspection response (RFC 9449 §6.2).
#[test]
fn introspected_opaque_dpop_token() {
    let (_provider, issuer) = node("oidc-provider.mjs", &[]);
    let secret = peers::secret_file("orders-api-dpop", "orders-api-secret");
    let (_server, addr) = orders_server(&[
        "--issuer",
        &issuer,
        "--audience",
        "urn:orders-api-opaque",
        "--introspect-url",
        &format!("{issuer}/token/introspection"),
        "--client-id",
        "orders-api",
        "--client-secret-file",
        &secret.to_string_lossy(),
        "--dpop",
    ]);
    let keys = Keys::new("opaque");
    let key = keys.path("ES256");
    let out = python_dpop(&[
        "token",
        &issuer,
        CLIENT,
        SECRET,
        &key,
        "--scope",
        "orders:read",
    ]);
    assert!(out.status.success(), "{out:?}");
    let opaque = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(opaque.split('.').count(), 1, "an opaque token");
    assert_eq!(dpop_call(&key, &[], &addr, "WhoAmI", &opaque), ["OK"]);
    assert_eq!(
        dpop_call(&key, &["--other-key"], &addr, "WhoAmI", &opaque),
        [bad_token(described::KEY_MISMATCH)]
    );
}

fn port(addr: &str) -> &str {
    addr.rsplit(':').next().expect("host:port")
}

/// A server without `--dpop` still refuses a DPoP-bound token (fail closed): its `cnf.jkt` is a
/// binding it cannot check, and the `DPoP` scheme is a scheme it does not know (no token).
#[test]
fn a_server_without_dpop_refuses_bound_tokens() {
    let (_provider, issuer) = node("oidc-provider.mjs", &[]);
    let (_server, addr) = orders_server(&["--issuer", &issuer, "--audience", RESOURCE]);
    let keys = Keys::new("no-dpop");
    let key = keys.path("ES256");
    let bound = bound_token(&issuer, &key, "ES256", "orders:read");
    assert_eq!(
        python_with(&[], &addr, "WhoAmI", Some(&bound)),
        format!(
            r#"CODE 16 Bearer error="invalid_token", error_description="{}""#,
            described::CANNOT_CHECK
        )
    );
    assert_eq!(
        dpop_call(&key, &[], &addr, "WhoAmI", &bound),
        ["CODE 16 Bearer"]
    );
}

/// `--dpop-origin` (a server behind a proxy): proofs must name the configured origin, not the
/// address the client's channel happens to reach.
#[test]
fn a_configured_origin_is_the_htu() {
    let (_provider, issuer) = node("oidc-provider.mjs", &[]);
    let (_server, addr) = dpop_server(&issuer, &["--dpop-origin", "https://orders.example.com"]);
    let keys = Keys::new("origin");
    let key = keys.path("ES256");
    let bound = bound_token(&issuer, &key, "ES256", "orders:read");
    let public = "https://orders.example.com/orders.v1.Orders/WhoAmI";
    let default_port = "https://orders.example.com:443/orders.v1.Orders/WhoAmI";
    for htu in [public, default_port] {
        assert_eq!(
            dpop_call(&key, &["--htu", htu], &addr, "WhoAmI", &bound),
            ["OK"],
            "{htu}"
        );
    }
    assert_eq!(
        dpop_call(&key, &[], &addr, "WhoAmI", &bound),
        [bad_proof(described::WRONG_URI)],
        "the channel's own http://{addr}"
    );
}

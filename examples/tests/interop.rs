//! Interop with peers nobody here wrote, over real loopback HTTP and gRPC:
//!
//! - the certified OpenID provider `oidc-provider` (npm), issuing RFC 9068 `at+jwt` tokens
//!   for a resource indicator and opaque tokens checked by introspection: `orders-server`
//!   configured by discovery under the strict profile, `orders-client` and our client library
//!   fetching client-credentials tokens from it;
//! - the lenient `oauth2-mock-server` (npm), whose tokens carry `typ: JWT` and no `sub`:
//!   accepted with `--allow-plain-jwt`, refused under the strict profile;
//! - a Python `grpcio` client with stubs from the same `.proto`, seeing the same codes and
//!   `www-authenticate` values.
//!
//! The peers are installed by the test itself, at the versions pinned in
//! `tests/interop/package-lock.json` and `tests/interop/python/requirements.txt`.

// A failed expectation is this test's report.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod peers;

use peers::{node, orders_client, orders_server, python, secret_file, token};

const INSUFFICIENT_WRITE: &str = r#"Bearer error="insufficient_scope", scope="orders:write""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_jwt_and_opaque_tokens() {
    let (_provider, issuer) = node("oidc-provider.mjs", &[]);
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
    let introspection_secret = secret_file("orders-api", "orders-api-secret");
    let (_server, addr) = orders_server(&[
        "--issuer",
        &issuer,
        "--audience",
        "urn:orders-api,urn:orders-api-opaque",
        "--introspect-url",
        &format!("{issuer}/token/introspection"),
        "--client-id",
        "orders-api",
        "--client-secret-file",
        &introspection_secret.to_string_lossy(),
    ]);
    let client_secret = secret_file("orders-client", "orders-client-secret");
    let post_secret = secret_file("orders-client-post", "orders-client-post-secret");
    let client_secret = client_secret.to_string_lossy().into_owned();
    let post_secret = post_secret.to_string_lossy().into_owned();
    let credentials = |secret: &str, scope: &str, jwt: bool| -> Vec<String> {
        let mut args: Vec<String> = [
            "--issuer",
            &issuer,
            "--client-id",
            "orders-client",
            "--client-secret-file",
            secret,
            "--scope",
            scope,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if jwt {
            args.extend(["--resource".to_owned(), "urn:orders-api".to_owned()]);
        }
        args
    };
    let call = |args: Vec<String>, rpc: &[&str]| {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(rpc);
        orders_client(&addr, &all)
    };

    // JWT access tokens (RFC 9068, strict profile), our CLI client.
    let out = call(
        credentials(&client_secret, "orders:read", true),
        &["who-am-i"],
    );
    assert!(out.contains("subject: \"orders-client\""), "{out}");
    let out = call(
        credentials(&client_secret, "orders:read", true),
        &["create-order"],
    );
    assert!(out.contains("code=7 "), "{out}");
    assert!(out.contains(INSUFFICIENT_WRITE), "{out}");
    let out = call(
        credentials(&client_secret, "orders:write", true),
        &["create-order", "--item", "gear"],
    );
    assert!(out.contains("item: \"gear\""), "{out}");

    // client_secret_post.
    let mut post = credentials(&post_secret, "orders:read", true);
    post[3] = "orders-client-post".to_owned();
    post.push("--secret-post".to_owned());
    let out = call(post, &["who-am-i"]);
    assert!(out.contains("subject: \"orders-client-post\""), "{out}");

    // Opaque tokens: the server introspects them.
    let out = call(
        credentials(&client_secret, "orders:read", false),
        &["who-am-i"],
    );
    assert!(
        out.starts_with("WhoAmIResponse"),
        "an introspected opaque token: {out}"
    );
    let out = call(
        credentials(&client_secret, "orders:read", false),
        &["create-order"],
    );
    assert!(out.contains("code=7 "), "{out}");
    let out = orders_client(&addr, &["--token", "not-a-real-opaque-token", "who-am-i"]);
    assert!(out.contains("code=16 "), "{out}");
    assert!(out.contains("the token is not active"), "{out}");

    // A foreign client: Python grpcio with stubs from the same .proto.
    let reader = token(
        &issuer,
        "orders-client",
        "orders-client-secret",
        &["orders:read"],
        Some("urn:orders-api"),
    )
    .await;
    let writer = token(
        &issuer,
        "orders-client",
        "orders-client-secret",
        &["orders:write"],
        Some("urn:orders-api"),
    )
    .await;
    assert_eq!(python(&addr, "WhoAmI", Some(&reader)), "OK");
    assert_eq!(python(&addr, "CreateOrder", Some(&writer)), "OK");
    assert_eq!(
        python(&addr, "CreateOrder", Some(&reader)),
        format!("CODE 7 {INSUFFICIENT_WRITE}")
    );
    assert_eq!(python(&addr, "WhoAmI", None), "CODE 16 Bearer");
    assert_eq!(python(&addr, "GetHTTPStatus", None), "OK");
    // One character of the signature changed (in the middle, so it stays valid base64url).
    let at = reader.rfind('.').expect("three segments") + 10;
    let swap = if &reader[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swap}{}", &reader[..at], &reader[at + 1..]);
    assert_eq!(
        python(&addr, "WhoAmI", Some(&tampered)),
        r#"CODE 16 Bearer error="invalid_token", error_description="the token's signature is invalid""#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lenient_provider_needs_the_documented_switch() {
    let (_mock, issuer) = node("mock-server.mjs", &[]);
    assert!(issuer.starts_with("http://localhost:"), "{issuer}");
    let token = token(
        &issuer,
        "any-client",
        "any-secret",
        &["orders:read", "orders:write"],
        None,
    )
    .await;

    // The key-source timings, as an operator would tune them (see also `server_flags.rs`).
    let (_lenient, lenient) = orders_server(&[
        "--issuer",
        &issuer,
        "--audience",
        "orders-api",
        "--allow-plain-jwt",
        "--jwks-refresh-min",
        "30s",
        "--jwks-refresh-max",
        "10m",
        "--unknown-kid-cooldown",
        "5s",
        "--max-staleness",
        "1h",
        "--leeway",
        "30s",
    ]);
    assert_eq!(python(&lenient, "WhoAmI", Some(&token)), "OK");
    assert_eq!(python(&lenient, "CreateOrder", Some(&token)), "OK");
    let out = orders_client(&lenient, &["--token", &token, "who-am-i"]);
    assert!(
        out.contains("subject: \"\""),
        "no `sub` in these tokens: {out}"
    );

    let (_strict, strict) = orders_server(&["--issuer", &issuer, "--audience", "orders-api"]);
    let refused = r#"CODE 16 Bearer error="invalid_token", error_description="the token is not an access token""#;
    assert_eq!(python(&strict, "WhoAmI", Some(&token)), refused);
    let out = orders_client(&strict, &["--token", &token, "who-am-i"]);
    assert!(out.contains("code=16 "), "{out}");
    assert!(out.contains("the token is not an access token"), "{out}");
}

//! Several providers in one `orders-server`: two instances of the certified OpenID provider
//! `oidc-provider` (npm) on two ports, each with its own signing key, trusted together by
//! repeated `--issuer` (each by discovery) and by a `--config` TOML file with a profile per
//! issuer. Each provider's tokens are accepted and name their issuer (in the response and in
//! the audit log); a server trusting only one refuses the other's; the file's per-issuer
//! audiences and introspection hold for their issuer only.

// A failed expectation is this test's report.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod peers;

use std::time::{Duration, Instant};

use peers::{node, orders_client, orders_server, python, secret_file, token};

/// `WhoAmI` with `token`, by our CLI client: its output.
fn who_am_i(addr: &str, token: &str) -> String {
    orders_client(addr, &["--token", token, "who-am-i"])
}

/// The `issuer` of every allowed record of the audit log at `path`, once it holds `lines`.
fn audited_issuers(path: &std::path::Path, lines: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON record"))
            .collect();
        if records.len() >= lines || Instant::now() > deadline {
            return records
                .iter()
                .filter(|r| r["decision"] == "allow")
                .map(|r| r["issuer"].as_str().unwrap_or_default().to_owned())
                .collect();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_providers_by_repeated_issuer_flags() {
    let (_a, issuer_a) = node("oidc-provider.mjs", &[]);
    let (_b, issuer_b) = node("oidc-provider.mjs", &[]);
    assert_ne!(issuer_a, issuer_b);
    let audit = std::env::temp_dir().join(format!(
        "oauth-grpc-multi-issuer-{}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&audit);
    let (_server, addr) = orders_server(&[
        "--issuer",
        &issuer_a,
        "--issuer",
        &issuer_b,
        "--audience",
        "urn:orders-api",
        "--audit-log",
        &audit.to_string_lossy(),
    ]);
    let of = |issuer: &str| {
        let issuer = issuer.to_owned();
        async move {
            token(
                &issuer,
                "orders-client",
                "orders-client-secret",
                &["orders:read"],
                Some("urn:orders-api"),
            )
            .await
        }
    };
    let (token_a, token_b) = (of(&issuer_a).await, of(&issuer_b).await);

    let out = who_am_i(&addr, &token_a);
    assert!(out.contains(&format!("issuer: \"{issuer_a}\"")), "{out}");
    let out = who_am_i(&addr, &token_b);
    assert!(out.contains(&format!("issuer: \"{issuer_b}\"")), "{out}");
    assert_eq!(python(&addr, "WhoAmI", Some(&token_a)), "OK");
    assert_eq!(python(&addr, "WhoAmI", Some(&token_b)), "OK");
    assert_eq!(
        audited_issuers(&audit, 4),
        [&issuer_a, &issuer_b, &issuer_a, &issuer_b].map(|i| i.to_owned()),
        "the audit log names the issuer of each call"
    );

    // A server trusting only A: B's token names an issuer it does not trust.
    let (_only_a, only_a) = orders_server(&["--issuer", &issuer_a, "--audience", "urn:orders-api"]);
    assert_eq!(python(&only_a, "WhoAmI", Some(&token_a)), "OK");
    assert_eq!(
        python(&only_a, "WhoAmI", Some(&token_b)),
        r#"CODE 16 Bearer error="invalid_token", error_description="the token's issuer is not trusted""#
    );
    let _ = std::fs::remove_file(&audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_per_provider_from_a_config_file() {
    let (_a, issuer_a) = node("oidc-provider.mjs", &[]);
    let (_b, issuer_b) = node("oidc-provider.mjs", &[]);
    let secret = secret_file("orders-api-b", "orders-api-secret");
    // A: JWTs for `urn:orders-api` only. B: its own audience, and its opaque tokens by
    // introspection at B.
    let config = format!(
        r#"
leeway = "30s"

[[issuer]]
iss = "{issuer_a}"
audiences = ["urn:orders-api"]
algorithms = ["RS256"]

[[issuer]]
iss = "{issuer_b}"
audiences = ["urn:orders-api-opaque"]
[issuer.introspection]
url = "{issuer_b}/token/introspection"
client_id = "orders-api"
client_secret_file = "{}"
"#,
        secret.display()
    );
    let file = secret_file("orders-server.toml", &config);
    let (_server, addr) = orders_server(&["--config", &file.to_string_lossy()]);

    let jwt = |issuer: &str, resource: &'static str| {
        let issuer = issuer.to_owned();
        async move {
            token(
                &issuer,
                "orders-client",
                "orders-client-secret",
                &["orders:read"],
                Some(resource),
            )
            .await
        }
    };
    // A's JWT for A's audience: accepted.
    let a_token = jwt(&issuer_a, "urn:orders-api").await;
    let out = who_am_i(&addr, &a_token);
    assert!(out.contains(&format!("issuer: \"{issuer_a}\"")), "{out}");
    // B's JWT for that audience: refused, B's tokens must name B's own.
    let b_wrong = jwt(&issuer_b, "urn:orders-api").await;
    let out = who_am_i(&addr, &b_wrong);
    assert!(out.contains("code=16 "), "{out}");
    assert!(
        out.contains("the token is not meant for this service"),
        "{out}"
    );
    // An opaque token of A goes to the one introspection endpoint, B's, which does not
    // know it.
    let a_opaque = jwt(&issuer_a, "urn:orders-api-opaque").await;
    let out = who_am_i(&addr, &a_opaque);
    assert!(out.contains("code=16 "), "{out}");
    assert!(out.contains("the token is not active"), "{out}");
    // B's opaque token (no resource): introspected at B, accepted as B's.
    let b_opaque = token(
        &issuer_b,
        "orders-client",
        "orders-client-secret",
        &["orders:read"],
        None,
    )
    .await;
    let out = who_am_i(&addr, &b_opaque);
    assert!(out.contains(&format!("issuer: \"{issuer_b}\"")), "{out}");
    assert_eq!(python(&addr, "WhoAmI", Some(&b_opaque)), "OK");
}

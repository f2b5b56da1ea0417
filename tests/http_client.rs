//! The HTTP guarantees hold with the caller's own `reqwest` configuration: no redirect is
//! followed (a form with a token or a client secret is never re-posted elsewhere), and a
//! provider that stops answering gets `UNAVAILABLE` within the overall timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use oauth_grpc::{
    ClientSecret, ConfigError, HttpClient, Introspection, KeySource, TokenError, Validator,
};
use oauth_grpc_tests::idp::{CLIENT_ID, CLIENT_SECRET, IdentityProvider, Mode};
use oauth_grpc_tests::issuer::{AUDIENCE, TestKey, claims, header as jose_header, sign_json};
use serde_json::json;
use tokio::net::TcpListener;

/// A caller's builder that would follow ten redirects of any scheme.
fn following_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(10))
}

/// Serves `app` on an ephemeral loopback port; returns its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// Where the redirects point: it counts every request that reaches it.
async fn target(hits: Arc<AtomicUsize>) -> String {
    let count = move || {
        let hits = hits.clone();
        move || async move {
            hits.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"keys": [], "active": true}))
        }
    };
    serve(
        axum::Router::new()
            .route("/jwks", get(count()))
            .route("/introspect", post(count())),
    )
    .await
}

/// Answers every path with `status` and `Location: {to}{path}`.
async fn redirector(status: StatusCode, to: String) -> String {
    let redirect = move |path: &'static str| {
        let location = format!("{to}{path}");
        move || async move {
            let mut response: Response = status.into_response();
            if let Ok(value) = location.parse() {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
    };
    serve(
        axum::Router::new()
            .route("/jwks", get(redirect("/jwks")))
            .route("/introspect", post(redirect("/introspect"))),
    )
    .await
}

#[tokio::test]
async fn a_redirected_jwks_is_refused_and_not_followed() {
    let hits = Arc::new(AtomicUsize::new(0));
    let to = target(hits.clone()).await;
    let from = redirector(StatusCode::FOUND, to).await;
    let http = HttpClient::from_builder(following_builder()).expect("client builds");
    let err = Validator::builder()
        .issuer("https://idp.example.com/")
        .audience(AUDIENCE)
        .keys(KeySource::jwks_url(format!("{from}/jwks")).http_client(http))
        .start()
        .await
        .expect_err("a 302 is not a JWKS");
    assert!(matches!(err, ConfigError::Startup(_)), "{err}");
    assert!(err.to_string().contains("302"), "{err}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );
}

/// RFC 7662's POST carries the token and the client's secret: a 307 must not re-post them.
#[tokio::test]
async fn a_redirected_introspection_post_is_not_re_posted() {
    let hits = Arc::new(AtomicUsize::new(0));
    let to = target(hits.clone()).await;
    let from = redirector(StatusCode::TEMPORARY_REDIRECT, to).await;
    let http = HttpClient::from_builder(following_builder()).expect("client builds");
    let validator = Validator::builder()
        .issuer("https://idp.example.com/")
        .audience(AUDIENCE)
        .introspection(
            Introspection::new(
                format!("{from}/introspect"),
                CLIENT_ID,
                ClientSecret::new(CLIENT_SECRET),
            )
            .http_client(http),
        )
        .build()
        .expect("valid configuration");
    assert_eq!(
        validator.validate("an-opaque-token").await.unwrap_err(),
        TokenError::Unavailable
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was re-posted");
}

/// A stalled JWKS endpoint with the caller's client (which sets no timeout of its own):
/// the key refetch ends with `UNAVAILABLE` after the overall timeout instead of hanging.
#[tokio::test]
async fn a_stalled_jwks_gives_unavailable_with_a_custom_client() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let http = HttpClient::from_builder(reqwest::Client::builder())
        .expect("client builds")
        .timeouts(Duration::from_secs(1), Duration::from_millis(300))
        .expect("timeouts");
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .keys(KeySource::discover(idp.issuer()).http_client(http))
        .start()
        .await
        .expect("keys load");
    idp.set_mode(Mode::Stalled);
    let mut c = claims("orders:read");
    c["iss"] = json!(idp.issuer());
    let token = sign_json(&jose_header(TestKey::Rsa2), &c, TestKey::Rsa2);
    // The stall lasts a minute; this bound only catches a hang.
    let result = tokio::time::timeout(Duration::from_secs(20), validator.validate(&token))
        .await
        .expect("the fetch is bounded by the client's timeout, not the provider's stall");
    assert_eq!(result.unwrap_err(), TokenError::Unavailable);
}

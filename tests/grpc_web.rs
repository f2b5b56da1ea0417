//! gRPC-web (`tonic-web`, HTTP/1.1) in front of the `OAuthLayer`: a browser-style client gets
//! the same codes and `www-authenticate` values as a gRPC client, and a server stream over
//! gRPC-web ends at its token's expiry with the status in the trailer frame.
//!
//! The layer order: `GrpcWebLayer` outside (it turns gRPC-web into gRPC before the
//! `OAuthLayer` reads the call, and the answer back), `OAuthLayer` inside. A CORS layer, when
//! there is one, goes outside both and must expose `grpc-status`, `grpc-message` and
//! `www-authenticate`, or the browser hides the real error.

use std::time::Duration;

use examples::Store;
use examples::pb::{GetOrderRequest, WatchOrdersRequest};
use oauth_grpc::{KeySet, OAuthLayer, PolicySet, Validator};
use oauth_grpc_tests::TestServer;
use oauth_grpc_tests::issuer::{self, AUDIENCE, ISSUER, TestKey, claims, header, sign_json};
use prost::Message;
use serde_json::json;

/// The orders service behind `GrpcWebLayer` and then `layer`, accepting HTTP/1.1.
async fn grpc_web_server(layer: OAuthLayer, store: Store) -> TestServer {
    let router = tonic::transport::Server::builder()
        .accept_http1(true)
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(layer)
        .add_service(examples::pb::orders_server::OrdersServer::new(
            examples::OrderBook::new(store),
        ));
    TestServer::serve(|incoming, shutdown| router.serve_with_incoming_shutdown(incoming, shutdown))
        .await
        .expect("bind")
}

/// A gRPC-web frame: flag, big-endian length, payload.
fn frame(message: &impl Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&payload);
    out
}

/// The answer of a gRPC-web call: its headers, and its frames (flag, payload).
struct Answer {
    headers: reqwest::header::HeaderMap,
    frames: Vec<(u8, Vec<u8>)>,
}

impl Answer {
    /// The grpc trailers: from the trailer frame (flag 0x80), else the headers
    /// (trailers-only).
    fn trailer(&self, name: &str) -> Option<String> {
        for (flag, payload) in &self.frames {
            if flag & 0x80 != 0 {
                let text = String::from_utf8_lossy(payload);
                for line in text.split("\r\n") {
                    if let Some((key, value)) = line.split_once(':')
                        && key.trim().eq_ignore_ascii_case(name)
                    {
                        return Some(value.trim().to_owned());
                    }
                }
            }
        }
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    fn messages(&self) -> usize {
        self.frames
            .iter()
            .filter(|(flag, _)| flag & 0x80 == 0)
            .count()
    }
}

async fn call(server: &TestServer, path: &str, body: Vec<u8>, token: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", server.url()))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("an HTTP/1.1 answer");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("the body");
    let mut frames = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 5 {
        let flag = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let end = (5 + len).min(rest.len());
        frames.push((flag, rest[5..end].to_vec()));
        rest = &rest[end..];
    }
    Answer { headers, frames }
}

fn validator() -> Validator {
    Validator::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(KeySet::from_jwks(&issuer::jwks()).expect("test JWKS"))
        .leeway(Duration::ZERO)
        .build()
        .expect("validator")
}

#[tokio::test]
async fn refusals_over_grpc_web_carry_the_same_codes_and_challenges() {
    let layer = OAuthLayer::new(
        validator(),
        PolicySet::new().service::<examples::OrderBook>(),
    );
    let server = grpc_web_server(layer, Store::default()).await;
    let get = frame(&GetOrderRequest { id: "1".into() });

    let none = call(&server, "/orders.v1.Orders/GetOrder", get.clone(), None).await;
    assert_eq!(none.trailer("grpc-status").as_deref(), Some("16"));
    assert_eq!(none.trailer("www-authenticate").as_deref(), Some("Bearer"));

    let forged = issuer::token(TestKey::Rsa1, "orders:read").replace('.', ".x");
    let bad = call(
        &server,
        "/orders.v1.Orders/GetOrder",
        get.clone(),
        Some(&forged),
    )
    .await;
    assert_eq!(bad.trailer("grpc-status").as_deref(), Some("16"));
    assert!(
        bad.trailer("www-authenticate")
            .is_some_and(|c| c.starts_with(r#"Bearer error="invalid_token""#)),
        "{:?}",
        bad.trailer("www-authenticate")
    );

    let weak = issuer::token(TestKey::Rsa1, "profile");
    let denied = call(&server, "/orders.v1.Orders/GetOrder", get, Some(&weak)).await;
    assert_eq!(denied.trailer("grpc-status").as_deref(), Some("7"));
    assert!(
        denied
            .trailer("www-authenticate")
            .is_some_and(|c| c.contains(r#"error="insufficient_scope""#)),
        "{:?}",
        denied.trailer("www-authenticate")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stream_over_grpc_web_ends_at_expiry() {
    let store = Store::default();
    store.place("first", 1, "alice");
    let layer = OAuthLayer::new(
        validator(),
        PolicySet::new().service::<examples::OrderBook>(),
    );
    let server = grpc_web_server(layer, store.clone()).await;
    let placing = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                store.place("more", 1, "alice");
            }
        })
    };
    let mut c = claims("orders:read");
    c["exp"] = json!(issuer::now() + 2);
    let token = sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1);
    let watch = frame(&WatchOrdersRequest {
        limit: 0,
        follow: true,
    });
    // The body ends only when the stream does: at expiry.
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        call(
            &server,
            "/orders.v1.Orders/WatchOrders",
            watch,
            Some(&token),
        ),
    )
    .await
    .expect("the stream ends at expiry");
    assert!(
        answer.messages() >= 5,
        "{} orders before expiry",
        answer.messages()
    );
    assert_eq!(answer.trailer("grpc-status").as_deref(), Some("16"));
    assert_eq!(
        answer.trailer("www-authenticate").as_deref(),
        Some(r#"Bearer error="invalid_token", error_description="the token has expired""#)
    );
    placing.abort();
    server.stop().await;
}

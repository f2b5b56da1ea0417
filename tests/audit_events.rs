//! One structured `tracing` event per decision, target `oauth_grpc::audit`, with the
//! documented fields and never the token.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use examples::Store;
use examples::pb::orders_admin_client::OrdersAdminClient;
use examples::pb::orders_client::OrdersClient;
use examples::pb::{CancelOrderRequest, PurgeCancelledRequest, WhoAmIRequest};
use oauth_grpc::{OAuthLayer, PolicySet, UnknownPaths};
use oauth_grpc_tests::issuer::{self, TestKey, claims, header, sign_json};
use oauth_grpc_tests::{orders_layer, orders_server};
use serde_json::json;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

type Fields = BTreeMap<String, String>;

/// Collects the fields of every `oauth_grpc::audit` event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(tracing::Level, Fields)>>>);

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let target = event.metadata().target();
        if !matches!(target, "oauth_grpc::audit" | "oauth_grpc::layer") {
            return;
        }
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        fields.insert("target".to_owned(), target.to_owned());
        self.0
            .lock()
            .expect("capture lock")
            .push((*event.metadata().level(), fields));
    }
}

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ASCII");
    request.metadata_mut().insert("authorization", value);
    request
}

// One thread, so the subscriber set for this test sees the server's events too.
#[tokio::test(flavor = "current_thread")]
async fn allow_and_deny_are_audited_without_the_token() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = orders_server(orders_layer(), Store::default())
        .await
        .expect("bind");
    let mut client = OrdersClient::new(server.channel().await.expect("connect"));

    let mut c = claims("orders:read orders:write");
    c["jti"] = json!("token-id-1");
    c["act"] = json!({"sub": "agent-7", "act": {"sub": "gateway"}});
    let token = sign_json(&header(TestKey::Rsa1), &c, TestKey::Rsa1);
    client
        .who_am_i(authorized(WhoAmIRequest {}, &token))
        .await
        .expect("allowed");
    client
        .cancel_order(authorized(CancelOrderRequest { id: "1".into() }, &token))
        .await
        .expect_err("lacks orders:cancel");
    let bad = issuer::token(TestKey::Rsa1, "orders:read").replace('.', ".x");
    client
        .who_am_i(authorized(WhoAmIRequest {}, &bad))
        .await
        .expect_err("malformed");
    server.stop().await;

    let events = capture.0.lock().expect("capture lock").clone();
    assert_eq!(events.len(), 3, "{events:#?}");

    let (level, allow) = &events[0];
    assert_eq!(*level, tracing::Level::INFO);
    let expect = |fields: &Fields, name: &str, value: &str| {
        assert_eq!(
            fields.get(name).map(String::as_str),
            Some(value),
            "field {name} in {fields:#?}"
        );
    };
    expect(allow, "decision", "allow");
    expect(allow, "reason", "authorized");
    expect(allow, "rpc", "/orders.v1.Orders/WhoAmI");
    expect(allow, "rule", "authenticated");
    expect(allow, "required", "");
    expect(allow, "granted", "orders:read orders:write");
    expect(allow, "subject", "alice");
    expect(allow, "client_id", "orders-web");
    expect(allow, "issuer", issuer::ISSUER);
    expect(allow, "jti", "token-id-1");
    expect(allow, "actor", "agent-7 > gateway");
    assert!(
        allow
            .get("peer")
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{allow:#?}"
    );

    let (level, deny) = &events[1];
    assert_eq!(*level, tracing::Level::WARN);
    expect(deny, "decision", "deny");
    expect(deny, "reason", "insufficient_scope");
    expect(deny, "rpc", "/orders.v1.Orders/CancelOrder");
    expect(deny, "rule", "all of: orders:write, orders:cancel");
    expect(deny, "required", "orders:write orders:cancel");
    expect(deny, "granted", "orders:read orders:write");
    expect(deny, "subject", "alice");

    let (_, malformed) = &events[2];
    expect(malformed, "decision", "deny");
    // Its payload no longer decodes to a JSON object: malformed, found before the signature
    // is checked (the payload's `iss` picks the keys).
    expect(malformed, "reason", "malformed");
    expect(malformed, "subject", "");

    let signature = token.rsplit('.').next().unwrap_or_default();
    for (_, fields) in &events {
        for value in fields.values() {
            assert!(!value.contains(&token), "the token leaked into {fields:#?}");
            assert!(
                !value.contains(signature),
                "the signature leaked into {fields:#?}"
            );
            assert!(
                !value.contains("Bearer"),
                "credentials leaked into {fields:#?}"
            );
        }
    }
}

/// Calls to a path without a rule are the caller's choice: one `debug` audit event each,
/// one `warn` summary for the lot (at most one a minute), and every call counted.
#[tokio::test(flavor = "current_thread")]
async fn calls_to_unknown_paths_are_counted_not_flooded() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    for unknown in [UnknownPaths::Deny, UnknownPaths::PassThrough] {
        capture.0.lock().expect("capture lock").clear();
        let layer = OAuthLayer::new(
            oauth_grpc_tests::validator(),
            PolicySet::new().service::<examples::OrderBook>(),
        )
        .unknown_paths(unknown);
        let server = orders_server(layer.clone(), Store::default())
            .await
            .expect("bind");
        let mut admin = OrdersAdminClient::new(server.channel().await.expect("connect"));
        for _ in 0..200 {
            admin
                .purge_cancelled(PurgeCancelledRequest {})
                .await
                .expect_err("no rule here: refused by the layer or by the method's own check");
        }
        server.stop().await;

        assert_eq!(layer.unknown_path_calls(), 200, "{unknown:?}");
        let events = capture.0.lock().expect("capture lock").clone();
        let audit: Vec<_> = events
            .iter()
            .filter(|(_, f)| f.get("target").map(String::as_str) == Some("oauth_grpc::audit"))
            .collect();
        assert_eq!(audit.len(), 200, "{unknown:?}: one audit event per call");
        assert!(
            audit
                .iter()
                .all(|(level, _)| *level == tracing::Level::DEBUG),
            "{unknown:?}: audit events of unknown paths are debug"
        );
        let warnings: Vec<_> = events
            .iter()
            .filter(|(level, f)| {
                *level == tracing::Level::WARN
                    && f.get("target").map(String::as_str) == Some("oauth_grpc::layer")
            })
            .collect();
        assert_eq!(warnings.len(), 1, "{unknown:?}: {warnings:#?}");
        assert_eq!(
            warnings[0].1.get("latest").map(String::as_str),
            Some("/orders.v1.OrdersAdmin/PurgeCancelled")
        );
    }
}

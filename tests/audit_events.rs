//! One structured `tracing` event per decision, target `oauth_grpc::audit`, with the
//! documented fields and never the token.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use examples::Store;
use examples::pb::orders_client::OrdersClient;
use examples::pb::{CancelOrderRequest, WhoAmIRequest};
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
        if event.metadata().target() != "oauth_grpc::audit" {
            return;
        }
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
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
    expect(malformed, "reason", "bad_signature");
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

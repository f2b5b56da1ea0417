//! Delegation rules (RFC 8693 `act`): `delegation = allow | forbid | actors(…)` on a real
//! server on 127.0.0.1 with tokens signed by the test issuer, the validator's checks of the
//! `act` chain (shape, depth), the method guard without a layer, and a model of the decision
//! over random chains.

use std::sync::LazyLock;
use std::time::SystemTime;

use examples::pb::orders_admin_client::OrdersAdminClient;
use examples::pb::orders_admin_server::OrdersAdmin;
use examples::pb::orders_client::OrdersClient;
use examples::pb::orders_server::Orders;
use examples::pb::{
    CancelOrderRequest, CreateOrderRequest, ExportOrdersRequest, GetOrderRequest,
    PurgeCancelledRequest, WatchOrdersRequest, WhoAmIRequest,
};
use examples::{AdminDesk, OrderBook, Store};
use oauth_grpc::{
    Actor, ClientCertificate, ClientSecret, ConfigError, Confirmation, Delegation, Denial,
    Introspection, KeySet, OAuthLayer, PolicySet, Principal, ProtectedService, TokenError,
    Validator,
};
use oauth_grpc_tests::idp::{CLIENT_ID, CLIENT_SECRET, IdentityProvider};
use oauth_grpc_tests::issuer::{self, TestKey, claims, header, sign_json};
use oauth_grpc_tests::{challenge, orders_layer, orders_server, validator};
use proptest::prelude::*;
use serde_json::{Value, json};
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Status};

const FORBIDDEN: &str =
    r#"Bearer error="insufficient_scope", error_description="delegated calls are not allowed""#;
const NOT_LISTED: &str =
    r#"Bearer error="insufficient_scope", error_description="this actor is not allowed""#;
const MALFORMED: &str = r#"Bearer error="invalid_token", error_description="the token's act claim is malformed: each actor needs a sub""#;
const TOO_DEEP: &str =
    r#"Bearer error="invalid_token", error_description="the token's delegation chain is too deep""#;

/// The delegation chains every rule form is called with, current (outermost) actor first.
const CHAINS: [(&str, &[&str]); 5] = [
    ("direct", &[]),
    ("assistant", &["assistant"]),
    ("unlisted actor", &["billing"]),
    (
        "assistant acting for an unlisted actor",
        &["assistant", "billing"],
    ),
    (
        "unlisted actor acting for the assistant",
        &["billing", "assistant"],
    ),
];

/// The `act` claim of `chain`, outermost actor first; `None` for a direct call.
fn act(chain: &[&str]) -> Option<Value> {
    chain.iter().rev().fold(None, |prior, sub| {
        let mut actor = json!({ "sub": sub });
        if let Some(prior) = prior {
            actor["act"] = prior;
        }
        Some(actor)
    })
}

/// A valid token for `alice` with `scope` and, if given, exactly this `act` claim.
fn token_with_act(scope: &str, act: Option<Value>) -> String {
    let mut payload = claims(scope);
    if let Some(act) = act {
        payload["act"] = act;
    }
    sign_json(&header(TestKey::Ec256), &payload, TestKey::Ec256)
}

/// A valid token for `alice` with `scope`, delegated along `chain` (direct if empty).
fn delegated(scope: &str, chain: &[&str]) -> String {
    token_with_act(scope, act(chain))
}

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ASCII token");
    request.metadata_mut().insert("authorization", value);
    request
}

/// A call's outcome as the tests compare it: passed, or the code and the `www-authenticate`
/// value of its refusal.
type Outcome = Result<(), (Code, String)>;

fn outcome<T>(result: &Result<T, Status>) -> Outcome {
    match result {
        Ok(_) => Ok(()),
        Err(status) => Err((status.code(), challenge(status))),
    }
}

fn refused(code: Code, challenge: &str) -> Outcome {
    Err((code, challenge.to_owned()))
}

fn order() -> CreateOrderRequest {
    CreateOrderRequest {
        item: "widget".into(),
        quantity: 2,
    }
}

/// The actor chain of `chain`, outermost first.
fn actor_chain(chain: &[&str]) -> Option<Actor> {
    chain.iter().rev().fold(None, |prior, sub| {
        let actor = Actor::new(Some((*sub).to_owned()), None);
        Some(match prior {
            Some(prior) => actor.acting_for(prior),
            None => actor,
        })
    })
}

fn principal(scopes: &[&str], chain: &[&str]) -> Principal {
    let mut builder = Principal::builder().subject("alice").scopes(scopes);
    if let Some(actor) = actor_chain(chain) {
        builder = builder.actor(actor);
    }
    builder.build()
}

fn with_principal<T>(message: T, principal: Principal) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(principal);
    request
}

fn subjects(principal: &Principal) -> Vec<&str> {
    principal
        .delegation_chain()
        .map(|actor| actor.subject().unwrap_or("<no sub>"))
        .collect()
}

/// The test validator with a delegation depth limit.
fn validator_with_depth(depth: u8) -> Result<Validator, ConfigError> {
    Validator::builder()
        .issuer(issuer::ISSUER)
        .audience(issuer::AUDIENCE)
        .keys(KeySet::from_jwks(&issuer::jwks()).expect("test JWKS loads"))
        .max_delegation_depth(depth)
        .build()
}

/// `n` distinct actors, `assistant` current.
fn chain_of(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i == 0 {
                "assistant".to_owned()
            } else {
                format!("prior-{i}")
            }
        })
        .collect()
}

fn strs_owned(chain: &[&str]) -> Vec<String> {
    chain.iter().map(|s| (*s).to_owned()).collect()
}

fn strs(chain: &[String]) -> Vec<&str> {
    chain.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------------------
// The compiled tables.
// ---------------------------------------------------------------------------------------

#[test]
fn the_tables_carry_the_delegation_rules() {
    let book = [
        ("CreateOrder", Delegation::Actors(&["assistant"])),
        ("ImportOrders", Delegation::Actors(&["assistant"])),
        ("CancelOrder", Delegation::Forbidden),
        ("RefundOrder", Delegation::Forbidden),
        ("GetOrder", Delegation::Allowed),
        ("WatchOrders", Delegation::Allowed),
        ("TrackOrders", Delegation::Allowed),
        ("WhoAmI", Delegation::Allowed),
        ("GetHTTPStatus", Delegation::Allowed),
    ];
    assert_eq!(OrderBook::POLICY.methods().len(), book.len());
    for (rpc, delegation) in book {
        let method = OrderBook::POLICY.method(rpc).expect(rpc);
        assert_eq!(method.delegation(), delegation, "{rpc}");
    }
    // `#[protect(delegation = forbid)]` reaches the method with a rule of its own too.
    let desk = [
        ("PurgeCancelled", Delegation::Forbidden),
        ("ExportOrders", Delegation::Forbidden),
    ];
    assert_eq!(AdminDesk::POLICY.methods().len(), desk.len());
    for (rpc, delegation) in desk {
        let method = AdminDesk::POLICY.method(rpc).expect(rpc);
        assert_eq!(method.delegation(), delegation, "{rpc}");
    }
}

// ---------------------------------------------------------------------------------------
// The rule forms on a real server.
// ---------------------------------------------------------------------------------------

/// `allow` (the default): GetOrder (any-of), WhoAmI (authenticated) and the streaming reads
/// admit every well-formed chain, whoever the actors are.
#[tokio::test]
async fn allow_rules_admit_direct_and_delegated_calls() {
    let store = Store::default();
    let placed = store.place("widget", 1, "alice");
    let server = orders_server(orders_layer(), store.clone())
        .await
        .expect("bind loopback");
    let mut orders = OrdersClient::new(server.channel().await.expect("connect"));
    for (name, chain) in CHAINS {
        for scope in ["orders:read", "orders:admin"] {
            let token = delegated(scope, chain);
            let fetched = orders
                .get_order(authorized(
                    GetOrderRequest {
                        id: placed.id.clone(),
                    },
                    &token,
                ))
                .await
                .unwrap_or_else(|s| panic!("GetOrder, {name}, {scope}: {s:?}"))
                .into_inner();
            assert_eq!(fetched, placed, "GetOrder, {name}");
        }

        let token = delegated("", chain);
        let who = orders
            .who_am_i(authorized(WhoAmIRequest {}, &token))
            .await
            .unwrap_or_else(|s| panic!("WhoAmI, {name}: {s:?}"))
            .into_inner();
        assert_eq!(who.subject, "alice", "WhoAmI, {name}");
        assert_eq!(who.actors, chain, "WhoAmI, {name}");

        let token = delegated("orders:read", chain);
        let mut watched = orders
            .watch_orders(authorized(WatchOrdersRequest::default(), &token))
            .await
            .unwrap_or_else(|s| panic!("WatchOrders, {name}: {s:?}"))
            .into_inner();
        let first = watched.message().await.expect("a stream item");
        assert_eq!(first.as_ref(), Some(&placed), "WatchOrders, {name}");

        let asked = tokio_stream::iter(vec![GetOrderRequest {
            id: placed.id.clone(),
        }]);
        let mut tracked = orders
            .track_orders(authorized(asked, &token))
            .await
            .unwrap_or_else(|s| panic!("TrackOrders, {name}: {s:?}"))
            .into_inner();
        let first = tracked.message().await.expect("a stream item");
        assert_eq!(first.as_ref(), Some(&placed), "TrackOrders, {name}");
    }
    server.stop().await;
}

/// `forbid`: CancelOrder by its own rule, ExportOrders by the impl-wide default of
/// `AdminDesk`. Only direct calls pass; no delegated call reaches the handler.
#[tokio::test]
async fn forbid_rules_refuse_every_delegated_call() {
    let store = Store::default();
    let placed = store.place("widget", 1, "alice");
    let server = orders_server(orders_layer(), store.clone())
        .await
        .expect("bind loopback");
    let channel = server.channel().await.expect("connect");
    let mut orders = OrdersClient::new(channel.clone());
    let mut admin = OrdersAdminClient::new(channel);

    // Delegated calls first, so that a cancellation that got through would show below.
    for (name, chain) in CHAINS.iter().filter(|(_, chain)| !chain.is_empty()) {
        let token = delegated("orders:write orders:cancel", chain);
        let result = orders
            .cancel_order(authorized(
                CancelOrderRequest {
                    id: placed.id.clone(),
                },
                &token,
            ))
            .await;
        assert_eq!(
            outcome(&result),
            refused(Code::PermissionDenied, FORBIDDEN),
            "CancelOrder, {name}"
        );
        let status = result.expect_err("refused");
        assert_eq!(status.message(), "delegated calls are not allowed");

        let token = delegated("orders:admin", chain);
        let result = admin
            .export_orders(authorized(ExportOrdersRequest {}, &token))
            .await;
        assert_eq!(
            outcome(&result),
            refused(Code::PermissionDenied, FORBIDDEN),
            "ExportOrders, {name}"
        );
    }
    let direct = delegated("orders:read", &[]);
    let still = orders
        .get_order(authorized(
            GetOrderRequest {
                id: placed.id.clone(),
            },
            &direct,
        ))
        .await
        .expect("a direct read")
        .into_inner();
    assert!(!still.cancelled, "no delegated cancel reached the handler");

    // Direct calls pass.
    let token = delegated("orders:write orders:cancel", &[]);
    let cancelled = orders
        .cancel_order(authorized(
            CancelOrderRequest {
                id: placed.id.clone(),
            },
            &token,
        ))
        .await
        .expect("a direct cancel")
        .into_inner();
    assert!(cancelled.cancelled);
    let token = delegated("orders:admin", &[]);
    let mut exported = admin
        .export_orders(authorized(ExportOrdersRequest {}, &token))
        .await
        .expect("a direct export")
        .into_inner();
    let mut count = 0;
    while let Some(order) = exported.message().await.expect("export stream") {
        assert_eq!(order.id, placed.id);
        count += 1;
    }
    assert_eq!(count, 1);
    server.stop().await;
}

/// `actors("assistant")` on CreateOrder: direct calls and calls whose *current* actor's
/// `sub` is exactly `assistant` pass; prior actors and `client_id` do not count.
#[tokio::test]
async fn actors_rule_matches_the_current_actor_exactly() {
    let store = Store::default();
    let server = orders_server(orders_layer(), store.clone())
        .await
        .expect("bind loopback");
    let mut orders = OrdersClient::new(server.channel().await.expect("connect"));
    let ok = Ok(());
    let not_listed = refused(Code::PermissionDenied, NOT_LISTED);
    let mut cases: Vec<(String, Option<Value>, Outcome)> = Vec::new();
    for (name, chain) in CHAINS {
        let expected = match chain.first() {
            None | Some(&"assistant") => ok.clone(),
            Some(_) => not_listed.clone(),
        };
        cases.push((name.to_owned(), act(chain), expected));
    }
    for near_miss in [
        "Assistant",
        "assistant ",
        "assistan",
        "assistant2",
        " assistant",
    ] {
        cases.push((
            format!("{near_miss:?}"),
            act(&[near_miss]),
            not_listed.clone(),
        ));
    }
    cases.push((
        "assistant four levels out".to_owned(),
        act(&["billing", "x", "y", "assistant"]),
        not_listed.clone(),
    ));
    cases.push((
        "assistant for three others".to_owned(),
        act(&["assistant", "x", "y", "billing"]),
        ok.clone(),
    ));
    cases.push((
        "an unlisted sub whose client_id is assistant".to_owned(),
        Some(json!({"sub": "billing", "client_id": "assistant"})),
        not_listed.clone(),
    ));
    cases.push((
        "assistant with a client_id and other members".to_owned(),
        Some(json!({"sub": "assistant", "client_id": "agent-app", "iss": "https://agents.test/"})),
        ok.clone(),
    ));

    let mut admitted = 0;
    for (name, act, expected) in cases {
        let token = token_with_act("orders:write", act);
        let result = orders.create_order(authorized(order(), &token)).await;
        assert_eq!(outcome(&result), expected, "CreateOrder, {name}");
        match result {
            Ok(created) => {
                assert_eq!(created.into_inner().owner, "alice", "{name}");
                admitted += 1;
            }
            Err(status) => assert_eq!(status.message(), "this actor is not allowed", "{name}"),
        }
    }
    assert_eq!(admitted, 5);
    assert_eq!(store.len(), admitted, "no refused call reached the handler");
    server.stop().await;
}

/// ImportOrders (client streaming) has the same `actors("assistant")` rule.
#[tokio::test]
async fn import_orders_refuses_an_unlisted_actor() {
    let store = Store::default();
    let server = orders_server(orders_layer(), store.clone())
        .await
        .expect("bind loopback");
    let mut orders = OrdersClient::new(server.channel().await.expect("connect"));
    for chain in [&["billing"][..], &["billing", "assistant"], &["Assistant"]] {
        let token = delegated("orders:write", chain);
        let result = orders
            .import_orders(authorized(
                tokio_stream::iter(vec![order(), order()]),
                &token,
            ))
            .await;
        assert_eq!(
            outcome(&result),
            refused(Code::PermissionDenied, NOT_LISTED),
            "ImportOrders, {chain:?}"
        );
    }
    assert!(store.is_empty(), "no refused import reached the handler");
    for chain in [&[][..], &["assistant"], &["assistant", "billing"]] {
        let token = delegated("orders:write", chain);
        let imported = orders
            .import_orders(authorized(
                tokio_stream::iter(vec![order(), order()]),
                &token,
            ))
            .await
            .unwrap_or_else(|s| panic!("ImportOrders, {chain:?}: {s:?}"))
            .into_inner();
        assert_eq!(imported.imported, 2, "{chain:?}");
    }
    assert_eq!(store.len(), 6);
    server.stop().await;
}

/// A delegated token lacking the scopes gets the usual `insufficient_scope` with `scope`,
/// not the delegation refusal: scopes are checked first.
#[tokio::test]
async fn scopes_are_checked_before_delegation() {
    let store = Store::default();
    let server = orders_server(orders_layer(), store.clone())
        .await
        .expect("bind loopback");
    let channel = server.channel().await.expect("connect");
    let mut orders = OrdersClient::new(channel.clone());
    let mut admin = OrdersAdminClient::new(channel);

    let token = delegated("orders:read", &["billing"]);
    let result = orders.create_order(authorized(order(), &token)).await;
    assert_eq!(
        outcome(&result),
        refused(
            Code::PermissionDenied,
            r#"Bearer error="insufficient_scope", scope="orders:write""#
        )
    );
    let token = delegated("orders:write", &["assistant"]);
    let result = orders
        .cancel_order(authorized(CancelOrderRequest { id: "1".into() }, &token))
        .await;
    assert_eq!(
        outcome(&result),
        refused(
            Code::PermissionDenied,
            r#"Bearer error="insufficient_scope", scope="orders:write orders:cancel""#
        )
    );
    let token = delegated("orders:read", &["assistant"]);
    let result = admin
        .export_orders(authorized(ExportOrdersRequest {}, &token))
        .await;
    assert_eq!(
        outcome(&result),
        refused(
            Code::PermissionDenied,
            r#"Bearer error="insufficient_scope", scope="orders:admin""#
        )
    );
    assert!(store.is_empty());
    server.stop().await;
}

/// WhoAmI reports the delegation chain, current actor first; the subject stays the user.
#[tokio::test]
async fn who_am_i_lists_the_chain_outermost_first() {
    let server = orders_server(orders_layer(), Store::default())
        .await
        .expect("bind loopback");
    let mut orders = OrdersClient::new(server.channel().await.expect("connect"));
    let chains: [&[&str]; 5] = [
        &[],
        &["assistant"],
        &["assistant", "planner"],
        &["c", "b", "a"],
        &["current", "middle", "prior", "first"],
    ];
    for chain in chains {
        let token = delegated("orders:read", chain);
        let who = orders
            .who_am_i(authorized(WhoAmIRequest {}, &token))
            .await
            .unwrap_or_else(|s| panic!("{chain:?}: {s:?}"))
            .into_inner();
        assert_eq!(who.subject, "alice", "{chain:?}");
        assert_eq!(who.scopes, ["orders:read"], "{chain:?}");
        assert_eq!(who.actors, chain, "{chain:?}");
    }
    // With client ids and other members at each level.
    let act = json!({
        "sub": "assistant",
        "client_id": "agent-app",
        "act": {"sub": "planner", "client_id": "planner-app", "iss": "https://agents.test/"},
    });
    let token = token_with_act("", Some(act));
    let who = orders
        .who_am_i(authorized(WhoAmIRequest {}, &token))
        .await
        .expect("a well-formed chain")
        .into_inner();
    assert_eq!(who.subject, "alice");
    assert_eq!(who.actors, ["assistant", "planner"]);
    server.stop().await;
}

/// The `act` values no actor can be read from: every level must be an object with a string
/// `sub` and, if any, a string `client_id`.
fn malformed_acts() -> Vec<(&'static str, Value)> {
    vec![
        ("a string", json!("assistant")),
        ("null", Value::Null),
        ("a number", json!(7)),
        ("a boolean", json!(true)),
        ("an array of actors", json!([{"sub": "assistant"}])),
        ("an empty object", json!({})),
        ("only a client_id", json!({"client_id": "x"})),
        ("a numeric sub", json!({"sub": 5})),
        ("an empty sub", json!({"sub": ""})),
        (
            "a nested empty sub",
            json!({"sub": "assistant", "act": {"sub": ""}}),
        ),
        ("a null sub", json!({"sub": null})),
        ("an array sub", json!({"sub": ["assistant"]})),
        ("an object sub", json!({"sub": {"id": "assistant"}})),
        (
            "a numeric client_id",
            json!({"sub": "assistant", "client_id": 7}),
        ),
        (
            "a null client_id",
            json!({"sub": "assistant", "client_id": null}),
        ),
        (
            "a nested actor with only a client_id",
            json!({"sub": "assistant", "act": {"client_id": "b"}}),
        ),
        (
            "a nested string",
            json!({"sub": "assistant", "act": "billing"}),
        ),
        ("a nested null", json!({"sub": "assistant", "act": null})),
        (
            "a nested empty object",
            json!({"sub": "assistant", "act": {}}),
        ),
        (
            "a nested numeric client_id",
            json!({"sub": "assistant", "act": {"sub": "b", "client_id": false}}),
        ),
        (
            "a malformed third level",
            json!({"sub": "assistant", "act": {"sub": "b", "act": {"sub": 3}}}),
        ),
    ]
}

/// A token whose `act` cannot be read is refused as invalid whatever the method's rule
/// (allow, actors, forbid), even where the current actor would be admitted.
#[tokio::test]
async fn malformed_act_claims_are_unauthenticated() {
    let store = Store::default();
    let placed = store.place("widget", 1, "alice");
    let server = orders_server(orders_layer(), store.clone())
        .await
        .expect("bind loopback");
    let channel = server.channel().await.expect("connect");
    let mut orders = OrdersClient::new(channel.clone());
    let mut admin = OrdersAdminClient::new(channel);
    let expected = refused(Code::Unauthenticated, MALFORMED);
    for (name, act) in malformed_acts() {
        let token = token_with_act(
            "orders:read orders:write orders:cancel orders:admin",
            Some(act),
        );
        let result = orders.who_am_i(authorized(WhoAmIRequest {}, &token)).await;
        assert_eq!(outcome(&result), expected, "WhoAmI, {name}");
        assert_eq!(
            result.expect_err("refused").message(),
            "the token's act claim is malformed: each actor needs a sub",
            "{name}"
        );
        let result = orders
            .get_order(authorized(
                GetOrderRequest {
                    id: placed.id.clone(),
                },
                &token,
            ))
            .await;
        assert_eq!(outcome(&result), expected, "GetOrder, {name}");
        let result = orders.create_order(authorized(order(), &token)).await;
        assert_eq!(outcome(&result), expected, "CreateOrder, {name}");
        let result = orders
            .cancel_order(authorized(
                CancelOrderRequest {
                    id: placed.id.clone(),
                },
                &token,
            ))
            .await;
        assert_eq!(outcome(&result), expected, "CancelOrder, {name}");
        let result = admin
            .export_orders(authorized(ExportOrdersRequest {}, &token))
            .await;
        assert_eq!(outcome(&result), expected, "ExportOrders, {name}");
    }
    assert_eq!(store.len(), 1, "no order was created");
    server.stop().await;
}

/// The validator refuses the same `act` values, with [`TokenError::MalformedActor`].
#[test]
fn validator_refuses_malformed_acts() {
    let validator = validator();
    for (name, act) in malformed_acts() {
        let token = token_with_act("orders:read", Some(act));
        assert_eq!(
            validator
                .validate_at(&token, SystemTime::now())
                .map(|p| subjects(&p).join(",")),
            Err(TokenError::MalformedActor),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Depth.
// ---------------------------------------------------------------------------------------

/// The default limit is 4 nested actors: 4 pass (even with `assistant` current on
/// CreateOrder), 5 and more are refused as invalid on every method.
#[tokio::test]
async fn default_depth_admits_four_actors_and_refuses_five() {
    let store = Store::default();
    let server = orders_server(orders_layer(), store.clone())
        .await
        .expect("bind loopback");
    let mut orders = OrdersClient::new(server.channel().await.expect("connect"));
    for depth in 1..=4 {
        let chain = chain_of(depth);
        let token = delegated("orders:write", &strs(&chain));
        let who = orders
            .who_am_i(authorized(WhoAmIRequest {}, &token))
            .await
            .unwrap_or_else(|s| panic!("depth {depth}: {s:?}"))
            .into_inner();
        assert_eq!(who.actors, chain, "depth {depth}");
        orders
            .create_order(authorized(order(), &token))
            .await
            .unwrap_or_else(|s| panic!("CreateOrder, depth {depth}: {s:?}"));
    }
    assert_eq!(store.len(), 4);
    for depth in [5, 6, 16, 40] {
        let chain = chain_of(depth);
        let token = delegated("orders:write", &strs(&chain));
        let result = orders.who_am_i(authorized(WhoAmIRequest {}, &token)).await;
        assert_eq!(
            outcome(&result),
            refused(Code::Unauthenticated, TOO_DEEP),
            "WhoAmI, depth {depth}"
        );
        assert_eq!(
            result.expect_err("refused").message(),
            "the token's delegation chain is too deep"
        );
        let result = orders.create_order(authorized(order(), &token)).await;
        assert_eq!(
            outcome(&result),
            refused(Code::Unauthenticated, TOO_DEEP),
            "CreateOrder, depth {depth}"
        );
    }
    assert_eq!(store.len(), 4, "no too-deep call reached the handler");
    server.stop().await;
}

/// A layer whose validator admits one actor: a direct call and one actor pass, two do not.
#[tokio::test]
async fn configured_depth_is_enforced_by_the_layer() {
    let layer = OAuthLayer::new(
        validator_with_depth(1).expect("depth 1 is valid"),
        PolicySet::new()
            .service::<OrderBook>()
            .service::<AdminDesk>(),
    );
    let store = Store::default();
    let server = orders_server(layer, store.clone())
        .await
        .expect("bind loopback");
    let mut orders = OrdersClient::new(server.channel().await.expect("connect"));
    for chain in [&[][..], &["assistant"]] {
        let token = delegated("orders:write", chain);
        let who = orders
            .who_am_i(authorized(WhoAmIRequest {}, &token))
            .await
            .unwrap_or_else(|s| panic!("{chain:?}: {s:?}"))
            .into_inner();
        assert_eq!(who.actors, chain);
    }
    let token = delegated("orders:write", &["assistant", "billing"]);
    for result in [
        orders
            .who_am_i(authorized(WhoAmIRequest {}, &token))
            .await
            .map(drop),
        orders
            .create_order(authorized(order(), &token))
            .await
            .map(drop),
    ] {
        assert_eq!(outcome(&result), refused(Code::Unauthenticated, TOO_DEEP));
    }
    assert!(store.is_empty());
    server.stop().await;
}

#[test]
fn delegation_depth_is_configurable_from_1_to_16() {
    for depth in [0, 17, 100, u8::MAX] {
        let error = validator_with_depth(depth).err();
        assert!(
            matches!(error, Some(ConfigError::DelegationDepth(n)) if n == depth),
            "{depth}: {error:?}"
        );
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with(&format!("a delegation depth of {depth} cannot be used")),
            "{message}"
        );
    }
    for depth in [1_u8, 2, 4, 16] {
        let validator = validator_with_depth(depth).unwrap_or_else(|e| panic!("{depth}: {e}"));
        let depth = usize::from(depth);
        let at_limit = chain_of(depth);
        let token = delegated("orders:read", &strs(&at_limit));
        let principal = validator
            .validate_at(&token, SystemTime::now())
            .unwrap_or_else(|e| panic!("{depth} actors under a limit of {depth}: {e}"));
        assert_eq!(subjects(&principal), strs(&at_limit));
        let past = chain_of(depth + 1);
        let token = delegated("orders:read", &strs(&past));
        assert_eq!(
            validator.validate_at(&token, SystemTime::now()).err(),
            Some(TokenError::DelegationTooDeep),
            "{} actors under a limit of {depth}",
            depth + 1
        );
    }
    // Unset, the limit is 4.
    let default = validator();
    let token = delegated("orders:read", &strs(&chain_of(4)));
    assert!(default.validate_at(&token, SystemTime::now()).is_ok());
    let token = delegated("orders:read", &strs(&chain_of(5)));
    assert_eq!(
        default.validate_at(&token, SystemTime::now()).err(),
        Some(TokenError::DelegationTooDeep)
    );
}

/// Opaque tokens: the `act` of an RFC 7662 answer is read and checked as a JWT's is (shape,
/// the configured depth), then the method's rule.
#[tokio::test]
async fn introspected_act_is_checked_like_a_jwt() {
    let idp = IdentityProvider::start(&[]).await;
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(issuer::AUDIENCE)
        .introspection(Introspection::new(
            idp.introspection_url(),
            CLIENT_ID,
            ClientSecret::new(CLIENT_SECRET),
        ))
        .max_delegation_depth(2)
        .build()
        .expect("valid configuration");
    let answer = |act: Option<Value>| {
        let mut answer = json!({
            "active": true,
            "scope": "orders:write orders:cancel",
            "client_id": "orders-web",
            "sub": "bob",
            "aud": issuer::AUDIENCE,
            "iss": idp.issuer(),
            "exp": issuer::now() + 300,
        });
        if let Some(act) = act {
            answer["act"] = act;
        }
        answer
    };
    let layer = OAuthLayer::new(
        validator,
        PolicySet::new()
            .service::<OrderBook>()
            .service::<AdminDesk>(),
    );
    let store = Store::default();
    let placed = store.place("widget", 1, "bob");
    let server = orders_server(layer, store.clone())
        .await
        .expect("bind loopback");
    let mut orders = OrdersClient::new(server.channel().await.expect("connect"));
    /// A token, its chain (or raw `act`), and the answers of CreateOrder (actors),
    /// CancelOrder (forbid) and WhoAmI (allow: the actors it reports).
    type Case = (
        &'static str,
        Option<Value>,
        Outcome,
        Outcome,
        Result<&'static [&'static str], (Code, String)>,
    );
    let cases: [Case; 6] = [
        ("opaque-direct", None, Ok(()), Ok(()), Ok(&[])),
        (
            "opaque-assistant",
            act(&["assistant", "planner"]),
            Ok(()),
            refused(Code::PermissionDenied, FORBIDDEN),
            Ok(&["assistant", "planner"]),
        ),
        (
            "opaque-billing",
            act(&["billing", "assistant"]),
            refused(Code::PermissionDenied, NOT_LISTED),
            refused(Code::PermissionDenied, FORBIDDEN),
            Ok(&["billing", "assistant"]),
        ),
        (
            "opaque-malformed",
            Some(json!({"sub": "assistant", "act": {"client_id": "x"}})),
            refused(Code::Unauthenticated, MALFORMED),
            refused(Code::Unauthenticated, MALFORMED),
            Err((Code::Unauthenticated, MALFORMED.to_owned())),
        ),
        (
            "opaque-string",
            Some(json!("assistant")),
            refused(Code::Unauthenticated, MALFORMED),
            refused(Code::Unauthenticated, MALFORMED),
            Err((Code::Unauthenticated, MALFORMED.to_owned())),
        ),
        (
            "opaque-deep",
            act(&["assistant", "planner", "x"]),
            refused(Code::Unauthenticated, TOO_DEEP),
            refused(Code::Unauthenticated, TOO_DEEP),
            Err((Code::Unauthenticated, TOO_DEEP.to_owned())),
        ),
    ];
    for (token, act, ..) in &cases {
        idp.set_introspection(token, answer(act.clone()));
    }
    // Cancels first, the direct one (which passes) last.
    for (token, _, _, cancel, _) in cases.iter().rev() {
        let result = orders
            .cancel_order(authorized(
                CancelOrderRequest {
                    id: placed.id.clone(),
                },
                token,
            ))
            .await;
        assert_eq!(outcome(&result), *cancel, "CancelOrder, {token}");
    }
    for (token, _, create, _, who) in &cases {
        let result = orders.create_order(authorized(order(), token)).await;
        assert_eq!(outcome(&result), *create, "CreateOrder, {token}");
        if let Ok(order) = result {
            assert_eq!(order.into_inner().owner, "bob");
        }
        let answered = orders
            .who_am_i(authorized(WhoAmIRequest {}, token))
            .await
            .map(|r| r.into_inner().actors)
            .map_err(|status| (status.code(), challenge(&status)));
        assert_eq!(answered, who.clone().map(strs_owned), "WhoAmI, {token}");
    }
    assert_eq!(store.len(), 3, "the direct and the assistant's orders");
    assert_eq!(store.len(), 3);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------
// The method guard alone, without a layer.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn method_guard_enforces_delegation_without_a_layer() {
    let store = Store::default();
    let placed = store.place("widget", 1, "alice");
    let book = OrderBook::new(store.clone());
    let desk = AdminDesk::new(store.clone());
    let cancel = || CancelOrderRequest {
        id: placed.id.clone(),
    };
    let write_cancel = ["orders:write", "orders:cancel"];

    // forbid
    for chain in [&["assistant"][..], &["billing"], &["assistant", "billing"]] {
        let result = book
            .cancel_order(with_principal(cancel(), principal(&write_cancel, chain)))
            .await;
        assert_eq!(
            outcome(&result),
            refused(Code::PermissionDenied, FORBIDDEN),
            "CancelOrder, {chain:?}"
        );
    }
    let result = desk
        .export_orders(with_principal(
            ExportOrdersRequest {},
            principal(&["orders:admin"], &["assistant"]),
        ))
        .await;
    assert_eq!(
        outcome(&result),
        refused(Code::PermissionDenied, FORBIDDEN),
        "ExportOrders"
    );
    // PurgeCancelled has a rule of its own (`bound`): the impl-wide `forbid` still applies,
    // to a token bound to the caller.
    let client = oauth_grpc_tests::tls::Pki::new("delegation CA").client("client-a", None);
    let bound = |actor: Option<Actor>| {
        let certificate = ClientCertificate::from_der(&client.der).expect("an rcgen certificate");
        let mut builder = Principal::builder()
            .subject("alice")
            .scopes(["orders:admin"])
            .confirmation(Confirmation::certificate(client.thumbprint()))
            .client_certificate(certificate);
        if let Some(actor) = actor {
            builder = builder.actor(actor);
        }
        builder.build()
    };
    let result = desk
        .purge_cancelled(with_principal(
            PurgeCancelledRequest {},
            bound(actor_chain(&["assistant"])),
        ))
        .await;
    assert_eq!(
        outcome(&result),
        refused(Code::PermissionDenied, FORBIDDEN),
        "PurgeCancelled"
    );
    let still = book
        .get_order(with_principal(
            GetOrderRequest {
                id: placed.id.clone(),
            },
            principal(&["orders:read"], &["billing"]),
        ))
        .await
        .expect("allow admits any actor")
        .into_inner();
    assert!(!still.cancelled, "no delegated cancel reached the handler");
    let cancelled = book
        .cancel_order(with_principal(cancel(), principal(&write_cancel, &[])))
        .await
        .expect("a direct cancel")
        .into_inner();
    assert!(cancelled.cancelled);
    let purged = desk
        .purge_cancelled(with_principal(PurgeCancelledRequest {}, bound(None)))
        .await
        .expect("a direct purge with a bound token")
        .into_inner();
    assert_eq!(purged.purged, 1);
    assert!(store.is_empty());

    // actors("assistant")
    for chain in [&["billing"][..], &["billing", "assistant"], &["Assistant"]] {
        let result = book
            .create_order(with_principal(order(), principal(&["orders:write"], chain)))
            .await;
        assert_eq!(
            outcome(&result),
            refused(Code::PermissionDenied, NOT_LISTED),
            "CreateOrder, {chain:?}"
        );
    }
    // An actor without a `sub` (the validator never makes one; other code might).
    let nameless = Principal::builder()
        .subject("alice")
        .scopes(["orders:write"])
        .actor(Actor::new(None, Some("assistant".into())))
        .build();
    let result = book.create_order(with_principal(order(), nameless)).await;
    assert_eq!(
        outcome(&result),
        refused(Code::PermissionDenied, NOT_LISTED),
        "an actor without a sub"
    );
    // Scopes first.
    let result = book
        .create_order(with_principal(
            order(),
            principal(&["orders:read"], &["billing"]),
        ))
        .await;
    assert_eq!(
        outcome(&result),
        refused(
            Code::PermissionDenied,
            r#"Bearer error="insufficient_scope", scope="orders:write""#
        )
    );
    assert!(store.is_empty(), "no refused create reached the handler");
    for chain in [&[][..], &["assistant"], &["assistant", "billing"]] {
        let created = book
            .create_order(with_principal(order(), principal(&["orders:write"], chain)))
            .await
            .unwrap_or_else(|s| panic!("CreateOrder, {chain:?}: {s:?}"))
            .into_inner();
        assert_eq!(created.owner, "alice");
    }
    assert_eq!(store.len(), 3);

    // allow
    let who = book
        .who_am_i(with_principal(
            WhoAmIRequest {},
            principal(&[], &["billing", "assistant", "x"]),
        ))
        .await
        .expect("allow")
        .into_inner();
    assert_eq!(who.actors, ["billing", "assistant", "x"]);
}

// ---------------------------------------------------------------------------------------
// The decision against a model, over random chains.
// ---------------------------------------------------------------------------------------

/// Near misses of one another, so that exactness matters.
const ALPHABET: [&str; 6] = ["assistant", "billing", "x", "Assistant", "assistan", ""];
const LISTED: &[&str] = &["assistant", "billing"];
const CLIENT_IDS: [Option<&str>; 3] = [None, Some("assistant"), Some("agent-app")];

/// The three policies, as the model knows them.
#[derive(Debug, Clone, Copy)]
enum Policy {
    Allow,
    Forbid,
    Actors(&'static [&'static str]),
}

impl Policy {
    const ALL: [Policy; 3] = [Policy::Allow, Policy::Forbid, Policy::Actors(LISTED)];

    fn delegation(self) -> Delegation {
        match self {
            Policy::Allow => Delegation::Allowed,
            Policy::Forbid => Delegation::Forbidden,
            Policy::Actors(listed) => Delegation::Actors(listed),
        }
    }

    /// The model: a direct call always passes; `forbid` refuses every delegated one;
    /// `actors` admits exactly the listed current (outermost) actors.
    fn model(self, chain: &[(&str, Option<&str>)]) -> Result<(), Denial> {
        let Some((current, _)) = chain.first() else {
            return Ok(());
        };
        match self {
            Policy::Allow => Ok(()),
            Policy::Forbid => Err(Denial::DelegationForbidden),
            Policy::Actors(listed) if listed.iter().any(|listed| listed == current) => Ok(()),
            Policy::Actors(_) => Err(Denial::ActorNotAllowed),
        }
    }
}

fn random_chain() -> impl Strategy<Value = Vec<(&'static str, Option<&'static str>)>> {
    proptest::collection::vec(
        (
            proptest::sample::select(&ALPHABET[..]),
            proptest::sample::select(&CLIENT_IDS[..]),
        ),
        0..=6,
    )
}

fn random_actor(chain: &[(&str, Option<&str>)]) -> Option<Actor> {
    chain.iter().rev().fold(None, |prior, (sub, client_id)| {
        let actor = Actor::new(Some((*sub).to_owned()), client_id.map(str::to_owned));
        Some(match prior {
            Some(prior) => actor.acting_for(prior),
            None => actor,
        })
    })
}

fn random_act(chain: &[(&str, Option<&str>)]) -> Option<Value> {
    chain.iter().rev().fold(None, |prior, (sub, client_id)| {
        let mut actor = json!({ "sub": sub });
        if let Some(client_id) = client_id {
            actor["client_id"] = json!(client_id);
        }
        if let Some(prior) = prior {
            actor["act"] = prior;
        }
        Some(actor)
    })
}

/// Validators with limits 1 to 6, and the default one (index 0).
static VALIDATORS: LazyLock<Vec<(usize, Validator)>> = LazyLock::new(|| {
    let mut all = vec![(4, validator())];
    for depth in 1..=6_u8 {
        let validator = validator_with_depth(depth).expect("a valid depth");
        all.push((usize::from(depth), validator));
    }
    all
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// `Delegation::evaluate` on a principal built with the chain, and what the principal
    /// says of its chain.
    #[test]
    fn evaluate_matches_the_model(chain in random_chain()) {
        let mut builder = Principal::builder().subject("alice");
        if let Some(actor) = random_actor(&chain) {
            builder = builder.actor(actor);
        }
        let principal = builder.build();
        prop_assert_eq!(principal.is_delegated(), !chain.is_empty());
        prop_assert_eq!(
            principal.actor().and_then(Actor::subject),
            chain.first().map(|(sub, _)| *sub)
        );
        let seen: Vec<(Option<&str>, Option<&str>)> = principal
            .delegation_chain()
            .map(|actor| (actor.subject(), actor.client_id()))
            .collect();
        let expected: Vec<(Option<&str>, Option<&str>)> =
            chain.iter().map(|(sub, id)| (Some(*sub), *id)).collect();
        prop_assert_eq!(seen, expected);
        for policy in Policy::ALL {
            prop_assert_eq!(
                policy.delegation().evaluate(Some(&principal)),
                policy.model(&chain),
                "{:?}", policy
            );
            // No principal: nothing delegated, the rule alone decides.
            prop_assert_eq!(policy.delegation().evaluate(None), Ok(()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    /// Through a real validator: a signed token with the chain, under a random depth limit,
    /// then each policy on the principal it yields.
    #[test]
    fn validated_chains_match_the_model(chain in random_chain(), which in 0..7_usize) {
        let (limit, validator) = &VALIDATORS[which];
        let token = token_with_act("orders:read", random_act(&chain));
        let result = validator.validate_at(&token, SystemTime::now());
        // Each level is read in turn, outermost first: an empty `sub` (which names no one)
        // within the limit is malformed, before the chain is found too deep.
        if chain.iter().position(|(sub, _)| sub.is_empty()).is_some_and(|at| at < *limit) {
            prop_assert_eq!(result.err(), Some(TokenError::MalformedActor));
            return Ok(());
        }
        if chain.len() > *limit {
            prop_assert_eq!(result.err(), Some(TokenError::DelegationTooDeep));
            return Ok(());
        }
        let principal = match result {
            Ok(principal) => principal,
            Err(error) => return Err(TestCaseError::fail(format!("{error}"))),
        };
        prop_assert_eq!(principal.subject(), Some("alice"));
        prop_assert_eq!(principal.is_delegated(), !chain.is_empty());
        let seen: Vec<(Option<&str>, Option<&str>)> = principal
            .delegation_chain()
            .map(|actor| (actor.subject(), actor.client_id()))
            .collect();
        let expected: Vec<(Option<&str>, Option<&str>)> =
            chain.iter().map(|(sub, id)| (Some(*sub), *id)).collect();
        prop_assert_eq!(seen, expected);
        for policy in Policy::ALL {
            prop_assert_eq!(
                policy.delegation().evaluate(Some(&principal)),
                policy.model(&chain),
                "{:?}", policy
            );
        }
    }
}

/// The server itself, not only the unit: every chain of up to 5 actors over a 3-letter
/// alphabet on WhoAmI (allow), CreateOrder (actors) and CancelOrder (forbid).
#[tokio::test]
async fn server_decisions_match_the_model() {
    const SUBS: [&str; 3] = ["assistant", "billing", "Assistant"];
    let store = Store::default();
    let placed = store.place("widget", 1, "alice");
    let server = orders_server(orders_layer(), store.clone())
        .await
        .expect("bind loopback");
    let mut orders = OrdersClient::new(server.channel().await.expect("connect"));
    let expect = |policy: Policy, chain: &[(&str, Option<&str>)]| -> Outcome {
        if chain.len() > 4 {
            return refused(Code::Unauthenticated, TOO_DEEP);
        }
        match policy.model(chain) {
            Ok(()) => Ok(()),
            Err(Denial::DelegationForbidden) => refused(Code::PermissionDenied, FORBIDDEN),
            Err(_) => refused(Code::PermissionDenied, NOT_LISTED),
        }
    };
    let mut chains: Vec<Vec<(&str, Option<&str>)>> = vec![Vec::new()];
    let mut frontier = chains.clone();
    for _ in 0..5 {
        frontier = frontier
            .iter()
            .flat_map(|chain| {
                SUBS.iter().map(move |sub| {
                    let mut longer = chain.clone();
                    longer.push((*sub, None));
                    longer
                })
            })
            .collect();
        chains.extend(frontier.iter().cloned());
    }
    // 1 + 3 + 9 + 27 + 81 + 243
    assert_eq!(chains.len(), 364);
    let mut created = 0;
    for chain in &chains {
        let token = token_with_act("orders:write orders:cancel", random_act(chain));
        let result = orders.who_am_i(authorized(WhoAmIRequest {}, &token)).await;
        assert_eq!(
            outcome(&result),
            expect(Policy::Allow, chain),
            "WhoAmI {chain:?}"
        );
        let result = orders.create_order(authorized(order(), &token)).await;
        let expected = expect(Policy::Actors(&["assistant"]), chain);
        assert_eq!(outcome(&result), expected, "CreateOrder {chain:?}");
        created += usize::from(result.is_ok());
        let result = orders
            .cancel_order(authorized(
                CancelOrderRequest {
                    id: placed.id.clone(),
                },
                &token,
            ))
            .await;
        assert_eq!(
            outcome(&result),
            expect(Policy::Forbid, chain),
            "CancelOrder {chain:?}"
        );
    }
    // Direct, and assistant-first chains of 1 to 4 actors: 1 + 1 + 3 + 9 + 27.
    assert_eq!(created, 41);
    assert_eq!(store.len(), 1 + created);
    server.stop().await;
}

//! The conformance harness against real servers: the example passes, and a server whose
//! scope check was removed by configuration is caught.

use examples::{OrderBook, OrderScope, Store};
use oauth_grpc::testing::{Conformance, TestIssuer};
use oauth_grpc::{OAuthLayer, PolicySet, Validator};
use oauth_grpc_tests::orders_server;

const AUDIENCE: &str = "orders-api";

#[tokio::test]
async fn the_example_service_enforces_its_rules() {
    let issuer = TestIssuer::generate("https://conformance.test/").expect("issuer");
    let validator = Validator::builder()
        .issuer(issuer.issuer())
        .audience(AUDIENCE)
        .keys(issuer.key_set())
        .build()
        .expect("validator");
    let policies = PolicySet::new().service::<OrderBook>();
    let server = orders_server(
        OAuthLayer::new(validator, policies.clone()),
        Store::default(),
    )
    .await
    .expect("bind");

    // The user's five lines:
    let report = Conformance::new(&issuer, AUDIENCE, &policies)
        .catalog::<OrderScope>()
        .run(&server.url())
        .await
        .expect("run");
    println!("{}", report.table());
    report.assert_passed();
    // Nine cases for each of the nine rpcs, and two more for the one-time RefundOrder.
    assert_eq!(report.calls().len(), 9 * 9 + 2);
    let refund: Vec<&str> = report
        .calls()
        .iter()
        .filter(|c| c.path == "/orders.v1.Orders/RefundOrder" && c.case.starts_with("once: "))
        .map(|c| c.case)
        .collect();
    assert_eq!(refund, ["once: first use", "once: used again"]);
    server.stop().await;
}

/// Roles mapped so that every token of the issuer holds every scope: the configuration has
/// removed the scope checks, and the "all but the required scopes" calls get through.
#[tokio::test]
async fn a_server_whose_scope_checks_are_configured_away_is_caught() {
    let issuer = TestIssuer::generate("https://conformance.test/").expect("issuer");
    let all_scopes = [
        "orders:read",
        "orders:write",
        "orders:cancel",
        "orders:admin",
        "orders:refund",
    ];
    let validator = Validator::builder()
        .issuer(issuer.issuer())
        .audience(AUDIENCE)
        .keys(issuer.key_set())
        .role_claim("iss")
        .map_role(issuer.issuer(), all_scopes)
        .build()
        .expect("validator");
    let policies = PolicySet::new().service::<OrderBook>();
    let server = orders_server(
        OAuthLayer::new(validator, policies.clone()),
        Store::default(),
    )
    .await
    .expect("bind");
    let report = Conformance::new(&issuer, AUDIENCE, &policies)
        .catalog::<OrderScope>()
        .run(&server.url())
        .await
        .expect("run");
    assert!(!report.passed(), "{}", report.table());
    let failed: Vec<(&str, &str)> = report
        .failures()
        .map(|o| (o.path.as_str(), o.case))
        .collect();
    assert!(
        failed.contains(&("/orders.v1.Orders/CreateOrder", "all but required scopes")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .all(|(_, case)| *case == "all but required scopes"),
        "{failed:?}"
    );
    assert_eq!(failed.len(), 7, "every scoped rpc: {failed:?}");
    let table = report.table();
    assert!(table.contains("FAILED"));
    server.stop().await;
}

/// A server that admits longer delegation chains than the run assumes: the "too deep" calls
/// of every rpc that needs a token get through, and only those fail.
#[tokio::test]
async fn a_server_admitting_deeper_chains_than_assumed_is_caught() {
    let issuer = TestIssuer::generate("https://conformance.test/").expect("issuer");
    let validator = Validator::builder()
        .issuer(issuer.issuer())
        .audience(AUDIENCE)
        .keys(issuer.key_set())
        .max_delegation_depth(8)
        .build()
        .expect("validator");
    let policies = PolicySet::new().service::<OrderBook>();
    let server = orders_server(
        OAuthLayer::new(validator, policies.clone()),
        Store::default(),
    )
    .await
    .expect("bind");
    let assumed = Conformance::new(&issuer, AUDIENCE, &policies)
        .catalog::<OrderScope>()
        .run(&server.url())
        .await
        .expect("run");
    let failed: Vec<(&str, &str)> = assumed
        .failures()
        .map(|o| (o.path.as_str(), o.case))
        .collect();
    assert!(
        failed
            .iter()
            .all(|(_, case)| *case == "delegation chain too deep"),
        "{failed:?}"
    );
    assert_eq!(failed.len(), 8, "every rpc but the public one: {failed:?}");
    // Told the server's depth, the run passes.
    Conformance::new(&issuer, AUDIENCE, &policies)
        .catalog::<OrderScope>()
        .max_delegation_depth(8)
        .run(&server.url())
        .await
        .expect("run")
        .assert_passed();
    server.stop().await;
}

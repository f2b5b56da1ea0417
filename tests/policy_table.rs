//! The example service's compiled tables: every path and rule, and agreement with the
//! protobuf descriptors the code was generated from.

use examples::{AdminDesk, OrderBook, OrderScope};
use oauth_grpc::{PolicySet, ProtectedService, RpcKind, Rule, Scope, ScopeCatalog};
use prost::Message;

fn row(rule: Rule) -> String {
    rule.to_string()
}

#[test]
fn orders_table_lists_every_rpc_with_its_rule() {
    let table = OrderBook::POLICY;
    // The kind of each rpc, read from the signature by the macro.
    let kinds: Vec<(&str, RpcKind)> = table
        .methods()
        .iter()
        .map(|m| (m.rpc(), m.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("CreateOrder", RpcKind::Unary),
            ("GetOrder", RpcKind::Unary),
            ("CancelOrder", RpcKind::Unary),
            ("RefundOrder", RpcKind::Unary),
            ("WatchOrders", RpcKind::ServerStreaming),
            ("TrackOrders", RpcKind::BidiStreaming),
            ("ImportOrders", RpcKind::ClientStreaming),
            ("WhoAmI", RpcKind::Unary),
            ("GetHTTPStatus", RpcKind::Unary),
        ]
    );
    assert_eq!(table.name(), "orders.v1.Orders");
    let rows: Vec<(&str, &str, &str, String)> = table
        .methods()
        .iter()
        .map(|m| (m.rpc(), m.path(), m.rust_name(), row(m.rule())))
        .collect();
    assert_eq!(
        rows,
        [
            (
                "CreateOrder",
                "/orders.v1.Orders/CreateOrder",
                "create_order",
                "all of: orders:write".to_owned()
            ),
            (
                "GetOrder",
                "/orders.v1.Orders/GetOrder",
                "get_order",
                "any of: orders:read, orders:admin".to_owned()
            ),
            (
                "CancelOrder",
                "/orders.v1.Orders/CancelOrder",
                "cancel_order",
                "all of: orders:write, orders:cancel".to_owned()
            ),
            (
                "RefundOrder",
                "/orders.v1.Orders/RefundOrder",
                "refund_order",
                "all of: orders:refund".to_owned()
            ),
            (
                "WatchOrders",
                "/orders.v1.Orders/WatchOrders",
                "watch_orders",
                "all of: orders:read".to_owned()
            ),
            (
                "TrackOrders",
                "/orders.v1.Orders/TrackOrders",
                "track_orders",
                "all of: orders:read".to_owned()
            ),
            (
                "ImportOrders",
                "/orders.v1.Orders/ImportOrders",
                "import_orders",
                "all of: orders:write".to_owned()
            ),
            (
                "WhoAmI",
                "/orders.v1.Orders/WhoAmI",
                "who_am_i",
                "authenticated".to_owned()
            ),
            (
                "GetHTTPStatus",
                "/orders.v1.Orders/GetHTTPStatus",
                "get_http_status",
                "public".to_owned()
            ),
        ]
    );
}

#[test]
fn rules_hold_the_catalog_scopes_themselves() {
    let create = OrderBook::POLICY.method("CreateOrder").map(|m| m.rule());
    assert_eq!(
        create.map(|r| r.scopes()),
        Some(&[OrderScope::Write.as_scope()][..])
    );
    let get = OrderBook::POLICY.method("GetOrder").map(|m| m.rule());
    assert!(matches!(get, Some(Rule::AnyOf(_))));
    assert_eq!(
        <OrderScope as ScopeCatalog>::ALL,
        [
            Scope::from_static("orders:read"),
            Scope::from_static("orders:write"),
            Scope::from_static("orders:cancel"),
            Scope::from_static("orders:admin"),
            Scope::from_static("orders:refund"),
        ]
    );
}

#[test]
fn admin_table_binds_the_purge_and_applies_the_default_to_the_export() {
    let table = AdminDesk::POLICY;
    assert_eq!(table.name(), "orders.v1.OrdersAdmin");
    let rows: Vec<(&str, String, bool)> = table
        .methods()
        .iter()
        .map(|m| (m.path(), row(m.rule()), m.sender_constrained()))
        .collect();
    assert_eq!(
        rows,
        [
            // Its own rule, the default's scope with `bound`.
            (
                "/orders.v1.OrdersAdmin/PurgeCancelled",
                "all of: orders:admin".to_owned(),
                true
            ),
            // The default, which is not bound.
            (
                "/orders.v1.OrdersAdmin/ExportOrders",
                "all of: orders:admin".to_owned(),
                false
            ),
        ]
    );
}

#[test]
fn no_rpc_of_the_order_book_needs_a_bound_token() {
    assert!(
        OrderBook::POLICY
            .methods()
            .iter()
            .all(|m| !m.sender_constrained())
    );
}

#[test]
fn policy_set_finds_each_path_and_nothing_else() {
    let set = PolicySet::new()
        .service::<OrderBook>()
        .service::<AdminDesk>();
    for method in OrderBook::POLICY
        .methods()
        .iter()
        .chain(AdminDesk::POLICY.methods())
    {
        assert_eq!(set.lookup(method.path()), Some(method), "{}", method.path());
    }
    for unknown in [
        "",
        "/",
        "/orders.v1.Orders/",
        "/orders.v1.Orders/createorder",
        "/orders.v1.Orders/CreateOrder/",
        "orders.v1.Orders/CreateOrder",
        "/orders.v1.Orders/GetHttpStatus",
        "/orders.v1.orders/CreateOrder",
    ] {
        assert!(
            set.lookup(unknown).is_none(),
            "{unknown:?} must have no rule"
        );
    }
    // Adding a table twice changes nothing.
    let again = set.clone().service::<OrderBook>();
    assert_eq!(again.services().count(), 2);
    assert!(again.conflicts().is_empty());
}

#[test]
fn conflicting_tables_leave_the_path_out() {
    use oauth_grpc::{MethodPolicy, ServicePolicy};
    static OPEN: ServicePolicy = ServicePolicy::new(
        "orders.v1.Orders",
        &[MethodPolicy::new(
            "CreateOrder",
            "/orders.v1.Orders/CreateOrder",
            "create_order",
            Rule::Public,
        )],
    );
    let set = PolicySet::new().service::<OrderBook>().policy(&OPEN);
    assert_eq!(set.conflicts(), ["/orders.v1.Orders/CreateOrder"]);
    assert!(set.lookup("/orders.v1.Orders/CreateOrder").is_none());
    assert!(set.lookup("/orders.v1.Orders/GetOrder").is_some());
}

/// The table and the `.proto` name the same rpcs: a wrong `rpc =` or a renamed proto method
/// would show up here.
#[test]
fn tables_match_the_protobuf_descriptors() {
    let fds = prost_types::FileDescriptorSet::decode(examples::pb::FILE_DESCRIPTOR_SET)
        .expect("descriptor set built by build.rs decodes");
    let mut from_proto = Vec::new();
    for file in &fds.file {
        for service in &file.service {
            for method in &service.method {
                from_proto.push(format!(
                    "/{}.{}/{}",
                    file.package(),
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    from_proto.sort();
    let set = PolicySet::new()
        .service::<OrderBook>()
        .service::<AdminDesk>();
    let mut from_table: Vec<String> = set.methods().map(|m| m.path().to_owned()).collect();
    from_table.sort();
    assert_eq!(from_table, from_proto);
}

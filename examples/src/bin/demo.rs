//! The framework in one process: a development identity provider on 127.0.0.1 (a generated key
//! pair; discovery, JWKS and a client-credentials token endpoint over real HTTP), the protected
//! orders server (keys found by discovery), and a client that calls it with no token, a
//! read-only token, a write token, an expired token, a public call and streaming calls —
//! printing each outcome, then the permission report. `RefundOrder` is `once`: a refund token
//! refunds one order, and the same token is refused on its second refund.
//!
//! The back office's `PurgeCancelled` is marked `bound`: it takes only certificate-bound
//! tokens (RFC 8705). So the demo also serves the same service over mutual TLS, with a CA,
//! a server certificate and two client certificates made at start (`rcgen`), and shows a plain
//! admin token refused, a token bound to the client's certificate accepted over mutual TLS,
//! and the same token refused from another certificate.
//!
//! Then agents acting for a user (RFC 8693): an assistant exchanges the user's token and its
//! own for a delegated one (`act.sub` = `assistant`), reads and places orders for the user,
//! and is refused cancelling one (`CancelOrder` forbids delegation); another agent, not listed
//! on `CreateOrder`, is refused placing one. The audit events of those calls are printed,
//! naming user and actor.
//!
//! Exits 0 when every outcome is the expected one.
//!
//! ```text
//! cargo run -p examples --bin demo
//! ```

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use examples::dev_issuer::{
    ADMIN, ASSISTANT, DevClient, DevIssuer, READER, REPORTING_AGENT, WRITER,
};
use examples::pb::orders_admin_client::OrdersAdminClient;
use examples::pb::orders_admin_server::OrdersAdminServer;
use examples::pb::orders_client::OrdersClient;
use examples::pb::orders_server::OrdersServer;
use examples::pb::{
    CancelOrderRequest, CreateOrderRequest, GetHttpStatusRequest, GetOrderRequest,
    PurgeCancelledRequest, RefundOrderRequest, WatchOrdersRequest, WhoAmIRequest,
};
use examples::{AdminDesk, OrderBook, Store};
use oauth_grpc::ClientSecret;
use oauth_grpc::KeySource;
use oauth_grpc::audit::{AuditEvent, AuditSink, JsonLines, Submission, TracingSink};
use oauth_grpc::client::{
    BearerLayer, ClientAuthentication, ClientCredentials, DpopKey, StaticToken, TokenExchange,
    TokenSource,
};
use oauth_grpc::report::{Format, Report};
use oauth_grpc::{Dpop, OAuthLayer, PolicySet, Validator};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};
use tonic::{Code, Status};
use tower::ServiceBuilder;

use examples::test_pki::{Leaf, TestPki};

const AUDIENCE: &str = "orders-api";

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// One call of the scenario and what it showed.
struct Line {
    who: &'static str,
    rpc: &'static str,
    expected: Code,
    got: Result<String, Status>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("demo failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool, Error> {
    let style = Style {
        color: std::io::stdout().is_terminal(),
    };
    let heading = |text: &str| println!("\n{}", style.paint("1", text));

    // 1. The identity provider.
    let idp = DevIssuer::start(AUDIENCE).await?;
    heading("Identity provider");
    println!("  issuer     {}", idp.issuer());
    println!(
        "  discovery  {}.well-known/openid-configuration",
        idp.issuer()
    );
    println!(
        "  clients    {} (orders:read), {} (orders:read orders:write orders:cancel orders:refund), {} (orders:read orders:admin)",
        READER.id, WRITER.id, ADMIN.id
    );
    println!(
        "  agents     {}, {} (no scopes of their own; token exchange for a user's token)",
        ASSISTANT.id, REPORTING_AGENT.id
    );

    // 2. The protected server: keys by discovery, the compiled tables of both services.
    let validator = Validator::builder()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .keys(KeySource::discover(idp.issuer()))
        .start()
        .await?;
    let policies = PolicySet::new()
        .service::<OrderBook>()
        .service::<AdminDesk>();
    // Every decision goes to the JSON Lines audit log and to `tracing`; those of delegated
    // calls are also kept, to print.
    let audit_dir = std::env::temp_dir().join(format!("oauth-grpc-demo-{}", std::process::id()));
    std::fs::create_dir_all(&audit_dir)?;
    let audit_path = audit_dir.join("audit.jsonl");
    let audit = JsonLines::file(&audit_path).start()?;
    let delegated = Arc::new(Mutex::new(Vec::new()));
    let sink = DemoSink {
        audit: audit.clone(),
        delegated: delegated.clone(),
    };
    let layer = OAuthLayer::new(validator, policies.clone())
        .audit_sink(sink)
        .dpop(Dpop::new())
        .check_coverage(examples::pb::FILE_DESCRIPTOR_SET)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let store = Store::default();
    let server = tonic::transport::Server::builder()
        .layer(layer.clone())
        .add_service(OrdersServer::new(OrderBook::new(store.clone())))
        .add_service(OrdersAdminServer::new(AdminDesk::new(store.clone())))
        .serve_with_incoming(TcpListenerStream::new(listener));
    let server = tokio::spawn(server);
    heading("Orders server");
    println!(
        "  listening  http://{addr}  (keys from discovery, every rpc covered by a rule, DPoP on)"
    );

    // 2b. The same service and layer over mutual TLS: a CA, the server's certificate and two
    // clients' certificates, made now.
    let pki = TestPki::new("orders demo CA")?;
    let server_certificate = pki.server()?;
    let client_a = pki.client("admin-a", Some("spiffe://demo.test/admin-a"))?;
    let client_b = pki.client("admin-b", Some("spiffe://demo.test/admin-b"))?;
    let mtls_listener = TcpListener::bind("127.0.0.1:0").await?;
    let mtls_addr = mtls_listener.local_addr()?;
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            &server_certificate.cert_pem,
            &server_certificate.key_pem,
        ))
        .client_ca_root(Certificate::from_pem(pki.ca_pem()));
    let mtls_server = tonic::transport::Server::builder()
        .tls_config(tls)?
        .layer(layer)
        .add_service(OrdersServer::new(OrderBook::new(store.clone())))
        .add_service(OrdersAdminServer::new(AdminDesk::new(store)))
        .serve_with_incoming(TcpListenerStream::new(mtls_listener));
    let mtls_server = tokio::spawn(mtls_server);
    println!(
        "  listening  https://{mtls_addr}  (the same service and layer, mutual TLS: client certificates from the demo CA)"
    );

    // 3. The scenario.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let with_source =
        |source: BearerLayer| ServiceBuilder::new().layer(source).service(channel.clone());
    let credentials = |client: DevClient, scopes: &[&str]| {
        let mut source = ClientCredentials::discover(
            idp.issuer(),
            client.id,
            ClientAuthentication::SecretBasic(ClientSecret::new(client.secret)),
        )
        .audience(AUDIENCE);
        for scope in scopes {
            source = source.scope(*scope);
        }
        BearerLayer::new(source)
    };

    let mut anonymous = OrdersClient::new(channel.clone());
    let mut reader = OrdersClient::new(with_source(credentials(READER, &["orders:read"])));
    let mut writer = OrdersClient::new(with_source(credentials(
        WRITER,
        &["orders:read", "orders:write", "orders:cancel"],
    )));
    let mut admin = OrdersAdminClient::new(with_source(credentials(ADMIN, &["orders:admin"])));
    // A token bound to client A's certificate, as a provider issues it over mutual TLS.
    let bound = idp.certificate_bound_token(ADMIN, &["orders:admin"], &client_a.thumbprint())?;
    let over_mtls = |client: &Leaf| -> Result<Endpoint, Error> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(pki.ca_pem()))
            .identity(Identity::from_pem(&client.cert_pem, &client.key_pem));
        Ok(Endpoint::from_shared(format!("https://{mtls_addr}"))?.tls_config(tls)?)
    };
    let as_a = ServiceBuilder::new()
        .layer(BearerLayer::new(StaticToken::new(bound.clone())))
        .service(over_mtls(&client_a)?.connect().await?);
    let as_b = ServiceBuilder::new()
        .layer(BearerLayer::new(StaticToken::new(bound)))
        .service(over_mtls(&client_b)?.connect().await?);
    let mut admin_a = OrdersAdminClient::new(as_a.clone());
    let mut whoami_a = OrdersClient::new(as_a);
    let mut admin_b = OrdersAdminClient::new(as_b);
    // A token bound to a DPoP key the client generated, as a provider issues it to a client
    // that proves the key at its token endpoint (RFC 9449).
    let dpop_key = DpopKey::generate()?;
    let other_key = DpopKey::generate()?;
    let dpop_token = idp.dpop_bound_token(ADMIN, &["orders:admin"], dpop_key.thumbprint())?;
    let origin = format!("http://{addr}");
    let with_dpop = |key: &DpopKey| -> Result<_, Error> {
        Ok(ServiceBuilder::new()
            .layer(
                BearerLayer::new(StaticToken::dpop(dpop_token.clone()))
                    .dpop(key.clone(), &origin)?,
            )
            .service(channel.clone()))
    };
    let mut dpop_whoami = OrdersClient::new(with_dpop(&dpop_key)?);
    let mut dpop_admin = OrdersAdminClient::new(with_dpop(&dpop_key)?);
    let mut dpop_thief = OrdersClient::new(with_dpop(&other_key)?);
    let mut dpop_as_bearer = OrdersClient::new(with_source(BearerLayer::new(StaticToken::new(
        dpop_token.clone(),
    ))));
    let expired = idp.expired_token(&["orders:read", "orders:write"])?;
    let mut stale = OrdersClient::new(with_source(BearerLayer::new(StaticToken::new(expired))));

    let widget = || CreateOrderRequest {
        item: "widget".into(),
        quantity: 2,
    };
    let mut lines = vec![
        Line {
            who: "no token",
            rpc: "WhoAmI",
            expected: Code::Unauthenticated,
            got: anonymous
                .who_am_i(WhoAmIRequest {})
                .await
                .map(|r| r.into_inner().subject),
        },
        Line {
            who: "no token",
            rpc: "GetHTTPStatus (public)",
            expected: Code::Ok,
            got: anonymous
                .get_http_status(GetHttpStatusRequest {})
                .await
                .map(|r| format!("{} {}", r.get_ref().code, r.get_ref().text)),
        },
        Line {
            who: "write token",
            rpc: "CreateOrder",
            expected: Code::Ok,
            got: writer
                .create_order(widget())
                .await
                .map(|r| format!("order {} for {}", r.get_ref().id, r.get_ref().owner)),
        },
        Line {
            who: "read-only token",
            rpc: "CreateOrder",
            expected: Code::PermissionDenied,
            got: reader
                .create_order(widget())
                .await
                .map(|r| r.into_inner().id),
        },
        Line {
            who: "read-only token",
            rpc: "GetOrder",
            expected: Code::Ok,
            got: reader
                .get_order(GetOrderRequest { id: "1".into() })
                .await
                .map(|r| format!("{} x {}", r.get_ref().quantity, r.get_ref().item)),
        },
        Line {
            who: "read-only token",
            rpc: "WhoAmI",
            expected: Code::Ok,
            got: reader
                .who_am_i(WhoAmIRequest {})
                .await
                .map(|r| format!("{} [{}]", r.get_ref().subject, r.get_ref().scopes.join(" "))),
        },
        Line {
            who: "expired token",
            rpc: "GetOrder",
            expected: Code::Unauthenticated,
            got: stale
                .get_order(GetOrderRequest { id: "1".into() })
                .await
                .map(|r| r.into_inner().id),
        },
    ];
    lines.push(Line {
        who: "write token",
        rpc: "ImportOrders (client streaming)",
        expected: Code::Ok,
        got: writer
            .import_orders(tokio_stream::iter(vec![widget(), widget(), widget()]))
            .await
            .map(|r| format!("{} imported", r.get_ref().imported)),
    });
    lines.push(Line {
        who: "read-only token",
        rpc: "WatchOrders (server streaming)",
        expected: Code::Ok,
        got: watch(&mut reader).await,
    });
    lines.push(Line {
        who: "no token",
        rpc: "WatchOrders (server streaming)",
        expected: Code::Unauthenticated,
        got: watch(&mut anonymous).await,
    });

    // Certificate-bound tokens: PurgeCancelled is `bound`.
    lines.push(Line {
        who: "write token",
        rpc: "CancelOrder",
        expected: Code::Ok,
        got: writer
            .cancel_order(CancelOrderRequest { id: "1".into() })
            .await
            .map(|r| format!("order {} cancelled", r.get_ref().id)),
    });
    // One-time tokens: RefundOrder is `once`; the second call with the same token is
    // refused whichever order it names.
    let mut refunder = OrdersClient::new(with_source(credentials(
        WRITER,
        &["orders:read", "orders:refund"],
    )));
    lines.push(Line {
        who: "refund token",
        rpc: "RefundOrder (once)",
        expected: Code::Ok,
        got: refunder
            .refund_order(RefundOrderRequest { id: "1".into() })
            .await
            .map(|r| {
                format!(
                    "order {} refunded ({})",
                    r.get_ref().order.as_ref().map_or("?", |o| o.id.as_str()),
                    r.get_ref().refund_id
                )
            }),
    });
    lines.push(Line {
        who: "same refund token",
        rpc: "RefundOrder (once)",
        expected: Code::Unauthenticated,
        got: refunder
            .refund_order(RefundOrderRequest { id: "2".into() })
            .await
            .map(|r| r.into_inner().refund_id),
    });
    lines.push(Line {
        who: "admin token",
        rpc: "OrdersAdmin/PurgeCancelled",
        expected: Code::Unauthenticated,
        got: admin
            .purge_cancelled(PurgeCancelledRequest {})
            .await
            .map(|r| format!("{} purged", r.get_ref().purged)),
    });
    lines.push(Line {
        who: "bound token, cert A",
        rpc: "WhoAmI (mutual TLS)",
        expected: Code::Ok,
        got: whoami_a.who_am_i(WhoAmIRequest {}).await.map(|r| {
            let me = r.into_inner();
            format!(
                "{} [{}] from {}, bound: {}",
                me.subject,
                me.scopes.join(" "),
                me.spiffe_id,
                me.sender_constrained
            )
        }),
    });
    lines.push(Line {
        who: "bound token, cert A",
        rpc: "PurgeCancelled (mutual TLS)",
        expected: Code::Ok,
        got: admin_a
            .purge_cancelled(PurgeCancelledRequest {})
            .await
            .map(|r| format!("{} cancelled order purged", r.get_ref().purged)),
    });
    lines.push(Line {
        who: "bound token, cert B",
        rpc: "PurgeCancelled (mutual TLS)",
        expected: Code::Unauthenticated,
        got: admin_b
            .purge_cancelled(PurgeCancelledRequest {})
            .await
            .map(|r| format!("{} purged", r.get_ref().purged)),
    });

    // DPoP-bound tokens: the key proves each call, no certificate needed.
    lines.push(Line {
        who: "DPoP token + its key",
        rpc: "WhoAmI",
        expected: Code::Ok,
        got: dpop_whoami.who_am_i(WhoAmIRequest {}).await.map(|r| {
            let me = r.into_inner();
            format!(
                "{} [{}], bound: {}",
                me.subject,
                me.scopes.join(" "),
                me.sender_constrained
            )
        }),
    });
    lines.push(Line {
        who: "DPoP token + its key",
        rpc: "OrdersAdmin/PurgeCancelled",
        expected: Code::Ok,
        got: dpop_admin
            .purge_cancelled(PurgeCancelledRequest {})
            .await
            .map(|r| {
                format!(
                    "{} purged (a DPoP-bound token is sender-constrained too)",
                    r.get_ref().purged
                )
            }),
    });
    lines.push(Line {
        who: "stolen DPoP token",
        rpc: "WhoAmI",
        expected: Code::Unauthenticated,
        got: dpop_thief
            .who_am_i(WhoAmIRequest {})
            .await
            .map(|r| r.into_inner().subject),
    });
    lines.push(Line {
        who: "DPoP token as Bearer",
        rpc: "WhoAmI",
        expected: Code::Unauthenticated,
        got: dpop_as_bearer
            .who_am_i(WhoAmIRequest {})
            .await
            .map(|r| r.into_inner().subject),
    });

    // Agents acting for the user orders-writer (RFC 8693 token exchange at the issuer).
    let fetch = |source: ClientCredentials| async move {
        source.fetch().await.map(|token| token.secret().to_owned())
    };
    let own = |client: DevClient| {
        ClientCredentials::discover(
            idp.issuer(),
            client.id,
            ClientAuthentication::SecretBasic(ClientSecret::new(client.secret)),
        )
        .audience(AUDIENCE)
    };
    let user_token = fetch(own(WRITER)).await?;
    let on_behalf = |agent: DevClient, agent_token: String| {
        BearerLayer::new(
            TokenExchange::new(
                format!("{}token", idp.issuer()),
                agent.id,
                ClientAuthentication::SecretBasic(ClientSecret::new(agent.secret)),
                user_token.clone(),
            )
            .actor_token(agent_token)
            .audience(AUDIENCE),
        )
    };
    let assistant_token = fetch(own(ASSISTANT)).await?;
    let reporting_token = fetch(own(REPORTING_AGENT)).await?;
    let mut assistant = OrdersClient::new(with_source(on_behalf(ASSISTANT, assistant_token)));
    let mut reporting = OrdersClient::new(with_source(on_behalf(REPORTING_AGENT, reporting_token)));
    lines.push(Line {
        who: "assistant for user",
        rpc: "WhoAmI",
        expected: Code::Ok,
        got: assistant.who_am_i(WhoAmIRequest {}).await.map(|r| {
            let me = r.into_inner();
            format!("{} for {}", me.actors.join(" for "), me.subject)
        }),
    });
    lines.push(Line {
        who: "assistant for user",
        rpc: "GetOrder",
        expected: Code::Ok,
        got: assistant
            .get_order(GetOrderRequest { id: "2".into() })
            .await
            .map(|r| {
                format!(
                    "{} x {} of {}",
                    r.get_ref().quantity,
                    r.get_ref().item,
                    r.get_ref().owner
                )
            }),
    });
    lines.push(Line {
        who: "assistant for user",
        rpc: "CreateOrder (actors: assistant)",
        expected: Code::Ok,
        got: assistant
            .create_order(widget())
            .await
            .map(|r| format!("order {} for {}", r.get_ref().id, r.get_ref().owner)),
    });
    lines.push(Line {
        who: "assistant for user",
        rpc: "CancelOrder (delegation = forbid)",
        expected: Code::PermissionDenied,
        got: assistant
            .cancel_order(CancelOrderRequest { id: "1".into() })
            .await
            .map(|r| format!("order {} cancelled", r.get_ref().id)),
    });
    lines.push(Line {
        who: "reporting-agent",
        rpc: "CreateOrder (actors: assistant)",
        expected: Code::PermissionDenied,
        got: reporting
            .create_order(widget())
            .await
            .map(|r| format!("order {} for {}", r.get_ref().id, r.get_ref().owner)),
    });

    heading("Calls");
    let mut all_expected = true;
    for line in &lines {
        let (code, detail) = match &line.got {
            Ok(detail) => (Code::Ok, detail.clone()),
            Err(status) => {
                let challenge = status
                    .metadata()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .map(|v| format!("www-authenticate: {v}"))
                    .unwrap_or_else(|| status.message().to_owned());
                (status.code(), challenge)
            }
        };
        let ok = code == line.expected;
        all_expected &= ok;
        let verdict = if ok {
            style.paint("32", "as expected")
        } else {
            style.paint("31", &format!("UNEXPECTED, wanted {:?}", line.expected))
        };
        let code_text = format!("{:>2} {:?}", code as i32, code);
        let code_text = match code {
            Code::Ok => style.paint("32", &format!("{code_text:19}")),
            _ => style.paint("33", &format!("{code_text:19}")),
        };
        println!(
            "  {:20} {:36} {code_text} {verdict:11}  {detail}",
            line.who, line.rpc
        );
    }

    heading("Audit events of the delegated calls (user and actor)");
    for line in delegated.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        println!("  {line}");
    }

    heading("Audit log (one JSON object per decision, docs/audit.schema.json)");
    audit.flush().await?;
    println!(
        "  {} records written to {}",
        audit.written(),
        audit_path.display()
    );
    println!(
        "  try a rule change on them: cargo run -p examples --bin permissions -- replay {}",
        audit_path.display()
    );

    heading("Permission report (the same tables the server enforced)");
    let report = Report::new(&policies)
        .descriptors(examples::pb::FILE_DESCRIPTOR_SET)?
        .generated_by("cargo run -p examples --bin permissions");
    for line in report.render(Format::Markdown).lines().skip(2) {
        println!("  {line}");
    }
    let summary = if all_expected {
        style.paint("32", "every outcome was the expected one")
    } else {
        style.paint("31", "some outcomes were not the expected ones")
    };
    println!("{summary}");
    server.abort();
    mtls_server.abort();
    Ok(all_expected)
}

/// The demo's audit sink: the JSON Lines log, `tracing`, and the delegated calls kept to
/// print.
struct DemoSink {
    audit: JsonLines,
    delegated: Arc<Mutex<Vec<String>>>,
}

impl AuditSink for DemoSink {
    fn record(&self, event: &AuditEvent<'_>) {
        let _ = self.submit(event);
    }

    fn submit(&self, event: &AuditEvent<'_>) -> Submission {
        TracingSink.record(event);
        if let Some(p) = event.principal.filter(|p| p.is_delegated()) {
            let chain: Vec<_> = p.delegation_chain().filter_map(|a| a.subject()).collect();
            self.delegated
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!(
                    "{:5} {:20} {:31} subject={} actor={}",
                    event.decision.as_str(),
                    event.reason,
                    event.path,
                    p.subject().unwrap_or("-"),
                    chain.join(" > "),
                ));
        }
        self.audit.submit(event)
    }
}

async fn watch<T>(client: &mut OrdersClient<T>) -> Result<String, Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut stream = client
        .watch_orders(WatchOrdersRequest::default())
        .await?
        .into_inner();
    let mut received = 0;
    while let Some(order) = stream.next().await {
        order?;
        received += 1;
    }
    Ok(format!("{received} orders streamed"))
}

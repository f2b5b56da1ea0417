//! Several independent providers in one validator, over real HTTP and a real tonic server:
//! two discovery issuers on two ports, each with its own keys; tokens of each accepted,
//! cross-signed tokens refused; one provider down without touching the other; a multi-tenant
//! issuer template whose unknown tenants cost no request and whose new tenant is fetched once
//! for 200 concurrent cold calls.

use std::time::Duration;

use examples::Store;
use examples::pb::WhoAmIRequest;
use examples::pb::orders_client::OrdersClient;
use oauth_grpc::{
    ClientSecret, ConfigError, Introspection, Issuer, KeySet, KeySource, OAuthLayer, PolicySet,
    TokenError, TokenRouting, TokenTypes, Validator,
};
use oauth_grpc_tests::idp::{CLIENT_ID, CLIENT_SECRET, IdentityProvider};
use oauth_grpc_tests::issuer::{AUDIENCE, TestKey, claims, header, sign_json};
use oauth_grpc_tests::{TestServer, challenge, orders_server};
use serde_json::{Value, json};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};

/// A token naming `iss`, signed with `key` (its kid in the header), unique per call so no
/// cache hit hides a check.
fn token_from(iss: &str, key: TestKey) -> String {
    token_with(iss, &header(key), key, |_| {})
}

fn token_with(iss: &str, header: &Value, key: TestKey, edit: impl FnOnce(&mut Value)) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut c = claims("orders:read");
    c["iss"] = json!(iss);
    c["jti"] = json!(format!("multi-{}", NEXT.fetch_add(1, Ordering::SeqCst)));
    edit(&mut c);
    sign_json(header, &c, key)
}

fn source(idp: &IdentityProvider) -> KeySource {
    KeySource::discover(idp.issuer())
        .refresh_between(Duration::from_millis(200), Duration::from_millis(300))
        .unknown_kid_cooldown(Duration::from_millis(100))
        .retry_after(Duration::from_millis(50))
}

/// Two providers, each on its own port with its own key: `corporate` signs with RSA,
/// `partner` with EC P-256.
struct Two {
    corporate: IdentityProvider,
    partner: IdentityProvider,
    validator: Validator,
    server: TestServer,
    client: OrdersClient<Channel>,
}

async fn two(partner_staleness: Duration) -> Two {
    let corporate = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let partner = IdentityProvider::start(&[TestKey::Ec256]).await;
    let validator = Validator::builder()
        .audience(AUDIENCE)
        .trust(Issuer::new(corporate.issuer()).keys(source(&corporate)))
        .trust(
            Issuer::new(partner.issuer())
                .keys(source(&partner).max_staleness(partner_staleness))
                .token_types(TokenTypes::AllowPlainJwt),
        )
        .start()
        .await
        .expect("both providers load at start-up");
    let layer = OAuthLayer::new(
        validator.clone(),
        PolicySet::new().service::<examples::OrderBook>(),
    );
    let server = orders_server(layer, Store::default()).await.expect("bind");
    let client = OrdersClient::new(server.channel().await.expect("connect"));
    Two {
        corporate,
        partner,
        validator,
        server,
        client,
    }
}

fn call(token: &str) -> Request<WhoAmIRequest> {
    let mut request = Request::new(WhoAmIRequest {});
    let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ASCII");
    request.metadata_mut().insert("authorization", value);
    request
}

const INVALID: &str = "Bearer error=\"invalid_token\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_s_tokens_are_accepted_with_its_own_keys() {
    let mut t = two(Duration::from_secs(3600)).await;
    assert_eq!(t.corporate.discovery_requests(), 1);
    assert_eq!(t.partner.discovery_requests(), 1);

    let corporate = token_from(&t.corporate.issuer(), TestKey::Rsa1);
    let reply = t
        .client
        .who_am_i(call(&corporate))
        .await
        .expect("corporate");
    assert_eq!(reply.get_ref().subject, "alice");
    let principal = t.validator.validate(&corporate).await.expect("corporate");
    assert_eq!(principal.issuer(), Some(t.corporate.issuer().as_str()));

    // The partner's own profile: a plain `typ: JWT`, which the corporate one refuses.
    let plain = json!({"alg": "ES256", "typ": "JWT", "kid": TestKey::Ec256.kid()});
    let partner = token_with(&t.partner.issuer(), &plain, TestKey::Ec256, |_| {});
    t.client.who_am_i(call(&partner)).await.expect("partner");
    let principal = t.validator.validate(&partner).await.expect("partner");
    assert_eq!(principal.issuer(), Some(t.partner.issuer().as_str()));
    let plain_rsa = json!({"alg": "RS256", "typ": "JWT", "kid": TestKey::Rsa1.kid()});
    assert_eq!(
        t.validator
            .validate(&token_with(
                &t.corporate.issuer(),
                &plain_rsa,
                TestKey::Rsa1,
                |_| {}
            ))
            .await,
        Err(TokenError::WrongType)
    );
    t.server.stop().await;
}

/// RFC 8725 §3.8: a key of one provider never vouches for a token naming another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_signed_tokens_are_refused() {
    let mut t = two(Duration::from_secs(3600)).await;
    let (corporate, partner) = (t.corporate.issuer(), t.partner.issuer());

    // Naming the corporate issuer, signed with the partner's key under its own kid: the
    // corporate keys have no such kid (one refetch of the corporate keys says so).
    let forged = token_from(&corporate, TestKey::Ec256);
    let status = t.client.who_am_i(call(&forged)).await.expect_err("forged");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(challenge(&status).starts_with(INVALID), "{status:?}");
    assert_eq!(
        t.validator.validate(&forged).await,
        Err(TokenError::UnknownKey)
    );
    // The other way round, and without a kid (every key of the named issuer that fits is
    // tried; the partner's key is not among them).
    let forged = token_from(&partner, TestKey::Rsa1);
    let status = t.client.who_am_i(call(&forged)).await.expect_err("forged");
    assert_eq!(status.code(), Code::Unauthenticated);
    let kidless = json!({"alg": "ES256", "typ": "at+jwt"});
    let forged = token_with(&corporate, &kidless, TestKey::Ec256, |_| {});
    let status = t.client.who_am_i(call(&forged)).await.expect_err("forged");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(challenge(&status).starts_with(INVALID), "{status:?}");
    // Not one JWKS request went to the partner for tokens naming the corporate issuer.
    let partner_jwks = t.partner.jwks_requests();
    let forged = token_from(&corporate, TestKey::Ec256);
    let _ = t.client.who_am_i(call(&forged)).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let _ = t
        .client
        .who_am_i(call(&token_from(&corporate, TestKey::Ec256)))
        .await;
    assert!(
        t.partner.jwks_requests() <= partner_jwks + 1,
        "only its own refresh"
    );
    t.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_issuer_is_refused_without_a_request() {
    let mut t = two(Duration::from_secs(3600)).await;
    let before = (
        t.corporate.discovery_requests() + t.corporate.jwks_requests(),
        t.partner.discovery_requests() + t.partner.jwks_requests(),
    );
    let stranger = token_from("https://stranger.example/", TestKey::Rsa1);
    let status = t
        .client
        .who_am_i(call(&stranger))
        .await
        .expect_err("stranger");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(challenge(&status).starts_with(INVALID), "{status:?}");
    assert_eq!(
        t.validator.validate(&stranger).await,
        Err(TokenError::WrongIssuer)
    );
    // A near miss is a stranger too: issuers are compared exactly.
    let near = token_from(t.corporate.issuer().trim_end_matches('/'), TestKey::Rsa1);
    assert_eq!(
        t.validator.validate(&near).await,
        Err(TokenError::WrongIssuer)
    );
    let after = (
        t.corporate.discovery_requests() + t.corporate.jwks_requests(),
        t.partner.discovery_requests() + t.partner.jwks_requests(),
    );
    // Only scheduled refreshes (200–300 ms) may have happened meanwhile.
    assert!(
        after.0 <= before.0 + 1 && after.1 <= before.1 + 1,
        "{before:?} {after:?}"
    );
    t.server.stop().await;
}

/// The partner goes down: its tokens keep working on its last keys until they are too
/// stale, then get 14; the corporate provider's tokens are not affected at any point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_provider_down_leaves_the_other_unaffected() {
    let mut t = two(Duration::from_millis(800)).await;
    let (corporate, partner) = (t.corporate.issuer(), t.partner.issuer());
    t.partner.down().await;
    t.client
        .who_am_i(call(&token_from(&partner, TestKey::Ec256)))
        .await
        .expect("the partner's last good keys");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let status = t
        .client
        .who_am_i(call(&token_from(&partner, TestKey::Ec256)))
        .await
        .expect_err("the partner's keys are too stale");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        t.validator
            .validate(&token_from(&partner, TestKey::Ec256))
            .await,
        Err(TokenError::Unavailable)
    );
    for _ in 0..5 {
        t.client
            .who_am_i(call(&token_from(&corporate, TestKey::Rsa1)))
            .await
            .expect("the corporate provider is up");
    }
    t.partner.up().await;
    let mut recovered = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if t.client
            .who_am_i(call(&token_from(&partner, TestKey::Ec256)))
            .await
            .is_ok()
        {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "the partner's tokens work again once it is back");
    t.server.stop().await;
}

fn tenants(idp: &IdentityProvider, allowed: &[&str]) -> Validator {
    Validator::builder()
        .audience(AUDIENCE)
        .trust(Issuer::tenants(
            idp.tenant_template(),
            allowed.iter().copied(),
        ))
        .build()
        .expect("the template and tenants are valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_tenant_makes_no_request() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let validator = tenants(&idp, &["acme", "globex"]);
    let template = idp.tenant_template();
    let of = |tenant: &str| template.replace("{tenant}", tenant);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        idp.discovery_requests(),
        0,
        "tenants' keys are fetched on first use"
    );
    for iss in [
        of("initech"),
        of("acme/../globex"),
        of("ACME"),
        of(""),
        format!("{}x", of("acme")),
    ] {
        assert_eq!(
            validator.validate(&token_from(&iss, TestKey::Rsa1)).await,
            Err(TokenError::WrongIssuer),
            "{iss}"
        );
    }
    assert_eq!(idp.discovery_requests(), 0);
    assert_eq!(idp.jwks_requests(), 0);

    // An allowed tenant: its own discovery, its own issuer.
    let principal = validator
        .validate(&token_from(&of("acme"), TestKey::Rsa1))
        .await
        .expect("acme is allowed");
    assert_eq!(principal.issuer(), Some(of("acme").as_str()));
    assert_eq!(idp.discovery_requests(), 1);
    // Another tenant's token is not checked with acme's fetch.
    validator
        .validate(&token_from(&of("globex"), TestKey::Rsa1))
        .await
        .expect("globex is allowed");
    assert_eq!(idp.discovery_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_tenant_is_fetched_once_for_200_concurrent_cold_calls() {
    let idp = IdentityProvider::start(&[TestKey::Rsa1]).await;
    let validator = tenants(&idp, &["acme", "globex", "initech"]);
    let layer = OAuthLayer::new(
        validator.clone(),
        PolicySet::new().service::<examples::OrderBook>(),
    );
    let server = orders_server(layer, Store::default()).await.expect("bind");
    let channel = server.channel().await.expect("connect");
    let iss = idp.tenant_template().replace("{tenant}", "globex");
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let mut client = OrdersClient::new(channel.clone());
            let token = token_from(&iss, TestKey::Rsa1);
            tokio::spawn(async move { client.who_am_i(call(&token)).await })
        })
        .collect();
    for call in calls {
        call.await.expect("task").expect("globex is allowed");
    }
    assert_eq!(
        idp.discovery_requests(),
        1,
        "one discovery for all cold calls"
    );
    assert_eq!(idp.jwks_requests(), 1, "one JWKS fetch for all cold calls");
    server.stop().await;
}

/// The builder's role mapping, scope claim and token types describe its own `.issuer(…)`
/// only: a partner's token carrying the same role name is granted nothing by them.
#[test]
fn one_provider_s_role_mapping_grants_nothing_to_another() {
    let corp_key = KeySet::from_hmac_secret(Some("corp"), &[1; 32], oauth_grpc::Algorithm::HS256)
        .expect("32 bytes");
    let partner_key =
        KeySet::from_hmac_secret(Some("partner"), &[2; 32], oauth_grpc::Algorithm::HS256)
            .expect("32 bytes");
    let validator = Validator::builder()
        .issuer("https://corp.example/")
        .audience(AUDIENCE)
        .keys(corp_key)
        .role_claim("roles")
        .map_role("admin", ["orders:admin"])
        .scope_claim("permissions")
        .trust(Issuer::new("https://partner.example/").keys(partner_key))
        .build()
        .expect("valid configuration");
    let now = std::time::SystemTime::now();
    let sign = |iss: &str, kid: &str, secret: &[u8]| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid.into());
        header.typ = Some("at+jwt".into());
        let mut c = claims("orders:read");
        c["iss"] = json!(iss);
        c["roles"] = json!(["admin"]);
        c["permissions"] = json!(["orders:write"]);
        jsonwebtoken::encode(&header, &c, &jsonwebtoken::EncodingKey::from_secret(secret))
            .expect("signs")
    };
    let corp = validator
        .validate_at(&sign("https://corp.example/", "corp", &[1; 32]), now)
        .expect("corporate token");
    assert!(corp.has_scope("orders:admin"), "{:?}", corp.scopes());
    assert!(corp.has_scope("orders:write"));
    let partner = validator
        .validate_at(&sign("https://partner.example/", "partner", &[2; 32]), now)
        .expect("partner token");
    assert_eq!(partner.issuer(), Some("https://partner.example/"));
    // The partner's scopes come from its own `scope` claim; its `roles` mean nothing here.
    assert!(partner.has_scope("orders:read"));
    assert!(!partner.has_scope("orders:admin"), "{:?}", partner.scopes());
    assert!(!partner.has_scope("orders:write"), "{:?}", partner.scopes());
}

/// Beside another provider, an issuer that introspects every token receives its own JWTs
/// and opaque tokens, never a JWT naming a stranger or the other provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beside_another_provider_only_its_own_tokens_are_introspected() {
    let corporate = IdentityProvider::start(&[]).await;
    let partner = IdentityProvider::start(&[TestKey::Ec256]).await;
    let validator = Validator::builder()
        .audience(AUDIENCE)
        .trust(
            Issuer::new(corporate.issuer()).introspection(
                Introspection::new(
                    corporate.introspection_url(),
                    CLIENT_ID,
                    ClientSecret::new(CLIENT_SECRET),
                )
                .routing(TokenRouting::IntrospectAll),
            ),
        )
        .trust(Issuer::new(partner.issuer()).keys(source(&partner)))
        .start()
        .await
        .expect("valid configuration");
    let active = json!({
        "active": true, "scope": "orders:read", "sub": "bob", "aud": AUDIENCE,
        "iss": corporate.issuer(), "exp": oauth_grpc_tests::issuer::now() + 300,
    });
    corporate.set_introspection("opaque-corp", active.clone());
    let own_jwt = token_from(&corporate.issuer(), TestKey::Rsa1);
    corporate.set_introspection(&own_jwt, active);
    let ok = validator.validate("opaque-corp").await.expect("opaque");
    assert_eq!(ok.issuer(), Some(corporate.issuer().as_str()));
    validator.validate(&own_jwt).await.expect("its own JWT");
    assert_eq!(corporate.introspection_requests(), 2);

    // A stranger's JWT, one without `iss`, the partner's: none reaches the endpoint.
    let stranger = token_from("https://stranger.example/", TestKey::Rsa1);
    assert_eq!(
        validator.validate(&stranger).await,
        Err(TokenError::WrongIssuer)
    );
    let nameless = token_with(
        &corporate.issuer(),
        &header(TestKey::Rsa1),
        TestKey::Rsa1,
        |c| {
            c.as_object_mut().expect("object").remove("iss");
        },
    );
    assert_eq!(
        validator.validate(&nameless).await,
        Err(TokenError::MissingClaim)
    );
    let partner_token = token_from(&partner.issuer(), TestKey::Ec256);
    validator
        .validate(&partner_token)
        .await
        .expect("the partner's own keys");
    assert_eq!(corporate.introspection_requests(), 2);
}

#[test]
fn configuration_mistakes_name_the_fix() {
    let hmac = |kid: &str| {
        KeySet::from_hmac_secret(Some(kid), &[7; 32], oauth_grpc::Algorithm::HS256)
            .expect("32 bytes")
    };
    let message = |result: Result<Validator, ConfigError>| match result {
        Ok(_) => panic!("the configuration is refused"),
        Err(error) => error.to_string(),
    };
    // The same issuer twice.
    let twice = Validator::builder()
        .audience("api")
        .trust(Issuer::new("https://a.example/").keys(hmac("a")))
        .trust(Issuer::new("https://a.example/").keys(hmac("b")))
        .build();
    assert!(matches!(twice, Err(ConfigError::DuplicateIssuer(_))));
    assert!(message(twice).contains(".alias("));
    // A second issuer without keys.
    let keyless = Validator::builder()
        .audience("api")
        .trust(Issuer::new("https://a.example/").keys(hmac("a")))
        .trust(Issuer::new("https://b.example/"))
        .build();
    assert!(message(keyless).contains("https://b.example/"));
    // Without an audience anywhere.
    let deaf = Validator::builder()
        .trust(Issuer::new("https://a.example/").keys(hmac("a")))
        .trust(Issuer::new("https://b.example/").keys(hmac("b")))
        .build();
    assert!(matches!(deaf, Err(ConfigError::NoAudienceFor(_))));
    // Keys on the builder with no `.issuer(…)` to vouch for.
    let orphan = Validator::builder()
        .audience("api")
        .keys(hmac("a"))
        .trust(Issuer::new("https://b.example/").keys(hmac("b")))
        .build();
    assert!(matches!(orphan, Err(ConfigError::KeysWithoutIssuer)));
    // What describes one provider's tokens, on a builder with no `.issuer(…)` of its own.
    let loose = Validator::builder()
        .audience("api")
        .role_claim("roles")
        .map_role("admin", ["orders:admin"])
        .trust(Issuer::new("https://b.example/").keys(hmac("b")))
        .build();
    assert!(matches!(
        loose,
        Err(ConfigError::ProviderSettingWithoutIssuer("role_claim"))
    ));
    assert!(message(loose).contains(".trust(Issuer::new(…).role_claim(…))"));
    let plain = Validator::builder()
        .audience("api")
        .token_types(TokenTypes::AllowPlainJwt)
        .trust(Issuer::new("https://b.example/").keys(hmac("b")))
        .build();
    assert!(matches!(
        plain,
        Err(ConfigError::ProviderSettingWithoutIssuer("token_types"))
    ));
    // Roles mapped with no claim to find them in.
    let roleless = Validator::builder()
        .audience("api")
        .trust(
            Issuer::new("https://b.example/")
                .keys(hmac("b"))
                .map_role("admin", ["orders:admin"]),
        )
        .build();
    assert!(matches!(roleless, Err(ConfigError::RolesWithoutClaim)));
    assert!(message(roleless).contains(".role_claim("));
    // One introspection endpoint for every tenant of a template.
    let tenant_endpoint = Validator::builder()
        .audience("api")
        .trust(
            Issuer::tenants("https://login.example/{tenant}/", ["acme"]).introspection(
                Introspection::new(
                    "https://login.example/introspect",
                    "api",
                    ClientSecret::new("s"),
                ),
            ),
        )
        .build();
    assert!(matches!(
        tenant_endpoint,
        Err(ConfigError::TenantIntrospection(_))
    ));
    // Templates and tenants.
    for (template, tenants) in [
        ("https://login.example/v2.0", vec!["acme"]),
        ("https://login.example/{tenant}/{tenant}", vec!["acme"]),
        ("{tenant}.example", vec!["acme"]),
    ] {
        let result = Validator::builder()
            .audience("api")
            .trust(Issuer::tenants(template, tenants))
            .build();
        assert!(
            matches!(result, Err(ConfigError::IssuerTemplate { .. })),
            "{template}: {result:?}"
        );
    }
    let none = Validator::builder()
        .audience("api")
        .trust(Issuer::tenants(
            "https://login.example/{tenant}/",
            Vec::<String>::new(),
        ))
        .build();
    assert!(message(none).contains("no wildcard"));
    for tenant in ["a/b", "..", "", "*", "a?b", "é"] {
        let result = Validator::builder()
            .audience("api")
            .trust(Issuer::tenants("https://login.example/{tenant}/", [tenant]))
            .build();
        assert!(matches!(result, Err(ConfigError::Tenant(_))), "{tenant:?}");
    }
    let placeholder = Validator::builder()
        .audience("api")
        .trust(Issuer::new("https://login.example/{tenant}/").keys(hmac("a")))
        .build();
    assert!(matches!(
        placeholder,
        Err(ConfigError::IssuerTemplate { .. })
    ));
}

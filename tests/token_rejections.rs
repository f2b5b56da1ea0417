//! Every way a call can carry bad credentials, against a real server on 127.0.0.1: each case
//! asserts the exact gRPC code and `www-authenticate` value.

use examples::Store;
use examples::pb::orders_client::OrdersClient;
use examples::pb::{CancelOrderRequest, CreateOrderRequest, GetOrderRequest};
use oauth_grpc_tests::issuer::{self, TestKey, b64, claims, header, sign_json, sign_segments};
use oauth_grpc_tests::{challenge, orders_layer, orders_server};
use serde_json::{Value, json};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};

/// Which rpc a case calls.
#[derive(Clone, Copy)]
enum Rpc {
    /// all of: orders:write
    Create,
    /// any of: orders:read, orders:admin
    Get,
    /// all of: orders:write, orders:cancel
    Cancel,
}

struct Case {
    name: &'static str,
    rpc: Rpc,
    /// `authorization` values to send.
    authorization: Vec<String>,
    code: Code,
    challenge: &'static str,
}

fn bearer(token: &str) -> Vec<String> {
    vec![format!("Bearer {token}")]
}

fn invalid(description: &str) -> String {
    format!(r#"Bearer error="invalid_token", error_description="{description}""#)
}

fn with_claim(name: &str, value: Value) -> Value {
    let mut c = claims("orders:write");
    c[name] = value;
    c
}

fn without_claim(name: &str) -> Value {
    let mut c = claims("orders:write");
    c.as_object_mut().map(|m| m.remove(name));
    c
}

fn write_token_with(claims: Value) -> String {
    sign_json(&header(TestKey::Rsa1), &claims, TestKey::Rsa1)
}

fn header_with(name: &str, value: Value) -> Value {
    let mut h = header(TestKey::Rsa1);
    h[name] = value;
    h
}

fn cases() -> Vec<Case> {
    let valid = issuer::token(TestKey::Rsa1, "orders:write");
    let (h, p, s) = {
        let mut parts = valid.split('.');
        (
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
        )
    };
    let rsa = TestKey::Rsa1.encoding_key();
    let flipped = {
        let mut sig = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &s)
            .expect("signature is base64url");
        sig[10] ^= 0x01;
        format!("{h}.{p}.{}", b64(&sig))
    };
    let hs256_with_public_key = {
        let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "rsa-1"});
        let key = jsonwebtoken::EncodingKey::from_secret(TestKey::Rsa1.public_pem());
        sign_segments(
            &b64(header.to_string().as_bytes()),
            &b64(claims("orders:write").to_string().as_bytes()),
            &key,
            jsonwebtoken::Algorithm::HS256,
        )
    };
    let hs256_no_kid = {
        let header = json!({"alg": "HS256", "typ": "at+jwt"});
        let key = jsonwebtoken::EncodingKey::from_secret(TestKey::Rsa1.public_pem());
        sign_segments(
            &b64(header.to_string().as_bytes()),
            &b64(claims("orders:write").to_string().as_bytes()),
            &key,
            jsonwebtoken::Algorithm::HS256,
        )
    };
    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"at+jwt"}"#),
        b64(claims("orders:write").to_string().as_bytes())
    );
    let alg_none_with_sig = format!(
        "{}.{}.{s}",
        b64(br#"{"alg":"none","typ":"at+jwt","kid":"rsa-1"}"#),
        b64(claims("orders:write").to_string().as_bytes())
    );
    let rs384_for_rs256_key = sign_json(
        &json!({"alg": "RS384", "typ": "at+jwt", "kid": "rsa-1"}),
        &claims("orders:write"),
        TestKey::Rsa1,
    );
    let now = issuer::now();

    use Code::{PermissionDenied as Denied, Unauthenticated as Unauth};
    vec![
        Case {
            name: "no authorization header",
            rpc: Rpc::Create,
            authorization: vec![],
            code: Unauth,
            challenge: "Bearer",
        },
        Case {
            name: "Basic scheme",
            rpc: Rpc::Create,
            authorization: vec!["Basic dXNlcjpwYXNz".into()],
            code: Unauth,
            challenge: "Bearer",
        },
        Case {
            name: "Bearer with nothing after it",
            rpc: Rpc::Create,
            authorization: vec!["Bearer".into()],
            code: Unauth,
            challenge: r#"Bearer error="invalid_request", error_description="no token after `Bearer`""#,
        },
        Case {
            name: "two authorization values",
            rpc: Rpc::Create,
            authorization: vec![format!("Bearer {valid}"), format!("Bearer {valid}")],
            code: Unauth,
            challenge: r#"Bearer error="invalid_request", error_description="several authorization values; send exactly one""#,
        },
        Case {
            name: "oversized header",
            rpc: Rpc::Create,
            authorization: bearer(&"a".repeat(9000)),
            code: Unauth,
            challenge: r#"Bearer error="invalid_request", error_description="the authorization value is too long""#,
        },
        Case {
            name: "token with a space",
            rpc: Rpc::Create,
            authorization: vec![format!("Bearer {h}.{p} {s}")],
            code: Unauth,
            challenge: r#"Bearer error="invalid_request", error_description="the bearer token is not in token68 syntax""#,
        },
        Case {
            name: "two segments",
            rpc: Rpc::Create,
            authorization: bearer(&format!("{h}.{p}")),
            code: Unauth,
            challenge: leak(invalid("the token is malformed")),
        },
        Case {
            name: "four segments",
            rpc: Rpc::Create,
            authorization: bearer(&format!("{valid}.{s}")),
            code: Unauth,
            challenge: leak(invalid("the token is malformed")),
        },
        Case {
            name: "five segments (JWE)",
            rpc: Rpc::Create,
            authorization: bearer(&format!("{h}.{p}.{s}.{s}.{s}")),
            code: Unauth,
            challenge: leak(invalid("encrypted tokens are not accepted")),
        },
        Case {
            name: "character outside token68 in header",
            rpc: Rpc::Create,
            authorization: bearer(&format!("{}!.{p}.{s}", &h[1..])),
            code: Unauth,
            challenge: r#"Bearer error="invalid_request", error_description="the bearer token is not in token68 syntax""#,
        },
        Case {
            name: "bad base64 in header (standard alphabet)",
            rpc: Rpc::Create,
            authorization: bearer(&format!("{}+.{p}.{s}", &h[1..])),
            code: Unauth,
            challenge: leak(invalid("the token is malformed")),
        },
        Case {
            name: "padding after the signature",
            rpc: Rpc::Create,
            authorization: bearer(&format!("{h}.{p}.{s}==")),
            code: Unauth,
            challenge: leak(invalid("the token is malformed")),
        },
        Case {
            name: "bad base64 in payload",
            rpc: Rpc::Create,
            authorization: bearer(&sign_segments(
                &h,
                "e30+",
                &rsa,
                jsonwebtoken::Algorithm::RS256,
            )),
            code: Unauth,
            challenge: leak(invalid("the token is malformed")),
        },
        Case {
            name: "bad base64 in signature",
            rpc: Rpc::Create,
            authorization: bearer(&format!("{h}.{p}.{}~", &s[1..])),
            code: Unauth,
            challenge: leak(invalid("the token is malformed")),
        },
        Case {
            name: "header is not JSON",
            rpc: Rpc::Create,
            authorization: bearer(&sign_segments(
                &b64(b"{alg:RS256"),
                &p,
                &rsa,
                jsonwebtoken::Algorithm::RS256,
            )),
            code: Unauth,
            challenge: leak(invalid("the token is malformed")),
        },
        Case {
            name: "payload is not JSON",
            rpc: Rpc::Create,
            authorization: bearer(&sign_segments(
                &h,
                &b64(b"not json"),
                &rsa,
                jsonwebtoken::Algorithm::RS256,
            )),
            code: Unauth,
            challenge: leak(invalid("the token is malformed")),
        },
        Case {
            name: "payload is a JSON array",
            rpc: Rpc::Create,
            authorization: bearer(&sign_segments(
                &h,
                &b64(b"[1,2]"),
                &rsa,
                jsonwebtoken::Algorithm::RS256,
            )),
            code: Unauth,
            challenge: leak(invalid("the token is malformed")),
        },
        Case {
            name: "alg none, empty signature",
            rpc: Rpc::Create,
            authorization: bearer(&alg_none),
            code: Unauth,
            challenge: leak(invalid("the token is malformed")),
        },
        Case {
            name: "alg none with a signature",
            rpc: Rpc::Create,
            authorization: bearer(&alg_none_with_sig),
            code: Unauth,
            challenge: leak(invalid("the token's signing algorithm is not accepted")),
        },
        Case {
            name: "HS256 signed with the RSA public key, kid of the RSA key",
            rpc: Rpc::Create,
            authorization: bearer(&hs256_with_public_key),
            code: Unauth,
            challenge: leak(invalid(
                "the token's signing algorithm does not match its key",
            )),
        },
        Case {
            name: "HS256 signed with the RSA public key, no kid",
            rpc: Rpc::Create,
            authorization: bearer(&hs256_no_kid),
            code: Unauth,
            challenge: leak(invalid("the token's signing key is not trusted")),
        },
        Case {
            name: "alg differs from the JWK's alg",
            rpc: Rpc::Create,
            authorization: bearer(&rs384_for_rs256_key),
            code: Unauth,
            challenge: leak(invalid(
                "the token's signing algorithm does not match its key",
            )),
        },
        Case {
            name: "unknown kid",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_header(header_with("kid", json!("rsa-9")))),
            code: Unauth,
            challenge: leak(invalid("the token's signing key is not trusted")),
        },
        Case {
            name: "kid of the encryption key",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_header(header_with("kid", json!("enc-1")))),
            code: Unauth,
            challenge: leak(invalid("the token's signing key is not trusted")),
        },
        Case {
            name: "one flipped signature bit",
            rpc: Rpc::Create,
            authorization: bearer(&flipped),
            code: Unauth,
            challenge: leak(invalid("the token's signature is invalid")),
        },
        Case {
            name: "signature of another key with the same kid",
            rpc: Rpc::Create,
            authorization: bearer(&sign_json(
                &header(TestKey::Rsa1),
                &claims("orders:write"),
                TestKey::Rsa2,
            )),
            code: Unauth,
            challenge: leak(invalid("the token's signature is invalid")),
        },
        Case {
            name: "expired",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(with_claim("exp", json!(now - 120)))),
            code: Unauth,
            challenge: leak(invalid("the token has expired")),
        },
        Case {
            name: "nbf in the future",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(with_claim("nbf", json!(now + 600)))),
            code: Unauth,
            challenge: leak(invalid("the token is not valid yet")),
        },
        Case {
            name: "iat in the future",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(with_claim("iat", json!(now + 600)))),
            code: Unauth,
            challenge: leak(invalid("the token was issued in the future")),
        },
        Case {
            name: "no exp",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(without_claim("exp"))),
            code: Unauth,
            challenge: leak(invalid("the token lacks a required claim")),
        },
        Case {
            name: "exp as a string",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(with_claim(
                "exp",
                json!((now + 300).to_string()),
            ))),
            code: Unauth,
            challenge: leak(invalid("the token has an invalid claim")),
        },
        Case {
            name: "exp negative",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(with_claim("exp", json!(-1)))),
            code: Unauth,
            challenge: leak(invalid("the token has an invalid claim")),
        },
        Case {
            name: "wrong iss",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(with_claim(
                "iss",
                json!("https://evil.test/"),
            ))),
            code: Unauth,
            challenge: leak(invalid("the token's issuer is not trusted")),
        },
        Case {
            name: "iss with a trailing difference",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(with_claim(
                "iss",
                json!("https://issuer.test"),
            ))),
            code: Unauth,
            challenge: leak(invalid("the token's issuer is not trusted")),
        },
        Case {
            name: "no iss",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(without_claim("iss"))),
            code: Unauth,
            challenge: leak(invalid("the token lacks a required claim")),
        },
        Case {
            name: "iss as an array",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(with_claim(
                "iss",
                json!([issuer::ISSUER]),
            ))),
            code: Unauth,
            challenge: leak(invalid("the token has an invalid claim")),
        },
        Case {
            name: "wrong aud",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(with_claim("aud", json!("billing-api")))),
            code: Unauth,
            challenge: leak(invalid("the token is not meant for this service")),
        },
        Case {
            name: "aud array without ours",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(with_claim(
                "aud",
                json!(["billing-api", "Orders-Api"]),
            ))),
            code: Unauth,
            challenge: leak(invalid("the token is not meant for this service")),
        },
        Case {
            name: "no aud",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(without_claim("aud"))),
            code: Unauth,
            challenge: leak(invalid("the token lacks a required claim")),
        },
        Case {
            name: "crit naming an unknown parameter",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_header(header_with("crit", json!(["exp-ext"])))),
            code: Unauth,
            challenge: leak(invalid("the token uses an unsupported critical header")),
        },
        Case {
            name: "typ JWT under the strict profile",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_header(header_with("typ", json!("JWT")))),
            code: Unauth,
            challenge: leak(invalid("the token is not an access token")),
        },
        Case {
            name: "no typ under the strict profile",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_header(header_without("typ"))),
            code: Unauth,
            challenge: leak(invalid("the token is not an access token")),
        },
        Case {
            name: "nested JWT (cty: JWT)",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_header(header_with("cty", json!("JWT")))),
            code: Unauth,
            challenge: leak(invalid("nested tokens are not accepted")),
        },
        Case {
            name: "no scope claim",
            rpc: Rpc::Create,
            authorization: bearer(&write_token_with(without_claim("scope"))),
            code: Denied,
            challenge: r#"Bearer error="insufficient_scope", scope="orders:write""#,
        },
        Case {
            name: "scope that is only a prefix",
            rpc: Rpc::Create,
            authorization: bearer(&issuer::token(TestKey::Rsa1, "orders:writer orders:read")),
            code: Denied,
            challenge: r#"Bearer error="insufficient_scope", scope="orders:write""#,
        },
        Case {
            name: "scope in other case",
            rpc: Rpc::Create,
            authorization: bearer(&issuer::token(TestKey::Rsa1, "Orders:Write")),
            code: Denied,
            challenge: r#"Bearer error="insufficient_scope", scope="orders:write""#,
        },
        Case {
            name: "any-of with none held",
            rpc: Rpc::Get,
            authorization: bearer(&issuer::token(TestKey::Rsa1, "orders:write")),
            code: Denied,
            challenge: r#"Bearer error="insufficient_scope", scope="orders:read orders:admin""#,
        },
        Case {
            name: "all-of with one missing",
            rpc: Rpc::Cancel,
            authorization: bearer(&issuer::token(TestKey::Rsa1, "orders:write")),
            code: Denied,
            challenge: r#"Bearer error="insufficient_scope", scope="orders:write orders:cancel""#,
        },
    ]
}

fn header_without(name: &str) -> Value {
    let mut h = header(TestKey::Rsa1);
    h.as_object_mut().map(|m| m.remove(name));
    h
}

fn write_token_header(header: Value) -> String {
    sign_json(&header, &claims("orders:write"), TestKey::Rsa1)
}

/// The expected values are built at run time; the table keeps `&'static str`.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

async fn call(client: &mut OrdersClient<Channel>, case: &Case) -> Result<(), tonic::Status> {
    fn with_auth<T>(message: T, values: &[String]) -> Request<T> {
        let mut request = Request::new(message);
        for value in values {
            let value = MetadataValue::try_from(value.as_str()).expect("test header is ASCII");
            request.metadata_mut().append("authorization", value);
        }
        request
    }
    let values = &case.authorization;
    match case.rpc {
        Rpc::Create => client
            .create_order(with_auth(
                CreateOrderRequest {
                    item: "widget".into(),
                    quantity: 1,
                },
                values,
            ))
            .await
            .map(drop),
        Rpc::Get => client
            .get_order(with_auth(GetOrderRequest { id: "1".into() }, values))
            .await
            .map(drop),
        Rpc::Cancel => client
            .cancel_order(with_auth(CancelOrderRequest { id: "1".into() }, values))
            .await
            .map(drop),
    }
}

#[tokio::test]
async fn every_bad_credential_gets_its_code_and_challenge() {
    let store = Store::default();
    let server = orders_server(orders_layer(), store.clone())
        .await
        .expect("bind loopback");
    let mut client = OrdersClient::new(server.channel().await.expect("connect"));

    let cases = cases();
    assert!(cases.len() >= 40, "the catalogue has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        match call(&mut client, case).await {
            Ok(()) => failures.push(format!("{}: accepted", case.name)),
            Err(status) => {
                let got = challenge(&status);
                if status.code() != case.code || got != case.challenge {
                    failures.push(format!(
                        "{}: got {:?} {got:?}, want {:?} {:?}",
                        case.name,
                        status.code(),
                        case.code,
                        case.challenge
                    ));
                }
                for value in &case.authorization {
                    let token = value.trim_start_matches("Bearer ");
                    if token.len() > 8 && (status.message().contains(token) || got.contains(token))
                    {
                        failures.push(format!("{}: the token is echoed back", case.name));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(store.is_empty(), "no refused call may reach a handler");
    server.stop().await;
}

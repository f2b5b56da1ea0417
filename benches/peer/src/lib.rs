//! The tonic 0.12 side of the peer benchmark: the `orders.v1.Orders/WhoAmI` RPC served by
//! tonic 0.12, bare or behind [`jwt_authorizer`]'s layer.
//!
//! jwt-authorizer 0.15 is built for tonic 0.12 (its service needs `S::Response:
//! From<AuthError>`, implemented only for tonic 0.12's response type), so it cannot guard our
//! tonic 0.14 servers. It guards a tonic 0.12 server instead; gRPC is the same on the wire, so
//! the benchmark's one tonic 0.14 client (`examples::pb::orders_client::OrdersClient`) calls
//! every server. The messages are declared by hand with prost 0.13 (same field numbers as
//! `examples/proto/orders.proto`) and the service is written as tonic 0.12's generated code
//! would be, so no `protoc` or build script is needed.
//!
//! The handler does what our generated code and `OrderBook::who_am_i` do for a rule of
//! `authenticated`: it refuses a call without verified claims, then answers with the subject
//! and the scopes.

// tonic 0.12 fixes these signatures (`Result<_, Status>` for handlers and interceptors), and its
// `Status` is large.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use jsonwebtoken9::TokenData;
use serde::Deserialize;
use tonic012::body::BoxBody;
use tonic012::codec::ProstCodec;
use tonic012::server::{Grpc, NamedService, UnaryService};
use tonic012::{Request, Response, Status};

/// The part of the access token the handler reads, as a jwt-authorizer user declares it.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// `sub`.
    #[serde(default)]
    pub sub: Option<String>,
    /// `scope`: space-separated scopes.
    #[serde(default)]
    pub scope: Option<String>,
}

/// `orders.v1.WhoAmIRequest` (no fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WhoAmIRequest {}

/// `orders.v1.WhoAmIResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WhoAmIResponse {
    /// Field 1: the caller's subject.
    #[prost(string, tag = "1")]
    pub subject: String,
    /// Field 2: the caller's scopes.
    #[prost(string, repeated, tag = "2")]
    pub scopes: Vec<String>,
}

/// The gRPC path of `WhoAmI`, the same as the tonic 0.14 service's.
pub const WHO_AM_I: &str = "/orders.v1.Orders/WhoAmI";

/// `WhoAmI`: the rule is `authenticated`, so verified claims must be present; no scope needed.
fn who_am_i(request: Request<WhoAmIRequest>) -> Result<Response<WhoAmIResponse>, Status> {
    let claims = &request
        .extensions()
        .get::<TokenData<Claims>>()
        .ok_or_else(|| Status::unauthenticated("no verified token"))?
        .claims;
    Ok(Response::new(WhoAmIResponse {
        subject: claims.sub.clone().unwrap_or_default(),
        scopes: claims
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    }))
}

#[derive(Debug, Clone, Copy)]
struct WhoAmISvc;

impl UnaryService<WhoAmIRequest> for WhoAmISvc {
    type Response = WhoAmIResponse;
    type Future = std::future::Ready<Result<Response<WhoAmIResponse>, Status>>;

    fn call(&mut self, request: Request<WhoAmIRequest>) -> Self::Future {
        std::future::ready(who_am_i(request))
    }
}

/// `orders.v1.Orders` on tonic 0.12, with `WhoAmI` only (the other methods answer
/// `UNIMPLEMENTED`), shaped like tonic-build 0.12's output.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrdersServer012;

impl NamedService for OrdersServer012 {
    const NAME: &'static str = "orders.v1.Orders";
}

impl tower_service::Service<http::Request<BoxBody>> for OrdersServer012 {
    type Response = http::Response<BoxBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<BoxBody>) -> Self::Future {
        if request.uri().path() == WHO_AM_I {
            Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::<WhoAmIResponse, WhoAmIRequest>::default());
                Ok(grpc.unary(WhoAmISvc, request).await)
            })
        } else {
            Box::pin(async move { Ok(Status::unimplemented("").into_http()) })
        }
    }
}

/// The no-auth baseline's claims, inserted by [`fixed_claims`] so that the handler runs the
/// same code as behind jwt-authorizer.
pub fn fixed_claims(mut request: Request<()>) -> Result<Request<()>, Status> {
    request.extensions_mut().insert(TokenData {
        header: jsonwebtoken9::Header::new(jsonwebtoken9::Algorithm::RS256),
        claims: Claims {
            sub: Some("bench-user".to_owned()),
            scope: Some("orders:read orders:write".to_owned()),
        },
    });
    Ok(request)
}

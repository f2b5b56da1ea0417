// `#[protect(server = …)]` names the tonic server when the macro cannot find it: a trait
// imported under another name, or a server that is not in scope; generic impls included.
#![deny(unused_imports)]

use std::marker::PhantomData;

use oauth_grpc::ProtectedService;
use oauth_grpc_tests::pb::ping_server::Ping as PingService;
use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

struct Renamed;

#[oauth_grpc::protect(server = ping_server::PingServer)]
#[tonic::async_trait]
impl PingService for Renamed {
    #[require_scope("ping:send")]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

struct Generic<T>(PhantomData<fn() -> T>);

// In any order with `default =`, with a full path.
#[oauth_grpc::protect(
    server = ::oauth_grpc_tests::pb::ping_server::PingServer,
    default = require_scope("ping:send"),
)]
#[tonic::async_trait]
impl<T> PingService for Generic<T>
where
    T: Send + Sync + 'static,
{
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {
    assert_eq!(Renamed::POLICY.name(), "ui.v1.Ping");
    assert_eq!(Renamed::POLICY.methods()[1].path(), "/ui.v1.Ping/Pong");
    assert_eq!(<Generic<u8> as ProtectedService>::POLICY.methods()[0].path(), "/ui.v1.Ping/Ping");
}

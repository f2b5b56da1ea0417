// A generic impl of a trait named alone: the service name does not depend on the type
// parameters, so bounds and `where` clauses stay the user's.
#![deny(unused_imports)]

use std::marker::PhantomData;

use oauth_grpc::ProtectedService;
use oauth_grpc_tests::pb::ping_server::{Ping, PingServer};
use oauth_grpc_tests::pb::Msg;
use tonic::{Request, Response, Status};

struct MyPing<T> {
    _marker: PhantomData<fn() -> T>,
}

#[oauth_grpc::protect]
#[tonic::async_trait]
impl<T: Send + Sync + 'static> Ping for MyPing<T> {
    #[require_scope("ping:send")]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

trait Store: Send + Sync + 'static {}
impl Store for () {}

struct Stored<S, const N: usize>(S);

#[oauth_grpc::protect(default = authenticated)]
#[tonic::async_trait]
impl<S, const N: usize> Ping for Stored<S, N>
where
    S: Store,
{
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {
    let _server = PingServer::new(MyPing::<u8> { _marker: PhantomData });
    let _stored = PingServer::new(Stored::<(), 3>(()));
    assert_eq!(MyPing::<u8>::POLICY.methods()[0].path(), "/ui.v1.Ping/Ping");
    assert_eq!(<Stored<(), 3> as ProtectedService>::POLICY.methods()[1].path(), "/ui.v1.Ping/Pong");
}

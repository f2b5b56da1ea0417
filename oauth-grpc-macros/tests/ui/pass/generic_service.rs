// A generic service struct with bounds and a `where` clause keeps them in both impls.
use std::marker::PhantomData;

use oauth_grpc::ProtectedService;
use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

trait Backend: Send + Sync + 'static {
    fn name(&self) -> String;
}

struct Memory;
impl Backend for Memory {
    fn name(&self) -> String {
        "memory".into()
    }
}

struct Svc<B, T = ()> {
    backend: B,
    _marker: PhantomData<fn() -> T>,
}

#[oauth_grpc::protect]
#[tonic::async_trait]
impl<B: Backend, T> ping_server::Ping for Svc<B, T>
where
    T: Send + Sync + 'static,
{
    #[require_scope("ping:send")]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg { text: self.backend.name() }))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {
    let svc = Svc::<Memory, u8> { backend: Memory, _marker: PhantomData };
    let _server = oauth_grpc_tests::pb::ping_server::PingServer::new(svc);
    assert_eq!(<Svc<Memory, u8> as ProtectedService>::POLICY.methods().len(), 2);
}

// `use oauth_grpc::prelude::*;` brings `protect` and the rule attributes into scope; the rules
// may also be written with their prelude path.
#![deny(unused_imports)]

use oauth_grpc::prelude::*;
use oauth_grpc::ProtectedService;
use oauth_grpc_tests::pb::ping_server::{Ping, PingServer};
use oauth_grpc_tests::pb::Msg;
use tonic::{Request, Response, Status};

struct Svc;

#[protect]
#[tonic::async_trait]
impl Ping for Svc {
    #[require_any_scope("ping:send", "ping:admin")]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[oauth_grpc::prelude::public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {
    let _server = PingServer::new(Svc);
    assert_eq!(Svc::POLICY.methods()[0].rule().to_string(), "any of: ping:send, ping:admin");
}

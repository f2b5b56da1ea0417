// A forgotten `#[protect]`: with the prelude imported, the bare rules reach oauth-grpc, which
// says what is missing (without it, rustc only finds no attribute `require_scope`).
use oauth_grpc::prelude::*;
use oauth_grpc_tests::pb::ping_server::Ping;
use oauth_grpc_tests::pb::Msg;
use tonic::{Request, Response, Status};

struct Svc;

#[tonic::async_trait]
impl Ping for Svc {
    #[require_scope("ping:send")]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

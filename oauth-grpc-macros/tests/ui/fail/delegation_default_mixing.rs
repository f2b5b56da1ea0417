// The impl-wide `delegation =` and a `delegation =` inside `default = …`: one of the two.
use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

struct Svc;

#[oauth_grpc::protect(delegation = forbid, default = require_scope("ping:send", delegation = allow))]
#[tonic::async_trait]
impl ping_server::Ping for Svc {
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

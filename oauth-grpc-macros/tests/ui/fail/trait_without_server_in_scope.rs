// A trait named alone needs its tonic server type in scope, which is where the service name
// comes from; here `PingServer` is not imported.
use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

struct Svc;

use ping_server::Ping;

#[oauth_grpc::protect]
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

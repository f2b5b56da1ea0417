// `Bound` may be a catalog variant (`use EchoScope::Bound`) or a constant, so the macro reads it
// as a scope, not as a misspelt flag: where there is none, rustc says so, at the word.
use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

struct Svc;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl ping_server::Ping for Svc {
    #[require_scope("ping:send", Bound)]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

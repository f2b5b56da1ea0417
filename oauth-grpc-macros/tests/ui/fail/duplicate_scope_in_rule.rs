use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

struct Svc;

oauth_grpc::scopes! {
    enum PingScope {
        Send = "ping:send",
    }
}

#[oauth_grpc::protect]
#[tonic::async_trait]
impl ping_server::Ping for Svc {
    #[require_scope("ping:send", "ping:admin", "ping:send")]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[require_any_scope(PingScope::Send, PingScope::Send)]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}
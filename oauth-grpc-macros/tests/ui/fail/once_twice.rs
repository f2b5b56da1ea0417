// `once` a single time per rule, in a method's rule and in the default, beside `bound` too.
use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

struct Svc;

#[oauth_grpc::protect(default = authenticated(once, once))]
#[tonic::async_trait]
impl ping_server::Ping for Svc {
    #[require_scope("ping:send", once, bound, once)]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

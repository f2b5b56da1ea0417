// `#[tonic::async_trait]` first: the macro sees methods already turned into boxed futures.
use oauth_grpc::{ProtectedService, Rule};
use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

struct Svc;

#[tonic::async_trait]
#[oauth_grpc::protect]
impl ping_server::Ping for Svc {
    #[require_any_scope("ping:send", "ping:admin")]
    async fn ping(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    #[authenticated]
    async fn pong(&self, _request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {
    assert_eq!(Svc::POLICY.methods()[1].rule(), Rule::Authenticated);
    assert_eq!(Svc::POLICY.methods()[0].rule().to_string(), "any of: ping:send, ping:admin");
}

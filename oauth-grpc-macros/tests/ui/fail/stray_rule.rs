use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

struct Svc;

// Rules outside a `#[protect]` impl do nothing by themselves, so they are errors.
#[oauth_grpc::require_scope("ping:send")]
fn helper() {}

#[tonic::async_trait]
impl ping_server::Ping for Svc {
    #[oauth_grpc::public]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {
    helper();
}
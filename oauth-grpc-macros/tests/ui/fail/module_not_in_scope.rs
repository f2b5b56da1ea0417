// The trait named by a module path that is not imported: rustc reports the path, once.
use oauth_grpc_tests::pb::Msg;
use tonic::{Request, Response, Status};

struct Svc;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl ping_server::Ping for Svc {
    #[public]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

// `#[protect]` first, `#[tonic::async_trait]` second: the macro sees `async fn`s.
use oauth_grpc::{ProtectedService, Rule};
use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

struct Svc;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl ping_server::Ping for Svc {
    #[require_scope("ping:send")]
    async fn ping(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {
    let table = Svc::POLICY;
    assert_eq!(table.name(), "ui.v1.Ping");
    assert_eq!(table.methods()[0].path(), "/ui.v1.Ping/Ping");
    assert_eq!(table.methods()[1].rule(), Rule::Public);
}

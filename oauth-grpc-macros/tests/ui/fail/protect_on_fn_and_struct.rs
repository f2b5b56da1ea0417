use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

struct Svc;

#[oauth_grpc::protect]
async fn ping(_: Request<Msg>) -> Result<Response<Msg>, Status> {
    Ok(Response::new(Msg::default()))
}

#[oauth_grpc::protect]
struct Other;

fn main() {
    let _ = (ping_server::SERVICE_NAME, Svc, Other);
}
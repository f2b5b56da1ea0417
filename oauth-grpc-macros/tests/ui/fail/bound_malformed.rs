// `bound` is a bare flag after the scopes: no value, no arguments, no scope after it, and it
// does not stand in for the scopes of `require_scope`.
use oauth_grpc_tests::pb::{echo_server, Msg};
use tokio_stream::Empty;
use tonic::{Request, Response, Status, Streaming};

struct Svc;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl echo_server::Echo for Svc {
    #[require_scope("echo:say", bound = true)]
    async fn say(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[authenticated(bound(mtls))]
    async fn shout(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    type SayManyStream = Empty<Result<Msg, Status>>;

    #[require_any_scope("echo:say", bound, "echo:loud")]
    async fn say_many(&self, _: Request<Msg>) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(tokio_stream::empty()))
    }

    #[require_scope(bound)]
    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public(rpc = "GetHTTPStatus")]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

// A lowercase word near `bound` is a misspelt flag, not a scope, in a rule and in the
// default. (`Bound` stays a scope path: `bound_capitalised.rs`.)
use oauth_grpc_tests::pb::{echo_server, Msg};
use tokio_stream::Empty;
use tonic::{Request, Response, Status, Streaming};

struct Svc;

#[oauth_grpc::protect(default = require_scope("echo:say", bounds))]
#[tonic::async_trait]
impl echo_server::Echo for Svc {
    #[require_scope("echo:say", bund)]
    async fn say(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[authenticated(bounded)]
    async fn shout(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    type SayManyStream = Empty<Result<Msg, Status>>;

    #[require_any_scope("echo:say", sender_bound)]
    async fn say_many(&self, _: Request<Msg>) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(tokio_stream::empty()))
    }

    #[require_scope("echo:collect")]
    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public(rpc = "GetHTTPStatus")]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

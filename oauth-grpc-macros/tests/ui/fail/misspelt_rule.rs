// Near misses of the rule names are ours to report, with the right name; the attributes a
// method carries on purpose are left alone.
use oauth_grpc_tests::pb::{echo_server, Msg};
use tokio_stream::Stream;
use std::pin::Pin;
use tonic::{Request, Response, Status, Streaming};

struct Svc;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl echo_server::Echo for Svc {
    #[require_scopes("echo:say")]
    async fn say(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    #[require_scope_any("echo:say", "echo:loud")]
    async fn shout(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    type SayManyStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send + 'static>>;

    #[oauth_grpc::authenticate]
    async fn say_many(&self, _: Request<Msg>) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    #[allow(clippy::unused_async)]
    #[doc = "Collects."]
    #[inline]
    #[pubic]
    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[cfg_attr(all(), allow(unused_variables))]
    #[public(rpc = "GetHTTPStatus")]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

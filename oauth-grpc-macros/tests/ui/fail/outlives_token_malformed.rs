// `#[outlives_token]` needs a reason, belongs on a streaming rpc with a token, and once.
use oauth_grpc_tests::pb::{echo_server, Msg};
use tokio_stream::Stream;
use std::pin::Pin;
use tonic::{Request, Response, Status, Streaming};

struct Svc;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl echo_server::Echo for Svc {
    #[require_scope("echo:say")]
    #[outlives_token(reason = "unary calls are never cut")]
    async fn say(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    #[require_scope("echo:loud")]
    async fn shout(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    #[outlives_token]
    type SayManyStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send + 'static>>;

    #[authenticated]
    #[outlives_token]
    async fn say_many(&self, _: Request<Msg>) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    #[require_scope("echo:collect")]
    #[outlives_token(reason = "")]
    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public(rpc = "GetHTTPStatus")]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

struct Other;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl echo_server::Echo for Other {
    #[require_scope("echo:say")]
    async fn say(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    #[require_scope("echo:loud")]
    async fn shout(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    type SayManyStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send + 'static>>;

    #[authenticated]
    #[outlives_token(because = "typo")]
    async fn say_many(&self, _: Request<Msg>) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    #[require_scope("echo:collect")]
    #[outlives_token(reason = "one")]
    #[outlives_token(reason = "two")]
    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public(rpc = "GetHTTPStatus")]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

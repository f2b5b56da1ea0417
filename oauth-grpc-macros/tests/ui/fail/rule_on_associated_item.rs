use oauth_grpc_tests::pb::Msg;
use tonic::{Request, Response, Status};


use oauth_grpc_tests::pb::echo_server;
use tonic::Streaming;

struct Echo;

#[oauth_grpc::protect(default = authenticated)]
#[tonic::async_trait]
impl echo_server::Echo for Echo {
    async fn say(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    async fn shout(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[require_scope("echo:say")]
    type SayManyStream = tokio_stream::Empty<Result<Msg, Status>>;

    async fn say_many(&self, _: Request<Msg>) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(tokio_stream::empty()))
    }

    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public(rpc = "GetHTTPStatus")]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}
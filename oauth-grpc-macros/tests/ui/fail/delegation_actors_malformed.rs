// `actors(…)`: string literals, at least one, none empty or with spaces, none twice; the
// policies `allow` and `forbid` take no arguments, and `actors` needs its list.
use oauth_grpc_tests::pb::{echo_server, ping_server, Msg};
use tonic::{Request, Response, Status, Streaming};

struct Svc;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl ping_server::Ping for Svc {
    #[require_scope("ping:send", delegation = actors(assistant))]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[authenticated(delegation = forbid("assistant"))]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

struct Echo;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl echo_server::Echo for Echo {
    #[require_scope("echo:say", delegation = actors())]
    async fn say(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    #[require_scope("echo:say", delegation = actors("assistant", "", "my agent", "assistant"))]
    async fn shout(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    type SayManyStream = tokio_stream::Empty<Result<Msg, Status>>;

    #[authenticated(delegation = actors)]
    async fn say_many(&self, _: Request<Msg>) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(tokio_stream::empty()))
    }

    #[authenticated]
    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

// `once` is a bare flag after the scopes: no value, no arguments, no scope after it (nor after
// `bound, once`), and it does not stand in for the scopes of `require_scope`.
use oauth_grpc_tests::pb::{echo_server, ping_server, Msg};
use tokio_stream::Empty;
use tonic::{Request, Response, Status, Streaming};

struct Svc;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl echo_server::Echo for Svc {
    #[require_scope("echo:say", once = true)]
    async fn say(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[authenticated(once(jti))]
    async fn shout(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    type SayManyStream = Empty<Result<Msg, Status>>;

    #[require_any_scope("echo:say", once, "echo:loud")]
    async fn say_many(&self, _: Request<Msg>) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(tokio_stream::empty()))
    }

    #[require_scope(once)]
    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public(rpc = "GetHTTPStatus")]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

struct Pinger;

#[oauth_grpc::protect(default = require_scope("ping:send", once = "yes"))]
#[tonic::async_trait]
impl ping_server::Ping for Pinger {
    #[require_scope("ping:send", bound, once, "ping:loud")]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[require_scope(bound, once)]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

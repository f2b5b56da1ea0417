// A lowercase word near `once` is a misspelt flag, not a scope, in a rule and in the default;
// `once = …` with a misspelt key says to write the flag alone. (`Once` stays a scope path,
// as `Bound` does: `bound_capitalised.rs`.)
use oauth_grpc_tests::pb::{echo_server, ping_server, Msg};
use tokio_stream::Empty;
use tonic::{Request, Response, Status, Streaming};

struct Svc;

#[oauth_grpc::protect(default = require_scope("echo:say", onse))]
#[tonic::async_trait]
impl echo_server::Echo for Svc {
    #[require_scope("echo:say", onc)]
    async fn say(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[authenticated(one)]
    async fn shout(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    type SayManyStream = Empty<Result<Msg, Status>>;

    #[require_any_scope("echo:say", once_only)]
    async fn say_many(&self, _: Request<Msg>) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(tokio_stream::empty()))
    }

    #[require_scope("echo:collect", bound, ounce)]
    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public(rpc = "GetHTTPStatus")]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

struct Pinger;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl ping_server::Ping for Pinger {
    #[require_scope("ping:send", onse = true)]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

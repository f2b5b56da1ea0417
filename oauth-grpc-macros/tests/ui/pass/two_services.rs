// Two protected services in one crate, one of them with an impl-level default rule, and both
// in one PolicySet.
use oauth_grpc::{PolicySet, ProtectedService, Rule};
use oauth_grpc_tests::pb::{echo_server, ping_server, Msg};
use tonic::{Request, Response, Status, Streaming};

struct Pinger;
struct Echoer;

#[oauth_grpc::protect(default = require_scope("ping:send"))]
#[tonic::async_trait]
impl ping_server::Ping for Pinger {
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

#[oauth_grpc::protect(default = authenticated)]
#[tonic::async_trait]
impl echo_server::Echo for Echoer {
    async fn say(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[require_any_scope("echo:loud", "echo:admin")]
    async fn shout(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

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

fn main() {
    let set = PolicySet::new().service::<Pinger>().service::<Echoer>();
    assert_eq!(set.methods().count(), 7);
    assert_eq!(set.lookup("/ui.v1.Ping/Ping").unwrap().rule().to_string(), "all of: ping:send");
    assert_eq!(set.lookup("/ui.v1.Echo/Say").unwrap().rule(), Rule::Authenticated);
    assert_eq!(Echoer::POLICY.method("GetHTTPStatus").unwrap().rule(), Rule::Public);
}

// `bound`: in a method's rule, in every rule that reads a token, in the impl's default (which a
// method with a rule of its own does not inherit), before or after `rpc =`. Only the bare word
// `bound` is the flag: `Bound` (a catalog variant here), `r#bound` and `self::bund` are scopes.
use std::pin::Pin;

use oauth_grpc::{ProtectedService, Scope};
use oauth_grpc_tests::pb::{echo_server, ping_server, Msg};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

struct Echo;

#[oauth_grpc::protect(default = require_scope("echo:say", bound))]
#[tonic::async_trait]
impl echo_server::Echo for Echo {
    // No rule of its own: the default's, `bound` included.
    async fn say(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    #[require_any_scope("echo:say", "echo:loud", bound)]
    async fn shout(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    type SayManyStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send + 'static>>;

    #[oauth_grpc::authenticated(bound)]
    #[outlives_token(reason = "a test of both options")]
    async fn say_many(
        &self,
        _: Request<Msg>,
    ) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    // A rule of its own replaces the default whole: not bound.
    #[require_scope("echo:collect")]
    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public(rpc = "GetHTTPStatus")]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

oauth_grpc::scopes! {
    enum PingScope {
        Bound = "ping:bound",
    }
}
use PingScope::Bound;

struct Ping;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl ping_server::Ping for Ping {
    #[require_scope(Bound, bound, rpc = "Ping")]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[authenticated(rpc = "Pong", bound)]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

#[allow(non_upper_case_globals)]
const r#bound: Scope = Scope::from_static("ping:raw");
#[allow(non_upper_case_globals)]
const bund: Scope = Scope::from_static("ping:lowercase");

struct Unbound;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl ping_server::Ping for Unbound {
    #[require_scope(r#bound)]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[require_scope(self::bund)]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn bound_flags<S: ProtectedService>() -> Vec<(&'static str, bool)> {
    S::POLICY
        .methods()
        .iter()
        .map(|m| (m.rpc(), m.sender_constrained()))
        .collect()
}

fn main() {
    assert_eq!(
        bound_flags::<Echo>(),
        [
            ("Say", true),
            ("Shout", true),
            ("SayMany", true),
            ("Collect", false),
            ("GetHTTPStatus", false),
        ]
    );
    let say_many = Echo::POLICY.method("SayMany").unwrap();
    assert_eq!(say_many.outlives_token(), Some("a test of both options"));
    assert_eq!(Echo::POLICY.method("Say").unwrap().rule().to_string(), "all of: echo:say");

    assert_eq!(bound_flags::<Ping>(), [("Ping", true), ("Pong", true)]);
    assert_eq!(Ping::POLICY.method("Ping").unwrap().rule().to_string(), "all of: ping:bound");

    assert_eq!(bound_flags::<Unbound>(), [("Ping", false), ("Pong", false)]);
    let scopes: Vec<String> = Unbound::POLICY.methods().iter().map(|m| m.rule().to_string()).collect();
    assert_eq!(scopes, ["all of: ping:raw", "all of: ping:lowercase"]);
}

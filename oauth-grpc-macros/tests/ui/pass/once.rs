// `once`: in a method's rule, in every rule that reads a token, in the impl's default (which a
// method with a rule of its own does not inherit), beside `bound` in either order, before or
// after `rpc =` and `delegation =`. Only the bare word `once` is the flag: `Once` (a catalog
// variant here), `r#once` and `self::onc` are scopes.
use std::pin::Pin;

use oauth_grpc::{Delegation, ProtectedService, Scope};
use oauth_grpc_tests::pb::{echo_server, ping_server, Msg};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

struct Echo;

#[oauth_grpc::protect(default = require_scope("echo:say", once))]
#[tonic::async_trait]
impl echo_server::Echo for Echo {
    // No rule of its own: the default's, `once` included.
    async fn say(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    #[require_any_scope("echo:say", "echo:loud", once, bound)]
    async fn shout(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    type SayManyStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send + 'static>>;

    #[oauth_grpc::authenticated(bound, once)]
    #[outlives_token(reason = "a test of every option")]
    async fn say_many(
        &self,
        _: Request<Msg>,
    ) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    // A rule of its own replaces the default whole: not once.
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
        Once = "ping:once",
    }
}
use PingScope::Once;

struct Ping;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl ping_server::Ping for Ping {
    #[require_scope(Once, once, rpc = "Ping")]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[authenticated(rpc = "Pong", once, delegation = forbid)]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

#[allow(non_upper_case_globals)]
const r#once: Scope = Scope::from_static("ping:raw");
#[allow(non_upper_case_globals)]
const onc: Scope = Scope::from_static("ping:lowercase");

struct Repeatable;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl ping_server::Ping for Repeatable {
    #[require_scope(r#once)]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[require_scope(self::onc, bound)]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

/// Each method's (rpc, once, bound).
fn flags<S: ProtectedService>() -> Vec<(&'static str, bool, bool)> {
    S::POLICY
        .methods()
        .iter()
        .map(|m| (m.rpc(), m.once(), m.sender_constrained()))
        .collect()
}

fn main() {
    assert_eq!(
        flags::<Echo>(),
        [
            ("Say", true, false),
            ("Shout", true, true),
            ("SayMany", true, true),
            ("Collect", false, false),
            ("GetHTTPStatus", false, false),
        ]
    );
    let say_many = Echo::POLICY.method("SayMany").unwrap();
    assert_eq!(say_many.outlives_token(), Some("a test of every option"));
    assert_eq!(Echo::POLICY.method("Say").unwrap().rule().to_string(), "all of: echo:say");

    assert_eq!(flags::<Ping>(), [("Ping", true, false), ("Pong", true, false)]);
    assert_eq!(Ping::POLICY.method("Ping").unwrap().rule().to_string(), "all of: ping:once");
    assert_eq!(Ping::POLICY.method("Pong").unwrap().delegation(), Delegation::Forbidden);

    assert_eq!(flags::<Repeatable>(), [("Ping", false, false), ("Pong", false, true)]);
    let scopes: Vec<String> = Repeatable::POLICY.methods().iter().map(|m| m.rule().to_string()).collect();
    assert_eq!(scopes, ["all of: ping:raw", "all of: ping:lowercase"]);
}

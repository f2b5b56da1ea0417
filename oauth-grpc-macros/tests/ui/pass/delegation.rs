// `delegation = allow | forbid | actors("…")`: in a method's rule, with `bound` and `rpc =`
// in any order, in the impl's default rule (inherited with it), and impl-wide in
// `#[protect(delegation = …)]` for every rule that does not say one. A public method reads no
// token: the impl-wide policy does not apply to it.
use std::pin::Pin;

use oauth_grpc::{Delegation, ProtectedService};
use oauth_grpc_tests::pb::{echo_server, ping_server, Msg};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

struct Echo;

#[oauth_grpc::protect(default = require_scope("echo:say", delegation = actors("assistant")))]
#[tonic::async_trait]
impl echo_server::Echo for Echo {
    // No rule of its own: the default's, its delegation policy included.
    async fn say(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    #[require_any_scope("echo:say", "echo:loud", delegation = forbid, bound)]
    async fn shout(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    type SayManyStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send + 'static>>;

    #[oauth_grpc::authenticated(delegation = actors("assistant", "billing-service"))]
    async fn say_many(
        &self,
        _: Request<Msg>,
    ) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    // A rule of its own replaces the default whole: delegation allowed.
    #[require_scope("echo:collect")]
    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public(rpc = "GetHTTPStatus")]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

struct Ping;

#[oauth_grpc::protect(delegation = forbid)]
#[tonic::async_trait]
impl ping_server::Ping for Ping {
    // The impl-wide policy.
    #[require_scope("ping:send", rpc = "Ping")]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    // Overridden by the rule's own.
    #[authenticated(delegation = allow, rpc = "Pong")]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn policies<S: ProtectedService>() -> Vec<(&'static str, Delegation)> {
    S::POLICY
        .methods()
        .iter()
        .map(|m| (m.rpc(), m.delegation()))
        .collect()
}

fn main() {
    assert_eq!(
        policies::<Echo>(),
        [
            ("Say", Delegation::Actors(&["assistant"])),
            ("Shout", Delegation::Forbidden),
            ("SayMany", Delegation::Actors(&["assistant", "billing-service"])),
            ("Collect", Delegation::Allowed),
            ("GetHTTPStatus", Delegation::Allowed),
        ]
    );
    assert!(Echo::POLICY.method("Shout").unwrap().sender_constrained());
    assert_eq!(
        policies::<Ping>(),
        [("Ping", Delegation::Forbidden), ("Pong", Delegation::Allowed)]
    );
}

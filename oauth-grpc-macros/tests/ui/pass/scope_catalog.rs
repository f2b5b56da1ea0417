// A scope catalog: rules take its variants, mixed with literals and `Scope` constants.
use oauth_grpc::{ProtectedService, Scope, ScopeCatalog};
use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

oauth_grpc::scopes! {
    /// Scopes of the ping API.
    pub enum PingScope {
        /// Send pings.
        Send = "ping:send",
        Admin = "ping:admin",
    }

    enum Internal {
        Debug = "ping:debug",
    }
}

const AUDIT: Scope = Scope::from_static("ping:audit");

struct Svc;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl ping_server::Ping for Svc {
    #[require_scope(PingScope::Send, "ping:extra")]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[require_any_scope(PingScope::Admin, Internal::Debug, AUDIT)]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {
    assert_eq!(PingScope::Send.as_str(), "ping:send");
    assert_eq!(PingScope::from_scope("ping:admin"), Some(PingScope::Admin));
    assert_eq!(PingScope::from_scope("ping:Admin"), None);
    assert_eq!(PingScope::VARIANTS, [PingScope::Send, PingScope::Admin]);
    assert_eq!(<PingScope as ScopeCatalog>::ALL.len(), 2);
    assert_eq!(Scope::from(PingScope::Admin).as_str(), "ping:admin");
    assert_eq!(PingScope::Send.to_string(), "ping:send");
    assert_eq!(Svc::POLICY.methods()[0].rule().to_string(), "all of: ping:send, ping:extra");
    assert_eq!(
        Svc::POLICY.methods()[1].rule().to_string(),
        "any of: ping:admin, ping:debug, ping:audit"
    );
}

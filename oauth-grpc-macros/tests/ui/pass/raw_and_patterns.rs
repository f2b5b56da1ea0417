// Parameters bound by patterns other than a plain name still get the guard, and the impl's
// own attributes and doc comments pass through.
use oauth_grpc::ProtectedService;
use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

struct Svc;

/// The ping service.
#[oauth_grpc::protect]
#[tonic::async_trait]
#[allow(clippy::needless_return)]
impl ping_server::Ping for Svc {
    /// Needs `ping:send`.
    #[require_scope("ping:send")]
    #[inline]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        return Ok(Response::new(Msg::default()));
    }

    #[authenticated]
    async fn pong(&self, ref request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.get_ref().clone()))
    }
}

fn main() {
    assert_eq!(Svc::POLICY.methods().len(), 2);
}

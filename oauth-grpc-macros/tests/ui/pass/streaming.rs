// Server- and client-streaming methods with their associated `type …Stream`, `rpc =` for a
// name that does not round-trip, and rules written with the crate path.
use std::pin::Pin;

use oauth_grpc::ProtectedService;
use oauth_grpc_tests::pb::{echo_server, Msg};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

struct Echo;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl echo_server::Echo for Echo {
    #[oauth_grpc::require_scope("echo:say")]
    async fn say(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    #[require_scope("echo:say", "echo:loud")]
    async fn shout(&self, mut request: Request<Msg>) -> Result<Response<Msg>, Status> {
        request.get_mut().text.make_ascii_uppercase();
        Ok(Response::new(request.into_inner()))
    }

    type SayManyStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send + 'static>>;

    #[require_scope("echo:say")]
    #[oauth_grpc::outlives_token(reason = "a test of the opt-out")]
    async fn say_many(
        &self,
        request: Request<Msg>,
    ) -> Result<Response<Self::SayManyStream>, Status> {
        let msg = request.into_inner();
        Ok(Response::new(Box::pin(tokio_stream::iter(vec![Ok(msg.clone()), Ok(msg)]))))
    }

    #[require_any_scope("echo:collect")]
    async fn collect(&self, request: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        let _stream = request.into_inner();
        Ok(Response::new(Msg::default()))
    }

    #[public(rpc = "GetHTTPStatus")]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg { text: "200".into() }))
    }
}

fn main() {
    let paths: Vec<&str> = Echo::POLICY.methods().iter().map(|m| m.path()).collect();
    assert_eq!(
        paths,
        [
            "/ui.v1.Echo/Say",
            "/ui.v1.Echo/Shout",
            "/ui.v1.Echo/SayMany",
            "/ui.v1.Echo/Collect",
            "/ui.v1.Echo/GetHTTPStatus",
        ]
    );
    let kinds: Vec<oauth_grpc::RpcKind> = Echo::POLICY.methods().iter().map(|m| m.kind()).collect();
    assert_eq!(
        kinds,
        [
            oauth_grpc::RpcKind::Unary,
            oauth_grpc::RpcKind::Unary,
            oauth_grpc::RpcKind::ServerStreaming,
            oauth_grpc::RpcKind::ClientStreaming,
            oauth_grpc::RpcKind::Unary,
        ]
    );
    let outlives: Vec<Option<&str>> =
        Echo::POLICY.methods().iter().map(|m| m.outlives_token()).collect();
    assert_eq!(outlives, [None, None, Some("a test of the opt-out"), None, None]);
}

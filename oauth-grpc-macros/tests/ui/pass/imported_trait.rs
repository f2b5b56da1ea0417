// The trait imported by name, as tonic's examples do: the service name comes from the
// `EchoServer` imported beside it. No import goes unused.
#![deny(unused_imports)]

use std::pin::Pin;

use oauth_grpc::ProtectedService;
use oauth_grpc_tests::pb::echo_server::{Echo, EchoServer};
use oauth_grpc_tests::pb::Msg;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

struct MyEcho;

#[oauth_grpc::protect(default = authenticated)]
#[tonic::async_trait]
impl Echo for MyEcho {
    #[require_scope("echo:say")]
    async fn say(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn shout(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    type SayManyStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send + 'static>>;

    async fn say_many(
        &self,
        request: Request<Msg>,
    ) -> Result<Response<Self::SayManyStream>, Status> {
        let msg = request.into_inner();
        Ok(Response::new(Box::pin(tokio_stream::iter(vec![Ok(msg)]))))
    }

    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public(rpc = "GetHTTPStatus")]
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

// The same trait under `#[protect]` written below `#[async_trait]`.
struct Quiet;

#[tonic::async_trait]
#[oauth_grpc::protect(default = require_scope("echo:quiet"))]
impl Echo for Quiet {
    async fn say(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }
    async fn shout(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }
    type SayManyStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send + 'static>>;
    async fn say_many(&self, _: Request<Msg>) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }
    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {
    let _server = EchoServer::new(MyEcho);
    assert_eq!(MyEcho::POLICY.name(), "ui.v1.Echo");
    let paths: Vec<&str> = MyEcho::POLICY.methods().iter().map(|m| m.path()).collect();
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
    assert_eq!(Quiet::POLICY.methods()[4].path(), "/ui.v1.Echo/GetHttpStatus");
}

// When `#[protect]` reports a mistake, the impl is kept as written and the names the rules
// and the service name use stay used: only the real error appears, no knock-on error about
// `Self::SayManyStream` and no `unused import` of the trait, the server or the catalog.
#![deny(warnings)]

use std::pin::Pin;

use oauth_grpc_tests::pb::echo_server::{Echo, EchoServer};
use oauth_grpc_tests::pb::Msg;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

oauth_grpc::scopes! {
    pub enum EchoScope {
        Say = "echo:say",
    }
}

struct Svc;

#[oauth_grpc::protect]
#[tonic::async_trait]
impl Echo for Svc {
    #[require_scope(EchoScope::Say)]
    async fn say(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    #[require_scope(EchoScope::Say)]
    async fn shout(&self, request: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    type SayManyStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send + 'static>>;

    #[require_scope(EchoScope::Say)]
    async fn say_many(&self, _: Request<Msg>) -> Result<Response<Self::SayManyStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    #[require_scope(EchoScope::Say)]
    async fn collect(&self, _: Request<Streaming<Msg>>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    // The mistake: no rule.
    async fn get_http_status(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

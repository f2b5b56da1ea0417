// `server =` takes the path of tonic's server type, once, without generic arguments.
use oauth_grpc_tests::pb::{ping_server, Msg};
use tonic::{Request, Response, Status};

struct A;

#[oauth_grpc::protect(server = ping_server::PingServer<A>)]
#[tonic::async_trait]
impl ping_server::Ping for A {
    #[public]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

struct B;

#[oauth_grpc::protect(server = "ping_server::PingServer")]
#[tonic::async_trait]
impl ping_server::Ping for B {
    #[public]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

struct C;

#[oauth_grpc::protect(server = ping_server::PingServer, server = ping_server::PingServer)]
#[tonic::async_trait]
impl ping_server::Ping for C {
    #[public]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

struct D;

#[oauth_grpc::protect(servers = ping_server::PingServer)]
#[tonic::async_trait]
impl ping_server::Ping for D {
    #[public]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

struct E;

// A type that is not a tonic server.
#[oauth_grpc::protect(server = Msg)]
#[tonic::async_trait]
impl ping_server::Ping for E {
    #[public]
    async fn ping(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }

    #[public]
    async fn pong(&self, _: Request<Msg>) -> Result<Response<Msg>, Status> {
        Ok(Response::new(Msg::default()))
    }
}

fn main() {}

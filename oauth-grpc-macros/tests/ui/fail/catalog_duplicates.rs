oauth_grpc::scopes! {
    pub enum PingScope {
        Send = "ping:send",
        Admin = "ping:admin",
        Send = "ping:other",
        Root = "ping:admin",
    }
}

fn main() {}

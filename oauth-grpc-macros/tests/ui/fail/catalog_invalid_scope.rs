oauth_grpc::scopes! {
    pub enum PingScope {
        Send = "ping send",
        Empty = "",
        Accent = "pïng",
    }
}

fn main() {}

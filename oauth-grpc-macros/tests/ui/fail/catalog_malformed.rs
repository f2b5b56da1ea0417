oauth_grpc::scopes! {
    pub enum PingScope {
        Send,
    }
}

oauth_grpc::scopes! {
    pub enum Empty {}
}

oauth_grpc::scopes! {
    pub enum Numbered {
        One = 1,
    }
}

fn main() {}

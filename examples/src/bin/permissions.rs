//! The permission report of the orders services, from their compiled access tables.
//!
//! ```text
//! cargo run -p examples --bin permissions -- --format markdown|json|csv|istio
//! cargo run -p examples --bin permissions -- --check docs/permissions.md
//! cargo run -p examples --bin permissions -- --coverage
//! cargo run -p examples --bin permissions -- replay audit.jsonl [--format json] [--allow-flips]
//! cargo run -p examples --bin permissions -- --lint [--audit audit.jsonl]
//! ```

use std::process::ExitCode;

use oauth_grpc::report::Command;

fn main() -> ExitCode {
    // The same rules `orders-server` mounts, public services included.
    let policies = examples::policies();
    Command::new(&policies)
        .descriptors(examples::pb::FILE_DESCRIPTOR_SET)
        .generated_by("cargo run -p examples --bin permissions")
        // The scopes `--lint` checks the rules against.
        .catalog::<examples::OrderScope>()
        .run(std::env::args().skip(1))
}

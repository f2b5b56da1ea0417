//! Coverage: the compiled tables against the protobuf descriptors — rpcs without a rule, and
//! rules that name no rpc.

use std::collections::BTreeMap;

use prost::Message;

use super::Streaming;

/// The descriptor set could not be read.
///
/// ```
/// use oauth_grpc::PolicySet;
/// use oauth_grpc::report::Report;
/// assert!(Report::new(&PolicySet::new()).descriptors(b"\xff\xff").is_err());
/// ```
#[derive(Debug, thiserror::Error)]
#[error(
    "the file descriptor set cannot be decoded ({0}); pass the bytes tonic-prost-build or protox wrote"
)]
pub struct DescriptorError(#[source] prost::DecodeError);

/// The rpcs of a descriptor set: full path → streaming kind.
pub(super) fn descriptor_rpcs(
    bytes: &[u8],
) -> Result<BTreeMap<String, Streaming>, DescriptorError> {
    let set = prost_types::FileDescriptorSet::decode(bytes).map_err(DescriptorError)?;
    let mut rpcs = BTreeMap::new();
    for file in &set.file {
        for service in &file.service {
            let name = match file.package() {
                "" => service.name().to_owned(),
                package => format!("{package}.{}", service.name()),
            };
            for method in &service.method {
                let kind = match (method.client_streaming(), method.server_streaming()) {
                    (false, false) => Streaming::Unary,
                    (false, true) => Streaming::Server,
                    (true, false) => Streaming::Client,
                    (true, true) => Streaming::Bidirectional,
                };
                rpcs.insert(format!("/{name}/{}", method.name()), kind);
            }
        }
    }
    Ok(rpcs)
}

/// Rpcs without a rule, and rules without an rpc, between a [`PolicySet`](crate::PolicySet) and the protobuf
/// descriptors.
///
/// ```
/// # use examples::OrderBook;
/// # use examples::pb::FILE_DESCRIPTOR_SET;
/// use oauth_grpc::PolicySet;
/// use oauth_grpc::report::Report;
///
/// // Only the Orders table against a descriptor set that also has OrdersAdmin:
/// let policies = PolicySet::new().service::<OrderBook>();
/// let coverage = Report::new(&policies).descriptors(FILE_DESCRIPTOR_SET)?.coverage()?;
/// assert_eq!(coverage.without_rule, ["/orders.v1.OrdersAdmin/ExportOrders", "/orders.v1.OrdersAdmin/PurgeCancelled"]);
/// assert!(coverage.without_rpc.is_empty());
/// # Ok::<(), oauth_grpc::report::CoverageError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Coverage {
    /// Paths in the descriptors that no table has a rule for: every call to them is refused.
    pub without_rule: Vec<String>,
    /// Paths with a rule that the descriptors do not have: a wrong `rpc =`, a renamed proto
    /// method — the real path then has no rule.
    pub without_rpc: Vec<String>,
}

impl Coverage {
    /// Whether every rpc has a rule and every rule an rpc.
    ///
    /// ```
    /// assert!(oauth_grpc::report::Coverage::default().is_complete());
    /// ```
    pub fn is_complete(&self) -> bool {
        self.without_rule.is_empty() && self.without_rpc.is_empty()
    }
}

impl std::fmt::Display for Coverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_complete() {
            return f.write_str("every rpc has a rule and every rule names an rpc");
        }
        for path in &self.without_rule {
            writeln!(f, "rpc without a rule: {path}")?;
        }
        for path in &self.without_rpc {
            writeln!(
                f,
                "rule for no rpc of the descriptors: {path} (a wrong `rpc =`, or a renamed proto method?)"
            )?;
        }
        Ok(())
    }
}

/// Why [`OAuthLayer::check_coverage`](crate::OAuthLayer::check_coverage) refused to start.
///
/// ```
/// use oauth_grpc::PolicySet;
/// use oauth_grpc::report::{CoverageError, Report};
/// # use examples::pb::FILE_DESCRIPTOR_SET;
///
/// // A table for one service, descriptors for two: the other service's rpcs have no rule.
/// # type OrderBook = examples::OrderBook;
/// let report = Report::new(&PolicySet::new().service::<OrderBook>()).descriptors(FILE_DESCRIPTOR_SET)?;
/// let err = report.check_coverage().unwrap_err();
/// assert!(matches!(err, CoverageError::Incomplete(_)));
/// # Ok::<(), oauth_grpc::report::DescriptorError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoverageError {
    /// The descriptors could not be read.
    #[error(transparent)]
    Descriptors(#[from] DescriptorError),
    /// No descriptors to compare the tables with: give them with `Report::descriptors`.
    #[error(
        "no protobuf descriptors to check coverage against; pass the encoded FileDescriptorSet (tonic-prost-build or protox writes it) to `Report::descriptors` or `Command::descriptors`"
    )]
    NoDescriptors,
    /// Rpcs without rules, or rules without rpcs.
    #[error("the access rules do not cover the services:\n{0}")]
    Incomplete(Coverage),
}

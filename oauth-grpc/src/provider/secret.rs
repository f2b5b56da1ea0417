//! [`ClientSecret`]: a client secret from memory, or from a file read at each use, never shown
//! by `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::SecretError;

/// A client secret, from memory or from a file that is read at each use (so a rotated secret
/// is picked up without a restart). `Debug` never shows it.
///
/// ```
/// use oauth_grpc::ClientSecret;
///
/// let secret = ClientSecret::new("s3cr3t");
/// assert_eq!(format!("{secret:?}"), "ClientSecret(<redacted>)");
/// ```
#[derive(Clone)]
pub struct ClientSecret(SecretSource);

#[derive(Clone)]
enum SecretSource {
    Value(Arc<str>),
    File(PathBuf),
}

impl ClientSecret {
    /// A secret held in memory.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(SecretSource::Value(Arc::from(secret.into())))
    }

    /// A secret read from `path` at each use; surrounding whitespace is trimmed. Secrets come
    /// from files, not arguments or environment variables, which leak into process listings.
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self(SecretSource::File(path.into()))
    }

    /// The secret's current value.
    ///
    /// # Errors
    ///
    /// [`SecretError`] naming the file when it cannot be read or is empty.
    ///
    /// ```
    /// # use oauth_grpc::ClientSecret;
    /// assert_eq!(&*ClientSecret::new("x").reveal()?, "x");
    /// assert!(ClientSecret::from_file("/no/such/secret").reveal().is_err());
    /// # Ok::<(), oauth_grpc::SecretError>(())
    /// ```
    pub fn reveal(&self) -> Result<Arc<str>, SecretError> {
        match &self.0 {
            SecretSource::Value(value) => Ok(value.clone()),
            SecretSource::File(path) => read(path),
        }
    }

    /// As [`reveal`](Self::reveal), reading a file on tokio's blocking pool so that a slow
    /// disk or a network mount does not stall the runtime's worker threads (inline outside a
    /// runtime).
    pub(crate) async fn reveal_async(&self) -> Result<Arc<str>, SecretError> {
        let SecretSource::File(path) = &self.0 else {
            return self.reveal();
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return read(path);
        };
        let owned = path.clone();
        match runtime.spawn_blocking(move || read(&owned)).await {
            Ok(result) => result,
            Err(join) => Err(SecretError::Unreadable {
                path: path.clone(),
                source: Arc::new(std::io::Error::other(join.to_string())),
            }),
        }
    }
}

/// The secret in `path`, trimmed; an empty file is an error.
fn read(path: &Path) -> Result<Arc<str>, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|e| SecretError::Unreadable {
        path: path.to_owned(),
        source: Arc::new(e),
    })?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(SecretError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(Arc::from(secret))
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            SecretSource::Value(_) => f.write_str("ClientSecret(<redacted>)"),
            SecretSource::File(path) => write!(f, "ClientSecret(file {})", path.display()),
        }
    }
}

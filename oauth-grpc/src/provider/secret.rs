//! Client secrets: from memory, or from a file read at each use, and never shown by `Debug`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A client secret, from memory or from a file that is read at each use (so a rotated secret
/// is picked up without a restart). `Debug` never shows it.
///
/// ```
/// use oauth_grpc::secret::ClientSecret;
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
    ///
    /// ```
    /// let secret = oauth_grpc::secret::ClientSecret::new("s3cr3t");
    /// # let _ = secret;
    /// ```
    pub fn new(secret: impl Into<String>) -> Self {
        Self(SecretSource::Value(Arc::from(secret.into())))
    }

    /// A secret read from `path` at each use; surrounding whitespace is trimmed. Secrets come
    /// from files, not arguments or environment variables, which leak into process listings.
    ///
    /// ```
    /// let secret = oauth_grpc::secret::ClientSecret::from_file("/run/secrets/client-secret");
    /// # let _ = secret;
    /// ```
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self(SecretSource::File(path.into()))
    }

    /// The secret's current value.
    ///
    /// # Errors
    ///
    /// A message naming the file when it cannot be read or is empty.
    ///
    /// ```
    /// # use oauth_grpc::secret::ClientSecret;
    /// assert_eq!(&*ClientSecret::new("x").reveal()?, "x");
    /// assert!(ClientSecret::from_file("/no/such/secret").reveal().is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn reveal(&self) -> Result<Arc<str>, String> {
        match &self.0 {
            SecretSource::Value(value) => Ok(value.clone()),
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("cannot read the client secret file {}: {e}", path.display())
                })?;
                let secret = text.trim();
                if secret.is_empty() {
                    return Err(format!(
                        "the client secret file {} is empty",
                        path.display()
                    ));
                }
                Ok(Arc::from(secret))
            }
        }
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            SecretSource::Value(_) => f.write_str("ClientSecret(<redacted>)"),
            SecretSource::File(path) => write!(f, "ClientSecret(file {})", path.display()),
        }
    }
}

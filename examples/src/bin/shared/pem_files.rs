//! PEM files named on the command line (`--tls-cert`, `--client-ca`, `--cert`, …): read once
//! at start-up and checked, so a wrong file is refused with a message naming the flag and the
//! path — never with a panic, and never quoting the file's content (it may be a key).
//!
//! Shared by `orders-server` and `orders-client` (`#[path]`-included: a binary cannot reach
//! another binary's modules).
//!
//! ```text
//! let chain = pem_files::certificates("--tls-cert", &path)?;   // at least one CERTIFICATE
//! let key = pem_files::private_key("--tls-key", &key_path)?;   // PKCS#8, PKCS#1 or SEC1
//! ```

use std::path::Path;

use rustls_pki_types::pem::{self, PemObject as _};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Larger than any certificate chain or key; a bigger file is not what the flag wants.
const MAX_LEN: u64 = 1024 * 1024;

fn read(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{flag} {shown}: cannot read the file: {e}"))?
        .len();
    if len > MAX_LEN {
        return Err(format!(
            "{flag} {shown}: the file has {len} bytes, more than a PEM file of certificates or a key ({MAX_LEN})"
        ));
    }
    std::fs::read(path).map_err(|e| format!("{flag} {shown}: cannot read the file: {e}"))
}

/// Why a PEM file was refused, without a byte of its content (`pem::Error` would quote a line
/// or a base64 error of it).
fn reason(error: &pem::Error) -> &'static str {
    match error {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64",
        pem::Error::SectionTooLarge => "a PEM section is too large",
        _ => "the file is not valid PEM",
    }
}

/// The file's bytes, once it holds at least one well-formed `CERTIFICATE` section.
///
/// # Errors
///
/// A message naming `flag` and the path: unreadable, too large, malformed PEM, or no
/// certificate in it.
pub(crate) fn certificates(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    let bytes = read(flag, path)?;
    let mut count = 0;
    for certificate in CertificateDer::pem_slice_iter(&bytes) {
        certificate.map_err(|e| format!("{flag} {}: {}", path.display(), reason(&e)))?;
        count += 1;
    }
    if count == 0 {
        return Err(format!(
            "{flag} {}: no certificate in the file; expected PEM (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(bytes)
}

/// The file's bytes, once it holds a well-formed private key (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
///
/// A message naming `flag` and the path: unreadable, too large, malformed PEM, or no private
/// key in it.
pub(crate) fn private_key(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    let bytes = read(flag, path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(_) => Ok(bytes),
        Err(pem::Error::NoItemsFound) => Err(format!(
            "{flag} {}: no private key in the file; expected PEM (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)",
            path.display()
        )),
        Err(e) => Err(format!("{flag} {}: {}", path.display(), reason(&e))),
    }
}

/// An error and its sources on one line (tonic's transport errors say little at the top).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        // Wrappers often repeat their source's message; say it once.
        if said != last {
            text.push_str(": ");
            text.push_str(&said);
        }
        last = said;
        source = cause.source();
    }
    text
}

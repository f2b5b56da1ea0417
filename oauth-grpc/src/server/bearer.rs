//! [`bearer_token`]: the bearer token of a request's metadata (RFC 6750 §2.1).
//!
//! Exactly one `authorization` value, scheme `Bearer` (any case), one space, then a token68
//! (`A-Z a-z 0-9 - . _ ~ + /`, then optional `=` padding), within a size limit.
//!
//! ```
//! use http::HeaderMap;
//! use oauth_grpc::AuthError;
//! use oauth_grpc::bearer_token;
//!
//! let mut headers = HeaderMap::new();
//! assert_eq!(bearer_token(&headers, 8192), Err(AuthError::MissingToken));
//! headers.insert("authorization", "bearer abc.def.ghi".parse().unwrap());
//! assert_eq!(bearer_token(&headers, 8192), Ok("abc.def.ghi"));
//! ```

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::error::AuthError;
use crate::validate::syntax::check_token68;

/// The default limit on the `authorization` value: 8 KiB.
pub(crate) const DEFAULT_MAX_HEADER_LEN: usize = 8 * 1024;

/// The bearer token of a request.
///
/// # Errors
///
/// - [`AuthError::MissingToken`] when there is no `authorization` value, or it uses another
///   scheme (RFC 6750 §3.1: no error code then);
/// - [`AuthError::InvalidRequest`] when there are several values, the value is longer than
///   `max_len`, not visible ASCII, has no token after `Bearer`, or the token is not token68.
///
/// ```
/// use http::HeaderMap;
/// use oauth_grpc::AuthError;
/// use oauth_grpc::bearer_token;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
/// assert_eq!(bearer_token(&headers, 8192), Err(AuthError::MissingToken));
/// headers.insert("authorization", "Bearer ".parse().unwrap());
/// assert!(matches!(bearer_token(&headers, 8192), Err(AuthError::InvalidRequest(_))));
/// ```
pub fn bearer_token(headers: &HeaderMap, max_len: usize) -> Result<&str, AuthError> {
    let (_, token) = credentials(headers, max_len, false)?;
    check_token68(token)?;
    Ok(token)
}

/// The authorization scheme of a call's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// RFC 6750 `Bearer`.
    Bearer,
    /// RFC 9449 `DPoP`: the token comes with a proof in `dpop`.
    Dpop,
}

/// [`bearer_token`] without the token68 check of the token: the layer leaves that to the
/// validator, which skips it for a token in the verified-token cache (every one passed it).
#[cfg(test)]
pub(crate) fn bearer_value(headers: &HeaderMap, max_len: usize) -> Result<&str, AuthError> {
    match credentials(headers, max_len, false)? {
        (Scheme::Bearer, token) => Ok(token),
        (Scheme::Dpop, _) => Err(AuthError::MissingToken),
    }
}

/// The token of a call and its scheme: `Bearer`, or `DPoP` when `dpop` is accepted (else a
/// `DPoP` value is another scheme, [`AuthError::MissingToken`]). The token68 check of the
/// token is left to the validator, which skips it for a token in the verified-token cache
/// (every one passed it).
pub(crate) fn credentials(
    headers: &HeaderMap,
    max_len: usize,
    dpop: bool,
) -> Result<(Scheme, &str), AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthError::MissingToken);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidRequest(
            "several authorization values; send exactly one",
        ));
    }
    if value.len() > max_len {
        return Err(AuthError::InvalidRequest(
            "the authorization value is too long",
        ));
    }
    let Ok(value) = value.to_str() else {
        return Err(AuthError::InvalidRequest(
            "the authorization value is not visible ASCII",
        ));
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if dpop && scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Err(AuthError::MissingToken);
    };
    // RFC 7235: `auth-scheme 1*SP token68`.
    let rest = rest.trim_start_matches(' ');
    if rest.is_empty() {
        return Err(AuthError::InvalidRequest(match scheme {
            Scheme::Bearer => "no token after `Bearer`",
            Scheme::Dpop => "no token after `DPoP`",
        }));
    }
    Ok((scheme, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn accepts_one_bearer_token_in_any_case() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let h = headers(&[&format!("{scheme} a.b.c")]);
            assert_eq!(bearer_token(&h, 100), Ok("a.b.c"));
        }
        assert_eq!(bearer_token(&headers(&["Bearer abc=="]), 100), Ok("abc=="));
    }

    #[test]
    fn refuses_malformed_values() {
        let invalid = |v: &str| {
            matches!(
                bearer_token(&headers(&[v]), 100),
                Err(AuthError::InvalidRequest(_))
            )
        };
        assert!(invalid("Bearer"));
        assert!(invalid("Bearer "));
        assert_eq!(
            bearer_token(&headers(&["Bearer   a.b.c"]), 100),
            Ok("a.b.c")
        );
        assert!(invalid("Bearer a.b.c "));
        assert!(invalid("Bearer a b"));
        assert!(invalid("Bearer a,b"));
        assert!(invalid("Bearer ===="));
        assert!(invalid("Bearer a=b"));
        assert!(invalid(&format!("Bearer {}", "a".repeat(100))));
        assert_eq!(
            bearer_token(&headers(&["Basic abc"]), 100),
            Err(AuthError::MissingToken)
        );
        assert_eq!(
            bearer_token(&headers(&["Bearerabc"]), 100),
            Err(AuthError::MissingToken)
        );
        assert!(matches!(
            bearer_token(&headers(&["Bearer a", "Bearer b"]), 100),
            Err(AuthError::InvalidRequest(_))
        ));
    }

    #[test]
    fn dpop_is_a_scheme_only_where_accepted() {
        let h = headers(&["DPoP a.b.c"]);
        assert_eq!(bearer_token(&h, 100), Err(AuthError::MissingToken));
        assert_eq!(bearer_value(&h, 100), Err(AuthError::MissingToken));
        assert_eq!(credentials(&h, 100, true), Ok((Scheme::Dpop, "a.b.c")));
        assert_eq!(
            credentials(&headers(&["dpop  a.b.c"]), 100, true),
            Ok((Scheme::Dpop, "a.b.c"))
        );
        assert_eq!(
            credentials(&headers(&["Bearer a.b.c"]), 100, true),
            Ok((Scheme::Bearer, "a.b.c"))
        );
        assert!(matches!(
            credentials(&headers(&["DPoP "]), 100, true),
            Err(AuthError::InvalidRequest(_))
        ));
    }

    #[test]
    fn non_ascii_value_is_invalid_request() {
        let mut map = HeaderMap::new();
        map.insert(
            AUTHORIZATION,
            http::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        );
        assert!(matches!(
            bearer_token(&map, 100),
            Err(AuthError::InvalidRequest(_))
        ));
    }
}

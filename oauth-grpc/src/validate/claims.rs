//! The claims of a verified token (RFC 7519, RFC 9068) and what they must say, shared by JWT
//! checks and introspection answers: [`Trust`] (trusted issuers and audiences, the clock
//! leeway), NumericDates, `aud` lists, the `act` chain and the scopes granted.

use std::sync::Arc;

use serde_json::Value;

use crate::error::TokenError;
use crate::principal::{Actor, Confirmation, Principal};
use crate::scope::ScopeSet;

use super::TokenTypes;
use super::issuer::Profile;
use super::payload::{Claim, Claims, Payload};

/// What every accepted token must satisfy, whether checked locally or by introspection.
#[derive(Debug)]
pub(super) struct Trust {
    /// `iss` must equal one of these exactly; shared with every principal they accept.
    pub(super) issuers: Vec<Arc<str>>,
    /// `aud` must contain one of these.
    pub(super) audiences: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub(super) leeway: u64,
    /// How many nested `act` claims a token may carry.
    pub(super) max_delegation_depth: usize,
}

impl Trust {
    /// The RFC 8693 `act` chain, outermost actor first; every level an object with a string
    /// `sub`, at most `max_delegation_depth` levels.
    pub(super) fn actor(&self, act: &Value) -> Result<Actor, TokenError> {
        self.actor_at(act, 1)
    }

    /// The chain from `act`, the `level`-th actor (1 the outermost); bounded by the depth
    /// limit (16 at most), so the recursion is too.
    fn actor_at(&self, act: &Value, level: usize) -> Result<Actor, TokenError> {
        if level > self.max_delegation_depth {
            return Err(TokenError::DelegationTooDeep);
        }
        let (actor, prior) = one_actor(act)?;
        match prior {
            Some(prior) => Ok(actor.acting_for(self.actor_at(prior, level + 1)?)),
            None => Ok(actor),
        }
    }

    /// RFC 7519 §4.1.4: a token is valid only *before* `exp` (plus the leeway).
    pub(super) fn check_expiry(&self, exp: u64, now: u64) -> Result<(), TokenError> {
        if now >= exp.saturating_add(self.leeway) {
            Err(TokenError::Expired)
        } else {
            Ok(())
        }
    }

    /// `iss` is one of the configured issuers, compared exactly: that issuer's shared name.
    pub(super) fn check_issuer(&self, issuer: &str) -> Result<&Arc<str>, TokenError> {
        self.issuers
            .iter()
            .find(|trusted| &***trusted == issuer)
            .ok_or(TokenError::WrongIssuer)
    }

    /// `aud` names one of the configured audiences.
    pub(super) fn check_audiences(&self, audiences: &[String]) -> Result<(), TokenError> {
        if audiences.iter().any(|aud| self.audiences.contains(aud)) {
            Ok(())
        } else {
            Err(TokenError::WrongAudience)
        }
    }
}

impl Profile {
    /// The claims of a token whose signature this issuer's keys verified; `json` is the
    /// payload's text, which the principal keeps as its raw claims.
    pub(super) fn check_claims(
        &self,
        claims: &Payload<'_>,
        json: Box<str>,
        now: u64,
    ) -> Result<Principal, TokenError> {
        let config = self;
        let trust = &*config.trust;
        let leeway = trust.leeway;

        let exp = numeric_date(claims, "exp")?.ok_or(TokenError::MissingClaim)?;
        trust.check_expiry(exp, now)?;
        if let Some(nbf) = numeric_date(claims, "nbf")?
            && nbf > now.saturating_add(leeway)
        {
            return Err(TokenError::NotYetValid);
        }
        let iat = numeric_date(claims, "iat")?;
        if let Some(iat) = iat
            && iat > now.saturating_add(leeway)
        {
            return Err(TokenError::IssuedInFuture);
        }
        if let Some(max) = config.max_lifetime {
            let iat = iat.ok_or(TokenError::MissingClaim)?;
            if exp.saturating_sub(iat) > max {
                return Err(TokenError::LifetimeTooLong);
            }
        }

        let issuer = match claims.claim("iss") {
            None => return Err(TokenError::MissingClaim),
            Some(Claim::Str(iss)) => iss,
            Some(_) => return Err(TokenError::InvalidClaim),
        };
        let issuer = trust.check_issuer(issuer)?;

        let audiences: Vec<String> =
            match claims.claim(config.audience_claim.as_deref().unwrap_or("aud")) {
                None => return Err(TokenError::MissingClaim),
                Some(value) => string_or_strings(value)?,
            };
        trust.check_audiences(&audiences)?;

        let subject = optional_str(claims, "sub")?;
        let rfc9068_client_id = optional_str(claims, "client_id")?;
        let token_id = optional_str(claims, "jti")?;
        // RFC 9068 §2.2 makes these required in a JWT access token.
        if config.token_types == TokenTypes::Strict
            && (subject.is_none()
                || rfc9068_client_id.is_none()
                || iat.is_none()
                || token_id.is_none())
        {
            return Err(TokenError::MissingClaim);
        }
        let client_id = match rfc9068_client_id {
            Some(id) => Some(id),
            None => optional_str(claims, "azp")?,
        };
        let actor = match claims.claim("act") {
            None => None,
            Some(Claim::Value(act)) => Some(trust.actor(act)?),
            Some(_) => return Err(TokenError::MalformedActor),
        };
        let scopes = self.scopes(claims)?;
        let confirmation = confirmation(claims)?;

        let mut builder = Principal::builder()
            .issuer_shared(issuer.clone())
            .audiences(audiences)
            .scope_set(scopes)
            .expires_at(crate::time::from_unix(exp));
        if let Some(subject) = subject {
            builder = builder.subject(subject);
        }
        if let Some(client_id) = client_id {
            builder = builder.client_id(client_id);
        }
        if let Some(token_id) = token_id {
            builder = builder.token_id(token_id);
        }
        if let Some(actor) = actor {
            builder = builder.actor(actor);
        }
        if let Some(confirmation) = confirmation {
            builder = builder.confirmation(confirmation);
        }
        if let Some(iat) = iat {
            builder = builder.issued_at(iat);
        }
        Ok(builder.claims_json(json).build())
    }

    /// Scopes from the configured claim, else `scope`, else `scp`; plus mapped roles.
    fn scopes(&self, claims: &impl Claims) -> Result<ScopeSet, TokenError> {
        let config = self;
        let mut granted: Vec<&str> = Vec::new();
        let source = match &config.scope_claim {
            Some(name) => claims.claim(name.as_str()),
            None => claims.claim("scope").or_else(|| claims.claim("scp")),
        };
        match source {
            None => {}
            Some(Claim::Str(list)) => granted.extend(list.split(' ')),
            Some(Claim::Value(Value::Array(items))) => {
                for item in items {
                    granted.push(item.as_str().ok_or(TokenError::InvalidClaim)?);
                }
            }
            Some(_) => return Err(TokenError::InvalidClaim),
        }
        if let Some(path) = &config.role_claim {
            let roles = match path.split_first() {
                None => None,
                Some((first, rest)) => {
                    let mut value = claims.claim(first);
                    for segment in rest {
                        value = match value {
                            Some(Claim::Value(Value::Object(map))) => {
                                map.get(segment.as_str()).map(Claim::of)
                            }
                            _ => None,
                        };
                    }
                    value
                }
            };
            let roles: Vec<&str> = match roles {
                None => Vec::new(),
                Some(Claim::Value(Value::Array(items))) => {
                    items.iter().filter_map(Value::as_str).collect()
                }
                Some(Claim::Str(role)) => vec![role],
                Some(_) => return Err(TokenError::InvalidClaim),
            };
            for role in roles {
                if let Some(scopes) = config.role_scopes.get(role) {
                    granted.extend(scopes.iter().map(String::as_str));
                }
            }
        }
        Ok(granted.into_iter().collect())
    }
}

/// A NumericDate claim (RFC 7519 §2): a non-negative JSON number of seconds, possibly with a
/// fraction (truncated). Other types, negatives and values past year 9999 are invalid.
pub(crate) fn numeric_date(
    claims: &(impl Claims + ?Sized),
    name: &str,
) -> Result<Option<u64>, TokenError> {
    /// 9999-12-31T23:59:59Z: anything later is a mistake or an attack on arithmetic.
    const MAX: u64 = 253_402_300_799;
    let seconds = match claims.claim(name) {
        None => return Ok(None),
        Some(Claim::U64(whole)) => whole,
        // Negative (serde_json hands non-negative integers over as `U64`, but `-0` may come
        // as `I64(0)` under `arbitrary_precision`).
        Some(Claim::I64(i)) => u64::try_from(i).map_err(|_| TokenError::InvalidClaim)?,
        Some(Claim::F64(f)) if f.is_finite() && f >= 0.0 && f <= MAX as f64 => f as u64,
        Some(_) => return Err(TokenError::InvalidClaim),
    };
    if seconds > MAX {
        return Err(TokenError::InvalidClaim);
    }
    Ok(Some(seconds))
}

/// A claim that is a string or an array of strings (`aud`, RFC 7519 §4.1.3).
pub(crate) fn string_or_strings(value: Claim<'_>) -> Result<Vec<String>, TokenError> {
    match value {
        Claim::Str(one) => Ok(vec![one.to_owned()]),
        Claim::Value(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(TokenError::InvalidClaim)
            })
            .collect(),
        _ => Err(TokenError::InvalidClaim),
    }
}

/// A claim that, if present, is a string.
fn optional_str<'c>(claims: &'c impl Claims, name: &str) -> Result<Option<&'c str>, TokenError> {
    match claims.claim(name) {
        None => Ok(None),
        Some(Claim::Str(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::InvalidClaim),
    }
}

/// One level of an `act` chain: an object with a non-empty string `sub`, an optional string
/// `client_id`.
fn one_actor(act: &Value) -> Result<(Actor, Option<&Value>), TokenError> {
    let Value::Object(act) = act else {
        return Err(TokenError::MalformedActor);
    };
    let (Some(Value::String(sub)), client_id) = (act.get("sub"), act.get("client_id")) else {
        return Err(TokenError::MalformedActor);
    };
    // An empty `sub` names no one.
    if sub.is_empty() {
        return Err(TokenError::MalformedActor);
    }
    let client_id = match client_id {
        None => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return Err(TokenError::MalformedActor),
    };
    Ok((Actor::new(Some(sub.clone()), client_id), act.get("act")))
}

/// The confirmation (`cnf`, RFC 7800) of a token or an introspection answer: what the token
/// is bound to. A bound token is only as good as the check of its binding, so a `cnf` this
/// crate cannot check is refused, never ignored:
///
/// - `x5t#S256` (RFC 8705 §3.1) must be the base64url SHA-256 of a certificate (43
///   characters, no padding); other members beside it are not read, the certificate binding
///   alone is then enforced;
/// - without `x5t#S256`, any member (`jkt` of DPoP, `jwk`, `kid`, `x5t`, …) or an empty
///   `cnf` means a binding that cannot be checked here: [`TokenError::UnsupportedConfirmation`];
/// - a `cnf` that is not an object, or an `x5t#S256` that is not such a thumbprint:
///   [`TokenError::InvalidClaim`].
pub(crate) fn confirmation(
    claims: &(impl Claims + ?Sized),
) -> Result<Option<Confirmation>, TokenError> {
    let Some(cnf) = claims.claim("cnf") else {
        return Ok(None);
    };
    let Claim::Value(Value::Object(cnf)) = cnf else {
        return Err(TokenError::InvalidClaim);
    };
    let thumbprint = |name: &str| match cnf.get(name) {
        Some(Value::String(thumbprint)) if is_sha256_thumbprint(thumbprint) => {
            Ok(Some(thumbprint.clone()))
        }
        Some(_) => Err(TokenError::InvalidClaim),
        None => Ok(None),
    };
    // RFC 8705 §3.1 certificate, RFC 9449 §6 DPoP key; a token with both is held to both.
    match (thumbprint("x5t#S256")?, thumbprint("jkt")?) {
        (Some(certificate), Some(key)) => Ok(Some(
            Confirmation::certificate(certificate).with_dpop_key(key),
        )),
        (Some(certificate), None) => Ok(Some(Confirmation::certificate(certificate))),
        (None, Some(key)) => Ok(Some(Confirmation::dpop_key(key))),
        (None, None) => Err(TokenError::UnsupportedConfirmation),
    }
}

/// 32 bytes in base64url without padding: 43 characters of the URL-safe alphabet. (Its
/// unused last bits are not checked: the value is compared with the certificate's canonical
/// thumbprint, which a value with stray bits never equals.)
fn is_sha256_thumbprint(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;

    fn cnf(value: Value) -> Result<Option<Confirmation>, TokenError> {
        let claims = json!({ "cnf": value });
        confirmation(claims.as_object().unwrap_or(&Map::new()))
    }

    #[test]
    fn a_certificate_thumbprint_is_read() {
        let thumbprint = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2";
        assert_eq!(
            cnf(json!({ "x5t#S256": thumbprint })),
            Ok(Some(Confirmation::certificate(thumbprint)))
        );
        // Unknown members beside it do not weaken the certificate binding.
        assert_eq!(
            cnf(json!({ "x5t#S256": thumbprint, "future": 1 })),
            Ok(Some(Confirmation::certificate(thumbprint)))
        );
        assert_eq!(confirmation(&Map::new()), Ok(None));
    }

    #[test]
    fn a_dpop_key_thumbprint_is_read() {
        let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
        let x5t = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2";
        assert_eq!(
            cnf(json!({ "jkt": jkt })),
            Ok(Some(Confirmation::dpop_key(jkt)))
        );
        assert_eq!(
            cnf(json!({ "jkt": jkt, "x5t#S256": x5t })),
            Ok(Some(Confirmation::certificate(x5t).with_dpop_key(jkt)))
        );
    }

    #[test]
    fn a_binding_that_cannot_be_checked_is_refused() {
        for value in [
            json!({}),
            json!({ "JKT": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" }),
            json!({ "jwk": { "kty": "EC" } }),
            json!({ "x5t": "sha1-thumbprint" }),
            json!({ "X5T#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" }),
        ] {
            assert_eq!(cnf(value), Err(TokenError::UnsupportedConfirmation));
        }
    }

    #[test]
    fn a_malformed_binding_is_an_invalid_claim() {
        for value in [
            json!("x5t#S256"),
            json!(null),
            json!([]),
            json!({ "x5t#S256": 1 }),
            json!({ "x5t#S256": "" }),
            // Padded, standard alphabet, too short, too long.
            json!({ "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2=" }),
            json!({ "x5t#S256": "bwcK0esc3ACC3DB2Y5/lESsXE8o9ltc05O89jdN+dg2" }),
            json!({ "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg" }),
            json!({ "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2A" }),
            json!({ "jkt": 1 }),
            json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4" }),
            json!({ "jkt": "0ZcOCORZNYy+DWpqq30jZyJGHTN0d2HglBV3uiguA4I" }),
            // A good certificate thumbprint does not excuse a malformed key thumbprint.
            json!({ "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2", "jkt": "" }),
        ] {
            assert_eq!(cnf(value.clone()), Err(TokenError::InvalidClaim), "{value}");
        }
    }
}

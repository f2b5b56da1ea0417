//! Writes the seed corpora of the fuzz targets into `fuzz/seeds/<target>/`: real tokens
//! signed by the test keys, real JWKS and introspection documents, real header values.
//!
//! `cargo run -p oauth-grpc-fuzz --bin write-seeds`

use std::fs;
use std::path::Path;

use jsonwebtoken::{EncodingKey, Header, jwk::Jwk, jwk::JwkSet};
use oauth_grpc_fuzz::{
    NOW, PRIVATE_KEYS, PUBLIC_KEYS, asymmetric_validator, hmac_validator, hs256_header, now,
    sign_hs256, valid_claims,
};
use serde_json::json;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    fs::create_dir_all(&dir).expect("create the seed folder");
    fs::write(dir.join(name), bytes).expect("write a seed");
}

fn encoding_key(pem: &[u8], alg: jsonwebtoken::Algorithm) -> EncodingKey {
    match alg {
        jsonwebtoken::Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        jsonwebtoken::Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_ed_pem(pem),
    }
    .expect("test key loads")
}

fn main() {
    let claims = valid_claims();
    let mut jwks = Vec::new();
    for ((kid, _, alg), pem) in PUBLIC_KEYS.into_iter().zip(PRIVATE_KEYS) {
        let key = encoding_key(pem, alg);
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        header.typ = Some("at+jwt".to_owned());
        let token = jsonwebtoken::encode(&header, &claims, &key).expect("signs");
        write("token", &format!("{kid}.jwt"), token.as_bytes());
        write("bearer", kid, format!("Bearer {token}").as_bytes());
        let mut jwk = Jwk::from_encoding_key(&key, alg).expect("public JWK");
        jwk.common.key_id = Some(kid.to_owned());
        jwks.push(jwk);
    }
    let set = serde_json::to_vec(&JwkSet { keys: jwks }).expect("JWKS serialises");
    write("jwks", "test-keys.json", &set);

    // HS256 seeds in the structured form of the `token` target: a 0x01 byte, the header
    // JSON, a 0xff byte, the payload JSON.
    let header = serde_json::to_vec(&hs256_header()).expect("serialises");
    let payload = serde_json::to_vec(&claims).expect("serialises");
    let mut structured = vec![1u8];
    structured.extend_from_slice(&header);
    structured.push(0xff);
    structured.extend_from_slice(&payload);
    write("token", "hs256-structured", &structured);
    write(
        "token",
        "hs256.jwt",
        sign_hs256(&header, &payload).as_bytes(),
    );

    write("bearer", "basic", b"Basic dXNlcjpwYXNz");
    write("bearer", "two-values", b"Bearer abc\0Bearer abc");
    write("bearer", "padded", b"bearer   abc.def-_~+/==");

    write(
        "introspection",
        "active",
        json!({
            "active": true, "iss": "https://issuer.test/", "aud": ["orders-api", "x"],
            "sub": "alice", "client_id": "orders-web", "scope": "orders:read orders:write",
            "exp": NOW + 3600, "jti": "j-1"
        })
        .to_string()
        .as_bytes(),
    );
    write("introspection", "inactive", br#"{"active":false}"#);

    // The `dpop` target: a mode byte (even: a proof, odd: an `htu`), then the text. The
    // proof is RFC 9449's own example (§4.1), which verifies.
    let mut rfc_proof = vec![0u8];
    rfc_proof.extend_from_slice(RFC_9449_PROOF.as_bytes());
    write("dpop", "rfc-9449-proof", &rfc_proof);
    write(
        "dpop",
        "htu",
        b"\x01HTTPS://Orders.Example.COM:443/a/../orders.v1.%4Frders/CreateOrder?q#f",
    );

    // The `scopes` target: a slot byte (0 `scope`, 1 `scp`, 2 `realm_access`), then JSON.
    write("scopes", "string", b"\x00\"orders:read orders:write\"");
    write("scopes", "array", b"\x01[\"orders:read\",\"orders:write\"]");
    write("scopes", "roles", b"\x02{\"roles\":[\"admin\",\"viewer\"]}");

    assert!(
        oauth_grpc::__private::fuzz::dpop_proof(RFC_9449_PROOF).is_ok(),
        "the RFC's proof verifies"
    );

    // The seeds are only useful if they pass: check that they do.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join("token");
    let (asymmetric, hmac) = (asymmetric_validator(), hmac_validator());
    for entry in fs::read_dir(dir).expect("seed folder") {
        let path = entry.expect("seed entry").path();
        if path.extension().is_some_and(|e| e == "jwt") {
            let token = fs::read_to_string(&path).expect("seed token");
            let validator = if token.starts_with(&oauth_grpc_fuzz::b64(b"{\"alg\":\"HS256\"")) {
                &hmac
            } else {
                &asymmetric
            };
            if let Err(error) = validator.validate_at(&token, now()) {
                panic!("seed {} is refused: {error}", path.display());
            }
        }
    }
}

/// RFC 9449 §4.1, figure 3: a proof of a resource request.
const RFC_9449_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";

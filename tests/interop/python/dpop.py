#!/usr/bin/env python3
"""DPoP proofs (RFC 9449) made with pyjwt + cryptography, independently of oauth-grpc.

usage:
  dpop.py keygen KEYFILE KIND        write a new private key (PKCS#8 PEM); KIND is
                                     ES256 (EC P-256), RSA (RSA-2048, for PS256 or RS256)
                                     or EdDSA (Ed25519); prints nothing
  dpop.py jkt KEYFILE                print the key's RFC 7638 SHA-256 thumbprint
  dpop.py proof KEYFILE HTM HTU [PROOF OPTIONS]
                                     print one proof
  dpop.py token ISSUER CLIENT SECRET KEYFILE [--scope S] [--resource R] [--no-proof]
                [--no-nonce-retry] [--response] [PROOF OPTIONS]
                                     client-credentials grant at ISSUER's token endpoint
                                     (from discovery), client_secret_basic, with a proof
                                     (htm POST, htu the token endpoint); prints the access
                                     token, or with --response the whole JSON response.
                                     A 400 `use_dpop_nonce` with a `dpop-nonce` header is
                                     retried once with that nonce (not with
                                     --no-nonce-retry). A refusal prints
                                     `ERROR <http status> <error> <error_description>`.

PROOF OPTIONS (defects on purpose, for the refusal tests):
  --alg ALG          sign with ALG (default: ES256, PS256 for RSA, EdDSA)
  --token T          the access token the proof is for: adds `ath`
  --ath-of T         `ath` of another token than --token
  --no-ath           no `ath` even with --token
  --htm M, --htu U   (proof subcommand: positional)
  --iat-offset S     iat = now + S seconds
  --jti J            this jti (default: 16 random bytes, base64url)
  --nonce N          `nonce` claim
  --typ T            header typ (default dpop+jwt)
  --header-alg A     the header says alg A, the signature is still --alg's (e.g. none,
                     HS256, ES384 over a P-256 key)
  --wrong-signer     the header's jwk is this key, the signature another key's
  --private-jwk      the header's jwk includes the private members
  --omit CLAIM       leave this claim out (repeatable)

Exit status: 0 on success, 1 on a refusal, 2 on a usage error.
"""
import argparse
import base64
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

TIMEOUT_S = float(os.environ.get("CLIENT_TIMEOUT", "10"))

# RFC 7638 §3.2 (and RFC 8037 §2 for OKP): the required members, which the thumbprint hashes.
REQUIRED = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate(kind):
    if kind == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind in ("RSA", "PS256", "RS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind in ("EdDSA", "Ed25519"):
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key kind {kind!r}; expected ES256, RSA or EdDSA")


def load(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def save(key, path):
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def default_alg(key):
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey):
        return "PS256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise ValueError(f"unsupported key type {type(key).__name__}")


def jwk_of(key, private=False):
    """The key as a JWK dict: public members only, unless `private`."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = ECAlgorithm
    elif isinstance(key, rsa.RSAPrivateKey):
        algorithm = RSAAlgorithm
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm = OKPAlgorithm
    else:
        raise ValueError(f"unsupported key type {type(key).__name__}")
    jwk = json.loads(algorithm.to_jwk(key if private else key.public_key()))
    # pyjwt adds `key_ops` to RSA keys; a proof's jwk needs only the key itself.
    jwk.pop("key_ops", None)
    return jwk


def thumbprint(jwk):
    """RFC 7638: SHA-256 over the required members, sorted, no whitespace; base64url."""
    members = {name: jwk[name] for name in REQUIRED[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64u(hashlib.sha256(canonical.encode("utf-8")).digest())


def ath(token):
    """base64url(SHA-256(ASCII token)), RFC 9449 §4.2."""
    return b64u(hashlib.sha256(token.encode("ascii")).digest())


def make_proof(
    key,
    htm,
    htu,
    *,
    alg=None,
    token=None,
    ath_of=None,
    no_ath=False,
    iat_offset=0,
    jti=None,
    nonce=None,
    typ="dpop+jwt",
    signer=None,
    private_jwk=False,
    omit=(),
    header_alg=None,
):
    """One DPoP proof (compact JWS). `signer` signs instead of `key` (whose jwk is in the
    header): a proof whose signature does not verify under its own key. `header_alg` is the
    header's `alg` instead of `alg`, the signature still `alg`'s (pyjwt will not do that)."""
    alg = alg or default_alg(key)
    claims = {
        "jti": jti if jti is not None else b64u(os.urandom(16)),
        "htm": htm,
        "htu": htu,
        "iat": int(time.time()) + iat_offset,
    }
    if ath_of is not None:
        claims["ath"] = ath(ath_of)
    elif token is not None and not no_ath:
        claims["ath"] = ath(token)
    if nonce is not None:
        claims["nonce"] = nonce
    for name in omit:
        claims.pop(name, None)
    headers = {"typ": typ, "jwk": jwk_of(key, private=private_jwk)}
    if header_alg is None:
        return jwt.encode(claims, signer or key, algorithm=alg, headers=headers)
    header = b64u(json.dumps({"alg": header_alg, **headers}, separators=(",", ":")).encode())
    payload = b64u(json.dumps(claims, separators=(",", ":")).encode())
    algorithm = jwt.get_algorithm_by_name(alg)
    signature = algorithm.sign(f"{header}.{payload}".encode("ascii"), signer or key)
    return f"{header}.{payload}.{b64u(signature)}"


def add_proof_options(parser):
    parser.add_argument("--alg")
    parser.add_argument("--token")
    parser.add_argument("--ath-of")
    parser.add_argument("--no-ath", action="store_true")
    parser.add_argument("--iat-offset", type=int, default=0)
    parser.add_argument("--jti")
    parser.add_argument("--nonce")
    parser.add_argument("--typ", default="dpop+jwt")
    parser.add_argument("--header-alg")
    parser.add_argument("--wrong-signer", action="store_true")
    parser.add_argument("--private-jwk", action="store_true")
    parser.add_argument("--omit", action="append", default=[])


def proof_options(args, key):
    """make_proof's keyword arguments from the parsed PROOF OPTIONS."""
    return {
        "alg": args.alg,
        "token": args.token,
        "ath_of": args.ath_of,
        "no_ath": args.no_ath,
        "iat_offset": args.iat_offset,
        "jti": args.jti,
        "nonce": args.nonce,
        "typ": args.typ,
        "signer": generate(default_alg(key)) if args.wrong_signer else None,
        "private_jwk": args.private_jwk,
        "omit": tuple(args.omit),
        "header_alg": args.header_alg,
    }


def _token_endpoint(issuer):
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        return json.load(response)["token_endpoint"]


def _post(url, form, client, secret, proof):
    basic = base64.b64encode(
        f"{urllib.parse.quote(client, safe='')}:{urllib.parse.quote(secret, safe='')}".encode()
    ).decode("ascii")
    headers = {
        "authorization": f"Basic {basic}",
        "content-type": "application/x-www-form-urlencoded",
        "accept": "application/json",
    }
    if proof is not None:
        headers["dpop"] = proof
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(form).encode("ascii"), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as err:
        try:
            body = json.load(err)
        except ValueError:
            body = {}
        return err.code, err.headers, body


def token(args):
    key = load(args.keyfile)
    url = _token_endpoint(args.issuer)
    form = {"grant_type": "client_credentials"}
    if args.scope:
        form["scope"] = args.scope
    if args.resource:
        form["resource"] = args.resource
    options = proof_options(args, key)
    htm = args.htm or "POST"
    htu = args.htu or url

    def proof():
        return None if args.no_proof else make_proof(key, htm, htu, **options)

    status, headers, body = _post(url, form, args.client, args.secret, proof())
    nonce = headers.get("dpop-nonce")
    if (
        status == 400
        and body.get("error") == "use_dpop_nonce"
        and nonce
        and not args.no_nonce_retry
        and not args.no_proof
    ):
        print("use_dpop_nonce: retrying with the server's nonce", file=sys.stderr)
        options["nonce"] = nonce
        status, headers, body = _post(url, form, args.client, args.secret, proof())
    if status != 200:
        print(f"ERROR {status} {body.get('error', '-')} {body.get('error_description', '-')}")
        return 1
    if args.response:
        print(json.dumps(body, sort_keys=True))
    else:
        print(body["access_token"])
    return 0


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    command, rest = argv[1], argv[2:]
    parser = argparse.ArgumentParser(prog=f"dpop.py {command}", usage=__doc__.strip())
    if command == "keygen":
        parser.add_argument("keyfile")
        parser.add_argument("kind")
        args = parser.parse_args(rest)
        try:
            save(generate(args.kind), args.keyfile)
        except ValueError as err:
            print(err, file=sys.stderr)
            return 2
        return 0
    if command == "jkt":
        parser.add_argument("keyfile")
        args = parser.parse_args(rest)
        print(thumbprint(jwk_of(load(args.keyfile))))
        return 0
    if command == "proof":
        parser.add_argument("keyfile")
        parser.add_argument("htm")
        parser.add_argument("htu")
        add_proof_options(parser)
        args = parser.parse_args(rest)
        key = load(args.keyfile)
        print(make_proof(key, args.htm, args.htu, **proof_options(args, key)))
        return 0
    if command == "token":
        parser.add_argument("issuer")
        parser.add_argument("client")
        parser.add_argument("secret")
        parser.add_argument("keyfile")
        parser.add_argument("--scope")
        parser.add_argument("--resource")
        parser.add_argument("--htm")
        parser.add_argument("--htu")
        parser.add_argument("--no-proof", action="store_true")
        parser.add_argument("--no-nonce-retry", action="store_true")
        parser.add_argument("--response", action="store_true")
        add_proof_options(parser)
        return token(parser.parse_args(rest))
    print(f"unknown command {command!r}\n{__doc__.strip()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

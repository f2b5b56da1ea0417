#!/usr/bin/env python3
"""Interop gRPC client for the Rust orders example server.

usage: client.py [--ca FILE [--cert FILE --key FILE]] [--dpop KEYFILE [DPOP OPTIONS]]
                 ADDRESS RPC [TOKEN]
  ADDRESS  host:port of the server (plaintext channel, or TLS with --ca)
  RPC      WhoAmI | CreateOrder | GetHTTPStatus
  TOKEN    sent as `authorization: Bearer TOKEN` when given (DPoP TOKEN with --dpop)
  --ca     TLS, trusting this CA (PEM) for the server's certificate
  --cert, --key
           mutual TLS: present this client certificate (PEM chain) and its key (PEM)
  --dpop KEYFILE
           RFC 9449: send `authorization: DPoP TOKEN` and a `dpop` proof made by dpop.py
           with this private key (PEM; dpop.py keygen): htm POST, htu
           http://ADDRESS/orders.v1.Orders/RPC (https with --ca), `ath` of TOKEN, and the
           newest `dpop-nonce` the server sent in this run, if any

DPOP OPTIONS (defects on purpose, for the refusal tests):
  --alg ALG        sign with ALG (default by key: ES256, PS256 for RSA, EdDSA)
  --htu U, --htm M this htu / htm instead
  --iat-offset S   iat = now + S seconds
  --no-ath         no `ath` claim
  --ath-of T       `ath` of another token T
  --jti J          this jti (default: 16 random bytes)
  --nonce N        this `nonce` claim (instead of the server's)
  --typ T          header typ instead of dpop+jwt
  --header-alg A   the header says alg A, the signature is still --alg's
  --other-key      the proof is made and signed by a fresh key of KEYFILE's kind: valid,
                   but not the key the token is bound to
  --wrong-signer   the header's jwk is KEYFILE's key, the signature another key's
  --private-jwk    the header's jwk carries the private key too
  --no-proof       the DPoP scheme without a `dpop` header
  --two-proofs     two `dpop` headers (the same proof twice)
  --scheme S       authorization scheme instead of DPoP (e.g. Bearer, with the proof)
  --calls N        N calls, each with a fresh proof (default 1)
  --replay N       N calls, all with one and the same proof

Prints one line per call: `OK`, or `CODE <numeric status> <www-authenticate or ->`, either
followed by ` dpop-nonce=<value>` when the response carried a `dpop-nonce`.
The stubs (orders_pb2, orders_pb2_grpc) are imported from $ORDERS_STUBS, else from
the directory of this script; generate them with gen.sh.
Exit status: 0 for OK (every call), 1 for a gRPC error, 2 for a usage error.
"""
import argparse
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
stubs = os.environ.get("ORDERS_STUBS") or here
sys.path.insert(0, stubs)
sys.path.insert(1, here)

import grpc  # noqa: E402
import orders_pb2  # noqa: E402
import orders_pb2_grpc  # noqa: E402

TIMEOUT_S = float(os.environ.get("CLIENT_TIMEOUT", "10"))


def _header(md, name):
    for key, value in md or ():
        if key.lower() == name:
            return value.decode("latin-1") if isinstance(value, bytes) else value
    return None


def _read(flag, path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        print(f"{flag} {path}: {err.strerror}", file=sys.stderr)
        sys.exit(2)


def _channel(address, args):
    if args.ca is None:
        if args.cert or args.key:
            print("--cert and --key are for TLS: give --ca too", file=sys.stderr)
            sys.exit(2)
        return grpc.insecure_channel(address)
    if (args.cert is None) != (args.key is None):
        print("--cert and --key go together", file=sys.stderr)
        sys.exit(2)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read("--ca", args.ca),
        private_key=_read("--key", args.key) if args.key else None,
        certificate_chain=_read("--cert", args.cert) if args.cert else None,
    )
    return grpc.secure_channel(address, credentials)


def _metadata_value(err_or_call, name):
    """`name` from the trailing, else the initial metadata of a call or an RpcError."""
    for which in ("trailing_metadata", "initial_metadata"):
        if hasattr(err_or_call, which):
            value = _header(getattr(err_or_call, which)(), name)
            if value is not None:
                return value
    return None


class _Dpop:
    """Proofs for one run: a fresh one per call (or one reused with --replay), following the
    newest `dpop-nonce` the server sent."""

    def __init__(self, args, htu, token):
        import dpop  # pyjwt + cryptography: only needed here

        self.dpop = dpop
        try:
            key = dpop.load(args.dpop)
        except (OSError, ValueError) as err:
            print(f"--dpop {args.dpop}: {err}", file=sys.stderr)
            sys.exit(2)
        self.key = dpop.generate(dpop.default_alg(key)) if args.other_key else key
        self.htm = args.htm or "POST"
        self.htu = args.htu or htu
        self.options = {
            "alg": args.alg,
            "token": token,
            "ath_of": args.ath_of,
            "no_ath": args.no_ath,
            "iat_offset": args.iat_offset,
            "jti": args.jti,
            "nonce": args.nonce,
            "typ": args.typ,
            "signer": dpop.generate(dpop.default_alg(key)) if args.wrong_signer else None,
            "private_jwk": args.private_jwk,
            "header_alg": args.header_alg,
        }
        self.fixed_nonce = args.nonce is not None
        self.server_nonce = None
        self.replayed = None
        self.replay = args.replay is not None
        self.no_proof = args.no_proof

    def proof(self):
        if self.no_proof:
            return None
        if self.replay and self.replayed is not None:
            return self.replayed
        options = dict(self.options)
        if not self.fixed_nonce and self.server_nonce is not None:
            options["nonce"] = self.server_nonce
        proof = self.dpop.make_proof(self.key, self.htm, self.htu, **options)
        self.replayed = proof
        return proof

    def learn(self, nonce):
        if nonce is not None:
            self.server_nonce = nonce


def main(argv):
    parser = argparse.ArgumentParser(add_help=False, usage=__doc__.strip())
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--dpop")
    parser.add_argument("--alg")
    parser.add_argument("--htu")
    parser.add_argument("--htm")
    parser.add_argument("--iat-offset", type=int, default=0)
    parser.add_argument("--no-ath", action="store_true")
    parser.add_argument("--ath-of")
    parser.add_argument("--jti")
    parser.add_argument("--nonce")
    parser.add_argument("--typ", default="dpop+jwt")
    parser.add_argument("--header-alg")
    parser.add_argument("--other-key", action="store_true")
    parser.add_argument("--wrong-signer", action="store_true")
    parser.add_argument("--private-jwk", action="store_true")
    parser.add_argument("--no-proof", action="store_true")
    parser.add_argument("--two-proofs", action="store_true")
    parser.add_argument("--scheme")
    parser.add_argument("--calls", type=int)
    parser.add_argument("--replay", type=int)
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args(argv[1:])
    if len(args.rest) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    address, rpc = args.rest[0], args.rest[1]
    token = args.rest[2] if len(args.rest) == 3 else None
    calls = {
        "WhoAmI": lambda s: s.WhoAmI,
        "CreateOrder": lambda s: s.CreateOrder,
        "GetHTTPStatus": lambda s: s.GetHTTPStatus,
    }
    requests = {
        "WhoAmI": lambda: orders_pb2.WhoAmIRequest(),
        "CreateOrder": lambda: orders_pb2.CreateOrderRequest(item="interop-widget", quantity=1),
        "GetHTTPStatus": lambda: orders_pb2.GetHTTPStatusRequest(),
    }
    if rpc not in calls:
        print(f"unknown RPC {rpc!r}; expected one of {', '.join(calls)}", file=sys.stderr)
        return 2
    if args.calls is not None and args.replay is not None:
        print("--calls and --replay exclude each other", file=sys.stderr)
        return 2
    count = args.replay if args.replay is not None else (args.calls or 1)
    if count < 1:
        print("--calls and --replay need at least 1", file=sys.stderr)
        return 2
    dpop = None
    if args.dpop is not None:
        if token is None:
            print("--dpop needs a TOKEN", file=sys.stderr)
            return 2
        scheme = "https" if args.ca is not None else "http"
        htu = f"{scheme}://{address}/orders.v1.Orders/{rpc}"
        dpop = _Dpop(args, htu, token)
    scheme = args.scheme or ("DPoP" if dpop is not None else "Bearer")
    status = 0
    with _channel(address, args) as channel:
        stub = orders_pb2_grpc.OrdersStub(channel)
        for _ in range(count):
            metadata = [("authorization", f"{scheme} {token}")] if token else []
            proof = dpop.proof() if dpop is not None else None
            if proof is not None:
                metadata.append(("dpop", proof))
                if args.two_proofs:
                    metadata.append(("dpop", proof))
            try:
                _, call = calls[rpc](stub).with_call(
                    requests[rpc](), metadata=metadata or None, timeout=TIMEOUT_S
                )
                line = "OK"
                nonce = _metadata_value(call, "dpop-nonce")
            except grpc.RpcError as err:
                code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
                challenge = _metadata_value(err, "www-authenticate")
                line = f"CODE {code.value[0]} {challenge if challenge is not None else '-'}"
                nonce = _metadata_value(err, "dpop-nonce")
                status = 1
            if nonce is not None:
                line += f" dpop-nonce={nonce}"
                if dpop is not None:
                    dpop.learn(nonce)
            print(line, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Interop gRPC client for the Rust orders example server.

usage: client.py [--ca FILE [--cert FILE --key FILE]] ADDRESS RPC [TOKEN]
  ADDRESS  host:port of the server (plaintext channel, or TLS with --ca)
  RPC      WhoAmI | CreateOrder | GetHTTPStatus
  TOKEN    sent as `authorization: Bearer TOKEN` when given
  --ca     TLS, trusting this CA (PEM) for the server's certificate
  --cert, --key
           mutual TLS: present this client certificate (PEM chain) and its key (PEM)

Prints exactly one line: `OK`, or `CODE <numeric status> <www-authenticate or ->`.
The stubs (orders_pb2, orders_pb2_grpc) are imported from $ORDERS_STUBS, else from
the directory of this script; generate them with gen.sh.
Exit status: 0 for OK, 1 for a gRPC error, 2 for a usage error.
"""
import argparse
import os
import sys

stubs = os.environ.get("ORDERS_STUBS") or os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, stubs)

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


def main(argv):
    parser = argparse.ArgumentParser(add_help=False, usage=__doc__.strip())
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
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
    metadata = [("authorization", f"Bearer {token}")] if token else None
    with _channel(address, args) as channel:
        stub = orders_pb2_grpc.OrdersStub(channel)
        try:
            calls[rpc](stub)(requests[rpc](), metadata=metadata, timeout=TIMEOUT_S)
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
            challenge = None
            if hasattr(err, "trailing_metadata"):
                challenge = _header(err.trailing_metadata(), "www-authenticate")
            if challenge is None and hasattr(err, "initial_metadata"):
                challenge = _header(err.initial_metadata(), "www-authenticate")
            print(f"CODE {code.value[0]} {challenge if challenge is not None else '-'}")
            return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

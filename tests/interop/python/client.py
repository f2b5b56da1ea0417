#!/usr/bin/env python3
"""Interop gRPC client for the Rust orders example server.

usage: client.py ADDRESS RPC [TOKEN]
  ADDRESS  host:port of the server (plaintext channel)
  RPC      WhoAmI | CreateOrder | GetHTTPStatus
  TOKEN    sent as `authorization: Bearer TOKEN` when given

Prints exactly one line: `OK`, or `CODE <numeric status> <www-authenticate or ->`.
The stubs (orders_pb2, orders_pb2_grpc) are imported from $ORDERS_STUBS, else from
the directory of this script; generate them with gen.sh.
Exit status: 0 for OK, 1 for a gRPC error, 2 for a usage error.
"""
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


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    address, rpc = argv[1], argv[2]
    token = argv[3] if len(argv) == 4 else None
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
    with grpc.insecure_channel(address) as channel:
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

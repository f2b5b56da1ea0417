#!/usr/bin/env bash
# Generate Python gRPC stubs for examples/proto/orders.proto.
#   gen.sh OUT_DIR [PYTHON]
# PYTHON defaults to $PYTHON or python3; it must have grpcio-tools installed
# (pip install -r requirements.txt). Writes OUT_DIR/orders_pb2.py, orders_pb2_grpc.py.
set -euo pipefail
out=${1:?usage: gen.sh OUT_DIR [PYTHON]}
py=${2:-${PYTHON:-python3}}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
proto_dir=$(cd "$here/../../../examples/proto" && pwd)
mkdir -p "$out"
"$py" -m grpc_tools.protoc -I "$proto_dir" \
  --python_out="$out" --grpc_python_out="$out" \
  "$proto_dir/orders.proto"
echo "generated $out/orders_pb2.py $out/orders_pb2_grpc.py" >&2

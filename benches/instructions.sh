#!/usr/bin/env bash
# Instructions per end-to-end unary call (client and server in one process), counted by
# callgrind: the same count for the same binary and inputs whatever else the machine does, so
# the small per-call cost of the cached path can be seen where wall-clock timings are noise.
#
# For each variant: callgrind total for N1 and for N2 calls; (I(N2) - I(N1)) / (N2 - N1) is
# one call, set-up cancelled out. Needs valgrind. Usage: benches/instructions.sh [N1 N2]
set -euo pipefail
cd "$(dirname "$0")/.."
n1="${1:-200}"
n2="${2:-1200}"

bin="$(cargo bench -p oauth-grpc-benches --bench e2e --no-run 2>&1 \
  | sed -n 's/.*Executable benches\/e2e.rs (\(.*\))/\1/p' | tail -1)"
[ -x "$bin" ] || { echo "cannot find the e2e bench executable" >&2; exit 1; }

count() { # variant calls -> total instructions
  E2E_INSTRUCTIONS="$1:$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

printf '%-12s %16s %14s\n' variant "instr/call" "ratio"
base=""
for variant in baseline cached uncached interceptor; do
  a="$(count "$variant" "$n1")"
  b="$(count "$variant" "$n2")"
  per=$(( (b - a) / (n2 - n1) ))
  [ -n "$base" ] || base="$per"
  printf '%-12s %16d %14s\n' "$variant" "$per" "$(awk -v p="$per" -v b="$base" 'BEGIN { printf "%.4f", p / b }')"
done

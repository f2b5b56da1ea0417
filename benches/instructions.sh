#!/usr/bin/env bash
# Instructions per operation, counted by callgrind: the same count for the same binary and
# inputs whatever else the machine does, so ratios hold where wall-clock timings are noise.
#
# For each measurement: the callgrind total for N1 and for N2 repetitions;
# (I(N2) - I(N1)) / (N2 - N1) is one repetition, set-up cancelled out.
#   1. one token check per algorithm: the backend's bare signature check (the limit),
#      jsonwebtoken::decode (the baseline), ours uncached and cached (benches/validation.rs);
#   2. one end-to-end unary call, client and server in one process (benches/e2e.rs), over
#      plain HTTP/2 and over mutual TLS (a token bound to the client certificate).
# valgrind hides the CPU's SHA extensions, so SHA-256 (the cache key) runs in software
# here and costs more than it does natively; BENCHMARKS.md says how much.
#
# Needs valgrind. Usage: benches/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."

executable() { # bench name -> path
  cargo bench -p oauth-grpc-benches --bench "$1" --no-run 2>&1 \
    | sed -n "s/.*Executable benches\/$1.rs (\(.*\))/\1/p" | tail -1
}

count() { # env-assignment binary -> total instructions of the process (the largest count:
          # criterion may start a short child process to look for gnuplot)
  env "$1" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$2" --bench 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p' | sort -n | tail -1
}

per() { # env-name value-prefix n1 n2 binary -> instructions per repetition
  local a b
  a="$(count "$1=$2:$3" "$5")"
  b="$(count "$1=$2:$4" "$5")"
  echo $(( (b - a) / ($4 - $3) ))
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

validation="$(executable validation)"
echo "## Token check, instructions per check"
echo
echo "| alg | limit | jsonwebtoken | ours, uncached | ours, cached | uncached / jsonwebtoken | limit / uncached |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for alg in RS256 PS256 ES256 EdDSA HS256; do
  limit="$(per VALIDATION_INSTRUCTIONS "$alg:0" 20 120 "$validation")"
  base="$(per VALIDATION_INSTRUCTIONS "$alg:1" 20 120 "$validation")"
  ours="$(per VALIDATION_INSTRUCTIONS "$alg:2" 20 120 "$validation")"
  cached="$(per VALIDATION_INSTRUCTIONS "$alg:3" 20 120 "$validation")"
  echo "| $alg | $limit | $base | $ours | $cached | $(ratio "$ours" "$base") | $(ratio "$limit" "$ours") |"
done

e2e="$(executable e2e)"
echo
echo "## End-to-end unary call, instructions per call (client and server)"
echo
echo "| variant | instructions | ratio to no auth |"
echo "|---|---:|---:|"
base=""
for variant in baseline cached uncached interceptor; do
  n="$(per E2E_INSTRUCTIONS "$variant" 200 1200 "$e2e")"
  [ -n "$base" ] || base="$n"
  echo "| $variant | $n | $(ratio "$n" "$base") |"
done

echo
echo "## End-to-end unary call over mutual TLS, instructions per call (client and server)"
echo
echo "| variant | instructions | ratio to mTLS no auth |"
echo "|---|---:|---:|"
base=""
for variant in tls-baseline tls-bound; do
  n="$(per E2E_INSTRUCTIONS "$variant" 200 1200 "$e2e")"
  [ -n "$base" ] || base="$n"
  echo "| $variant | $n | $(ratio "$n" "$base") |"
done

#!/usr/bin/env bash
# Instructions per operation, counted by callgrind: the same count for the same binary and
# inputs whatever else the machine does, so ratios hold where wall-clock timings are noise.
#
# For each measurement: the callgrind total for N1 and for N2 repetitions;
# (I(N2) - I(N1)) / (N2 - N1) is one repetition, set-up cancelled out.
#   1. one token check per algorithm: the backend's bare signature check (the limit),
#      jsonwebtoken::decode (the baseline), ours uncached and cached (benches/validation.rs);
#   2. one end-to-end unary call, client and server in one process (benches/e2e.rs), over
#      plain HTTP/2 and over mutual TLS (a token bound to the client certificate);
#   3. DPoP (RFC 9449): one call through OAuthLayer in process per proof algorithm, a cached
#      DPoP-bound token with a fresh proof against the same layer's cached bearer call, the
#      bare signature check of a proof, and the client's making of a proof
#      (benches/validation.rs); and the end-to-end call with a DPoP ES256 proof, signed per
#      call by the client or ahead of the calls, against no auth and the cached bearer call.
# valgrind hides the CPU's SHA extensions, so SHA-256 (the cache key, a proof's `ath`) runs
# in software here and costs more than it does natively; BENCHMARKS.md says how much.
#
#   4. delegation (RFC 8693 `act`): a cached delegated call through OAuthLayer in process,
#      one actor and a chain of four, against the same layer's cached direct call, on a
#      method with `delegation = actors("assistant")` (benches/validation.rs).
#   5. shared state: a cached call through OAuthLayer in process with no revocation list,
#      with an empty one and with 1,000 revocations none of which covers the caller, and a
#      call to a `once` method with a fresh `jti` per call (tokens verified and cached
#      beforehand) on the default MemoryStore (benches/shared_state.rs; its wall-clock mode,
#      against a local redis-server, is `cargo bench -p oauth-grpc-benches --bench
#      shared_state`).
#   6. audit log and metrics: a cached call through OAuthLayer in process with the default
#      TracingSink (no subscriber) and no meter provider, a no-op sink, the JSON Lines log
#      (JsonLines to io::sink, its writer thread counted: flushed before the exit), and the
#      first and the third with an OpenTelemetry SDK meter provider installed globally
#      (benches/audit.rs; its criterion mode is `cargo bench -p oauth-grpc-benches --bench
#      audit`). N1 = 200, N2 = 5,200: over 1,000 calls these counts move by ±1k from one
#      process to the next, over 5,000 by about ±0.1k (the JSON Lines variants ±0.5k).
# Needs valgrind. Usage: benches/instructions.sh [tokens] [e2e] [tls] [dpop] [delegation]
# [shared] [audit] (the sections to run; all seven without arguments).
set -euo pipefail
cd "$(dirname "$0")/.."

sections="${*:-tokens e2e tls dpop delegation shared audit}"
wants() { [[ " $sections " == *" $1 "* ]]; }

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
e2e="$(executable e2e)"

if wants tokens; then
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
echo
fi

if wants e2e; then
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
fi

if wants tls; then
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
echo
fi

if wants dpop; then
echo "## DPoP, in process through OAuthLayer (cached token), instructions per operation"
echo
echo "check = DPoP call - bearer call of the same layer; limit = the bare signature check of"
echo "the proof on a pre-parsed key; client = making one proof (claims, ath, signature)."
echo
echo "| proof alg | bearer call | DPoP call | DPoP / bearer | check | limit | limit / check | client, jsonwebtoken | client, key parsed once |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
bearer="$(per DPOP_INSTRUCTIONS "ES256:0" 20 120 "$validation")"
for alg in ES256 ES384 EdDSA PS256 RS256; do
  call="$(per DPOP_INSTRUCTIONS "$alg:1" 20 120 "$validation")"
  limit="$(per DPOP_INSTRUCTIONS "$alg:2" 20 120 "$validation")"
  client="$(per DPOP_INSTRUCTIONS "$alg:3" 20 120 "$validation")"
  parsed="$(per DPOP_INSTRUCTIONS "$alg:4" 20 120 "$validation")"
  check=$(( call - bearer ))
  echo "| $alg | $bearer | $call | $(ratio "$call" "$bearer") | $check | $limit | $(ratio "$limit" "$check") | $client | $parsed |"
done

echo
echo "## DPoP end to end (ES256 proofs), instructions per call (client and server)"
echo
echo "| variant | instructions | ratio to no auth | ratio to cached bearer |"
echo "|---|---:|---:|---:|"
base=""
cached=""
for variant in baseline cached dpop-presigned dpop; do
  n="$(per E2E_INSTRUCTIONS "$variant" 200 1200 "$e2e")"
  [ -n "$base" ] || base="$n"
  [ "$variant" != cached ] || cached="$n"
  echo "| $variant | $n | $(ratio "$n" "$base") | $([ -n "$cached" ] && ratio "$n" "$cached" || echo -) |"
done
fi

if wants delegation; then
echo "## Delegation, in process through OAuthLayer (cached token), instructions per call"
echo
echo "| variant | instructions | ratio to the direct call |"
echo "|---|---:|---:|"
base=""
for variant in 0 1 2; do
  n="$(per DELEGATION_INSTRUCTIONS "$variant" 200 1200 "$validation")"
  [ -n "$base" ] || base="$n"
  label=("direct call" "delegated, one actor (listed)" "delegated, chain of 4 (listed actor outermost)")
  echo "| ${label[$variant]} | $n | $(ratio "$n" "$base") |"
done
echo
fi

if wants shared; then
shared="$(executable shared_state)"
# One token per `once` call, signed natively ahead (1,200 RSA signatures would take minutes
# under valgrind); every count reads the same file, so verifying them cancels out.
tokens="$(mktemp)"
SHARED_MINT="$tokens:1200" "$shared" --bench
export SHARED_TOKENS="$tokens"
echo "## Shared state, in process through OAuthLayer (cached token), instructions per call"
echo
echo "| variant | instructions | ratio to (a) |"
echo "|---|---:|---:|"
base=""
label=("(a) cached call, GetOrder, no revocation list"
  "(b) same, Revocations configured, empty"
  "(c) same, 1,000 revocations, none covering the caller"
  "(d) once call, RefundOrder, fresh jti, default MemoryStore")
for variant in 0 1 2 3; do
  n="$(per SHARED_INSTRUCTIONS "$variant" 200 1200 "$shared")"
  [ -n "$base" ] || base="$n"
  echo "| ${label[$variant]} | $n | $(ratio "$n" "$base") |"
done
unset SHARED_TOKENS
rm -f "$tokens"
echo
fi

if wants audit; then
audit="$(executable audit)"
echo "## Audit log and metrics, in process through OAuthLayer (cached token), instructions per call"
echo
echo "(I(5,200 calls) - I(200)) / 5,000; every thread of the process counted: (c) and (e)"
echo "include the JSON Lines writer thread."
echo
echo "| variant | instructions | ratio to (b) | ratio to (a) |"
echo "|---|---:|---:|---:|"
declare -A audit_label=(
  [a]="(a) default TracingSink (no subscriber), no meter provider"
  [b]="(b) no-op sink closure, no meter provider"
  [c]="(c) JsonLines to io::sink (request path and writer thread)"
  [d]="(d) (a) + OpenTelemetry SDK meter provider (ManualReader)"
  [e]="(e) (c) + OpenTelemetry SDK meter provider")
declare -A audit_n
for variant in a b c d e; do
  audit_n[$variant]="$(per AUDIT_INSTRUCTIONS "$variant" 200 5200 "$audit")"
done
for variant in a b c d e; do
  echo "| ${audit_label[$variant]} | ${audit_n[$variant]} | $(ratio "${audit_n[$variant]}" "${audit_n[b]}") | $(ratio "${audit_n[$variant]}" "${audit_n[a]}") |"
done
echo
fi

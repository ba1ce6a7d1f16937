#!/usr/bin/env bash
# Generate both API clients from a throwaway server and run their test suites against it.
#
#   bash clients/run-tests.sh [path/to/custodia]
#
# The binary defaults to the debug build in ${CARGO_TARGET_DIR:-~/.cache/custodia-target}. The
# server gets a free port on 127.0.0.1 and a temporary data directory, both gone afterwards
# (CUSTODIA_CLIENTS_KEEP=1 keeps the directory: generated code, logs). Exits non-zero if
# generation or any test fails. Its last line is "clients: N passed, N failed".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/custodia-target}/debug/custodia}
venv=${CUSTODIA_CLIENTS_VENV:-$HOME/.cache/custodia-clients-venv}
[ -x "$bin" ] || { echo "run-tests.sh: no custodia binary at $bin (build it, or pass its path)" >&2; exit 1; }

start=$SECONDS
tmp=$(mktemp -d "${TMPDIR:-/tmp}/custodia-clients.XXXXXX")
server_pid=""
cleanup() {
  local status=$?
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "${CUSTODIA_CLIENTS_KEEP:-}" = 1 ]; then
    echo "clients: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "clients: $*" >&2
  exit 1
}
show() { # show FILE [LINES]: the tail of a log, on failure
  [ -s "$1" ] || return 0
  echo "--- ${1#"$tmp"/} (last ${2:-60} lines)" >&2
  tail -n "${2:-60}" "$1" >&2
}

# The server, with none of the caller's CUSTODIA_* settings (a TLS certificate, a database URL,
# a root key...): plain HTTP, SQLite, a fresh data directory.
unset_custodia=()
while IFS= read -r name; do unset_custodia+=(-u "$name"); done < <(compgen -e | grep '^CUSTODIA_' || true)
env "${unset_custodia[@]}" "$bin" serve --data-dir "$tmp/data" --listen 127.0.0.1:0 \
  >"$tmp/server.out" 2>"$tmp/server.log" &
server_pid=$!
addr=""
for _ in $(seq 600); do
  addr=$(sed -n '1s#.*listening on \(http://[^ ]*\).*#\1#p' "$tmp/server.out")
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$addr" ] || [ ! -s "$tmp/data/admin-token" ]; then
  show "$tmp/server.out"; show "$tmp/server.log"
  fail "the server did not start (binary $bin)"
fi

export CUSTODIA_ADDR="$addr"
CUSTODIA_TOKEN=$(cat "$tmp/data/admin-token")
export CUSTODIA_TOKEN
export CUSTODIA_CLIENTS_VENV="$venv"
gen="$tmp/gen"

t0=$SECONDS
if ! bash "$here/generate.sh" "$gen" 2>"$tmp/generate.err"; then
  cat "$tmp/generate.err" >&2
  show "$tmp/server.log" 20
  fail "generating the clients failed"
fi
echo "clients: generated from $addr/openapi.json in $((SECONDS - t0))s"

# The two suites run side by side; each writes its result to $tmp/<suite>.result
# ("STATUS PASSED FAILED") and its output to files shown only on failure.

python_suite() {
  local status=0 counts
  PYTHONPATH="$gen/python" PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider --tb=short \
    --junitxml="$tmp/python.xml" "$here/python/test_client.py" >"$tmp/python.out" 2>&1 || status=$?
  counts=$("$venv/bin/python" - "$tmp/python.xml" <<'PY' 2>/dev/null || echo "0 1"
import sys, xml.etree.ElementTree as ET
s = ET.parse(sys.argv[1]).getroot()
s = s if s.tag == "testsuite" else s.find("testsuite")
n, bad = int(s.get("tests")), int(s.get("failures")) + int(s.get("errors"))
print(n - bad - int(s.get("skipped")), bad)
PY
)
  echo "$status $counts" >"$tmp/python.result"
}

# TypeScript: tsc type-checks the test against the generated types and builds it into $gen (the
# build finds clients/typescript/node_modules through a link); then node's test runner.
typescript_suite() {
  local status=0 pass fail ts="$here/typescript"
  cat >"$gen/tsconfig.test.json" <<JSON
{ "extends": "$ts/tsconfig.json",
  "compilerOptions": { "paths": { "custodia-schema": ["$gen/typescript/schema.d.ts"] }, "outDir": "$gen/ts-build" },
  "include": ["$ts/test/**/*.ts"] }
JSON
  ln -s "$ts/node_modules" "$gen/node_modules"
  mkdir -p "$gen/ts-build"
  echo '{"type": "module"}' >"$gen/ts-build/package.json"
  if ! "$ts/node_modules/.bin/tsc" -p "$gen/tsconfig.test.json" >"$tmp/typescript.out" 2>&1; then
    echo "(the TypeScript test does not type-check against the generated types)" >>"$tmp/typescript.out"
    echo "1 0 1" >"$tmp/typescript.result"
    return
  fi
  node --test --test-reporter=spec --test-reporter-destination="$tmp/typescript.out" \
    --test-reporter=tap --test-reporter-destination="$tmp/typescript.tap" \
    "$gen/ts-build/client.test.js" >/dev/null 2>&1 || status=$?
  pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tmp/typescript.tap")
  fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tmp/typescript.tap")
  echo "$status ${pass:-0} ${fail:-1}" >"$tmp/typescript.result"
}

t0=$SECONDS
python_suite &
py_job=$!
typescript_suite &
ts_job=$!
wait "$py_job" "$ts_job" || true

passed=0 failed=0 ok=1
for suite in python typescript; do
  read -r status pass fail <"$tmp/$suite.result" 2>/dev/null || { status=1 pass=0 fail=1; }
  if [ "$status" -ne 0 ]; then
    ok=0
    [ "$fail" -gt 0 ] || fail=1
    show "$tmp/$suite.out" 200
  fi
  passed=$((passed + pass)) failed=$((failed + fail))
  printf 'clients: %s %d passed, %d failed\n' "$suite:" "$pass" "$fail"
done

if [ "$ok" -ne 1 ]; then
  show "$tmp/server.log" 30
fi
echo "clients: tests in $((SECONDS - t0))s, all in $((SECONDS - start))s"
echo "clients: $passed passed, $failed failed"
[ "$ok" -eq 1 ]

#!/usr/bin/env bash
# Generate Custodia's API clients from a running server's OpenAPI document.
#
#   CUSTODIA_ADDR=http://127.0.0.1:8200 CUSTODIA_TOKEN=cst_... bash clients/generate.sh OUT
#
# writes
#   OUT/openapi.json             the document, as served (GET /openapi.json)
#   OUT/python/                  openapi-python-client: the `custodia_client` package (pip install OUT/python)
#   OUT/typescript/schema.d.ts   openapi-typescript: the types openapi-fetch's createClient<paths>() takes
#
# With CUSTODIA_TOKEN (any valid API key) the server answers the richer document: its
# collections and fields as enums too, not only its purposes and jurisdictions. The key is sent
# in a header and written nowhere.
#
# Installs what it needs when missing, at the versions pinned here: a venv from
# clients/python/requirements.txt (hashes required) in ${CUSTODIA_CLIENTS_VENV:-~/.cache/custodia-clients-venv},
# and `npm ci` into clients/typescript/node_modules from clients/typescript/package-lock.json.
# Needs python3 (3.11 or later: openapi-python-client 0.29 and the code it generates), node 20+, npm.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: CUSTODIA_ADDR=http://host:port [CUSTODIA_TOKEN=...] generate.sh OUT_DIR}
addr=${CUSTODIA_ADDR:?set CUSTODIA_ADDR to the server, e.g. http://127.0.0.1:8200}
python=${CUSTODIA_PYTHON:-python3}
venv=${CUSTODIA_CLIENTS_VENV:-$HOME/.cache/custodia-clients-venv}
ts="$here/typescript"

mkdir -p "$out"
out=$(cd "$out" && pwd)
log="$out/generate.log" # the Python side's log; the TypeScript side's is $out/typescript.log
: >"$log"

fail() {
  echo "generate.sh: $*" >&2
  if [ -s "$log" ]; then
    echo "--- $log (last 40 lines)" >&2
    tail -n 40 "$log" >&2
  fi
  exit 1
}

sha256() {
  if command -v sha256sum >/dev/null; then
    sha256sum "$1" | cut -d' ' -f1
  else
    "$python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
  fi
}

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  fail "$python is $("$python" -V 2>&1); openapi-python-client needs Python 3.11 or later (set CUSTODIA_PYTHON)"
{ command -v node && command -v npm; } >/dev/null || fail "node and npm are needed"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' ||
  fail "node $(node --version) is too old: 20 or later is needed"

# 1. The document. Python's urllib, so curl is not needed. Over https, the system's roots are
# trusted, or the PEM file CUSTODIA_CACERT names (as for the CLI).
CUSTODIA_ADDR="$addr" "$python" - "$out/openapi.json" <<'PY' || fail "could not fetch $addr/openapi.json"
import json, os, ssl, sys, urllib.request
req = urllib.request.Request(os.environ["CUSTODIA_ADDR"].rstrip("/") + "/openapi.json")
token = os.environ.get("CUSTODIA_TOKEN")
if token:
    req.add_header("Authorization", "Bearer " + token)
tls = ssl.create_default_context(cafile=os.environ.get("CUSTODIA_CACERT") or None)
with urllib.request.urlopen(req, timeout=30, context=tls) as r:
    body = r.read()
doc = json.loads(body)
if not isinstance(doc, dict) or "openapi" not in doc or "paths" not in doc:
    sys.exit("not an OpenAPI document")
with open(sys.argv[1], "wb") as f:
    f.write(body)
PY

# The two generators run side by side, each with its own log.
python_client() {
  # 2. The venv: made, or remade when requirements.txt changed.
  local want
  want=$(sha256 "$here/python/requirements.txt")
  if [ "$(cat "$venv/.custodia-requirements.sha256" 2>/dev/null)" != "$want" ] || [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv --clear "$venv" >>"$log" 2>&1 ||
      fail "could not create the venv $venv (on Debian or Ubuntu: apt-get install python3-venv)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
      --require-hashes -r "$here/python/requirements.txt" >>"$log" 2>&1 ||
      fail "pip install -r clients/python/requirements.txt failed"
    echo "$want" >"$venv/.custodia-requirements.sha256"
  fi

  # 3. Python. Any warning fails: it means part of the document did not make it into the
  # client. (The generator's post-hooks run ruff, which is in the venv.) Then every generated
  # module must import: a generator that wrote broken code fails here, not in a later caller.
  PATH="$venv/bin:$PATH" openapi-python-client generate \
    --path "$out/openapi.json" --output-path "$out/python" --overwrite \
    --config "$here/python/openapi-python-client.yaml" --fail-on-warning >>"$log" 2>&1 ||
    fail "openapi-python-client failed on the document (or warned: --fail-on-warning)"
  PYTHONPATH="$out/python" PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -c '
import importlib, pkgutil, custodia_client
for m in pkgutil.walk_packages(custodia_client.__path__, "custodia_client."):
    importlib.import_module(m.name)
' >>"$log" 2>&1 || fail "the generated Python client does not import"
}

typescript_client() {
  local log="$out/typescript.log" # fail() shows this one
  : >"$log"
  # 4. node_modules: installed, or reinstalled when package-lock.json changed.
  local want
  want=$(sha256 "$ts/package-lock.json")
  if [ "$(cat "$ts/node_modules/.custodia-lock.sha256" 2>/dev/null)" != "$want" ]; then
    (cd "$ts" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >>"$log" 2>&1 ||
      fail "npm ci in clients/typescript failed"
    echo "$want" >"$ts/node_modules/.custodia-lock.sha256"
  fi

  # 5. TypeScript types. openapi-typescript has no --fail-on-warning: its warnings (" ⚠  ...",
  # the Redocly parser's lint messages included) and errors (" ✘  ...") fail here as
  # openapi-python-client's do. Then the types must compile on their own, strictly.
  mkdir -p "$out/typescript"
  "$ts/node_modules/.bin/openapi-typescript" "$out/openapi.json" -o "$out/typescript/schema.d.ts" >>"$log" 2>&1 ||
    fail "openapi-typescript failed on the document"
  if grep -qE '⚠|✘' "$log"; then fail "openapi-typescript warned"; fi
  cat >"$out/.tsconfig.check.json" <<'JSON'
{ "compilerOptions": { "strict": true, "noEmit": true, "lib": ["ES2022"], "types": [], "skipDefaultLibCheck": true },
  "files": ["typescript/schema.d.ts"] }
JSON
  "$ts/node_modules/.bin/tsc" -p "$out/.tsconfig.check.json" >>"$log" 2>&1 ||
    fail "the generated TypeScript types do not compile"
}

python_client &
py_job=$!
typescript_client &
ts_job=$!
status=0
wait "$py_job" || status=1
wait "$ts_job" || status=1
exit "$status"

#!/usr/bin/env bash
# Custodia measured the way ../shared/bench/vault/openbao_baseline.sh measures OpenBao: the
# release server on loopback (SQLite, WAL, synchronous=FULL), wrk with 16 connections on the
# same cores. Run both in one session and compare: these machines are noisy.
#   create   store one customer record (4 sealed fields, 2 blind indexes), a new subject each
#   read     read a subject's record back (list under a purpose)
#   mixed    half creates, half reads
# Usage: bench/custodia_wrk.sh [seconds] [connections]   (from the project root)
#        BIN=/path/to/custodia bench/custodia_wrk.sh ...   measures that binary instead of
#        building this tree (to compare two builds in one session)
set -euo pipefail
secs=${1:-10}; conns=${2:-16}
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
if [[ -z ${BIN:-} ]]; then
    cargo build --release -q -p custodia-cli
fi
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/custodia}
work=$(mktemp -d /tmp/custodia-wrk.XXXXXX)
"$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 >"$work/stdout" 2>"$work/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do grep -q "listening on" "$work/stdout" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/stdout")
tok=$(cat "$work/data/admin-token")
rec='{"purpose":"order_fulfillment","fields":{"email":"ada.lovelace@example.org","name":"Ada Lovelace","phone":"+442079460958","shipping_address":"12 Analytical Row, London"}}'
curl -fs -X POST -H "Authorization: Bearer $tok" -d "$rec" "$addr/v1/subjects/cust-1/records/customers" >/dev/null
cat >"$work/create.lua" <<LUA
request = function()
  return wrk.format("POST", "/v1/subjects/cust-" .. math.random(1, 1000000000) .. "/records/customers",
    {["Authorization"] = "Bearer $tok", ["Content-Type"] = "application/json"}, '$rec')
end
LUA
printf 'wrk.method = "GET"\nwrk.headers["Authorization"] = "Bearer %s"\n' "$tok" >"$work/read.lua"
cat >"$work/mixed.lua" <<LUA
local n = 0
request = function()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format("GET", "/v1/subjects/cust-1/records/customers?purpose=order_fulfillment",
      {["Authorization"] = "Bearer $tok"})
  end
  return wrk.format("POST", "/v1/subjects/cust-" .. math.random(1, 1000000000) .. "/records/customers",
    {["Authorization"] = "Bearer $tok", ["Content-Type"] = "application/json"}, '$rec')
end
LUA
run() { # name url
  local out; out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/$1.lua" "$2")
  printf '%-12s %10s req/s  p50 %8s  p99 %8s  non-2xx %s\n' "$1" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1=="50%" {print $2}' <<<"$out")" \
    "$(awk '$1=="99%" {print $2}' <<<"$out")" "$(awk '/Non-2xx/ {print $5}' <<<"$out" | grep . || echo 0)"
}
echo "Custodia $("$bin" --version | awk '{print $2}'), SQLite WAL synchronous=FULL, ${secs}s, $conns connections"
run create "$addr"
run read "$addr/v1/subjects/cust-1/records/customers?purpose=order_fulfillment"
run mixed "$addr"

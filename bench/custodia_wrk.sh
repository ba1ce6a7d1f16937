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
. "$(dirname "$0")/workloads.sh"
seed_read "$addr" "$tok"
write_workloads "$work" "$tok"
run() { # name url
  local out; out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/$1.lua" "$2")
  printf '%-12s %10s req/s  p50 %8s  p99 %8s  non-2xx %s\n' "$1" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1=="50%" {print $2}' <<<"$out")" \
    "$(awk '$1=="99%" {print $2}' <<<"$out")" "$(awk '/Non-2xx/ {print $5}' <<<"$out" | grep . || echo 0)"
}
echo "Custodia $("$bin" --version | awk '{print $2}'), SQLite WAL synchronous=FULL, ${secs}s, $conns connections"
run create "$addr"
run read "$addr$CUSTODIA_READ_PATH"
run mixed "$addr"

#!/usr/bin/env bash
# Custodia beside OpenBao in one run, at several connection counts: the peer by
# ../shared/bench/vault/openbao_baseline.sh (raft storage, file audit device), Custodia by the
# same wrk settings on its release server (SQLite, WAL, synchronous=FULL, an audit entry per
# request). Pairs compared:
#   create     Custodia: one customer record (4 sealed fields, 2 blind indexes, audit entry)
#              OpenBao:  kv-write, one KV v2 secret of 3 fields (durable)
#   read       Custodia: an audited read under a purpose (gate, consent, decrypt, durable entry)
#              OpenBao:  kv-read
#   batch-100  Custodia: POST /v1/batch/records, 100 records of 100 new subjects, one transaction
#              OpenBao:  transit-100, encrypt 100 values in one request (stateless)
#   mixed      Custodia: half creates, half reads (no peer workload)
# For each connection count, each server is started fresh; its peak resident memory (VmHWM)
# is read while it runs. Results go to a CSV (one line per system, workload and connection
# count) that bench/report_side_by_side.py turns into a Markdown table and an SVG plot.
# Usage: bench/side_by_side.sh [seconds] [connection counts...]      (from the project root)
#   BIN=/path/to/custodia  measure that binary instead of building this tree
#   OUT=file.csv           where the CSV goes (default bench/results/side_by_side.csv)
#   BENCH_DIR=dir          the peer's work directory (its venv is kept there between runs)
set -euo pipefail
secs=${1:-10}; shift || true
counts=("$@"); [[ ${#counts[@]} -gt 0 ]] || counts=(1 16 64)
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/workloads.sh"
peer=${PEER_SCRIPT:-$root/../shared/bench/vault/openbao_baseline.sh}
[[ -f $peer ]] || { echo "the peer's script is missing: $peer" >&2; exit 1; }
export BENCH_DIR=${BENCH_DIR:-/tmp/bench-openbao}
out=${OUT:-$root/bench/results/side_by_side.csv}
mkdir -p "$(dirname "$out")"
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
work=$(mktemp -d /tmp/custodia-sbs.XXXXXX)
pid=""
# On any exit: stop the server and every background job (the memory samplers), then clean up.
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null
    local jobs; jobs=$(jobs -p)
    [[ -n $jobs ]] && kill $jobs 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
# wrk refuses fewer connections than threads, and the peer's script always asks for two
# threads: this wrapper asks for one thread when there is one connection.
real_wrk=$(command -v wrk)
mkdir -p "$work/bin"
cat >"$work/bin/wrk" <<SH
#!/usr/bin/env bash
one=0
for a in "\$@"; do [[ \$a == -c1 ]] && one=1; done
args=()
for a in "\$@"; do
    if [[ \$one == 1 && \$a == -t2 ]]; then args+=(-t1); else args+=("\$a"); fi
done
exec "$real_wrk" "\${args[@]}"
SH
chmod +x "$work/bin/wrk"
export PATH="$work/bin:$PATH"
if [[ -z ${BIN:-} ]]; then
    (cd "$root" && cargo build --release -q -p custodia-cli)
fi
bin=${BIN:-${CARGO_TARGET_DIR:-$root/target}/release/custodia}

# Peak memory (MiB) of processes whose command line matches $1, sampled every 200 ms until the
# file $2 exists; printed on stdout as "resident anonymous": VmHWM (all resident pages,
# including pages of files the process maps: both servers map their database files) and the
# highest RssAnon seen (the process's own heap and stacks).
peak_rss() {
    local pattern=$1 stop=$2 hwm=0 anon=0 h a p
    while [[ ! -e $stop ]]; do
        for p in $(pgrep -f "$pattern" || true); do
            read -r h a < <(awk '/VmHWM/ {h=$2} /RssAnon/ {a=$2} END {print h+0, a+0}' "/proc/$p/status" 2>/dev/null || echo 0 0)
            [[ ${h:-0} -gt $hwm ]] && hwm=$h
            [[ ${a:-0} -gt $anon ]] && anon=$a
        done
        sleep 0.2
    done
    echo "$((hwm / 1024)) $((anon / 1024))"
}

# wrk's figures as "req/s p50 p99 non2xx" (latencies in ms).
wrk_run() { # conns script url
    local o; o=$(wrk -t"$(( $1 < 2 ? 1 : 2 ))" -c"$1" -d"${secs}s" --latency -s "$2" "$3")
    local ms='function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }'
    printf '%s %s %s %s\n' "$(awk '/Requests\/sec/ {print $2}' <<<"$o")" \
        "$(awk "$ms"' $1=="50%" {print ms($2)}' <<<"$o")" "$(awk "$ms"' $1=="99%" {print ms($2)}' <<<"$o")" \
        "$(awk '/Non-2xx/ {print $5}' <<<"$o" | grep . || echo 0)"
}

echo "system,workload,connections,items_per_request,requests_per_s,items_per_s,p50_ms,p99_ms,non_2xx,peak_rss_mib,peak_anon_mib" >"$out"
row() { # system workload conns items "rps p50 p99 non2xx" "rss anon"
    local rps p50 p99 bad rss anon; read -r rps p50 p99 bad <<<"$5"; read -r rss anon <<<"$6"
    printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$1" "$2" "$3" "$4" "$rps" \
        "$(awk -v r="$rps" -v n="$4" 'BEGIN {printf "%.0f", r * n}')" "$p50" "$p99" "$bad" "$rss" "$anon" >>"$out"
}

custodia_at() { # conns
    local c=$1 data="$work/data-$1" stop="$work/custodia-done-$1"
    "$bin" serve --data-dir "$data" --listen 127.0.0.1:0 >"$work/stdout" 2>"$work/server.log" &
    pid=$!
    peak_rss "serve --data-dir $data" "$stop" >"$work/custodia-rss-$c" &
    local sampler=$!
    for _ in $(seq 1 100); do grep -q "listening on" "$work/stdout" 2>/dev/null && break; sleep 0.1; done
    local addr tok; addr=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/stdout")
    tok=$(cat "$data/admin-token")
    seed_read "$addr" "$tok"
    write_workloads "$work" "$tok"
    local figures=()
    figures+=("$(wrk_run "$c" "$work/create.lua" "$addr")")
    figures+=("$(wrk_run "$c" "$work/read.lua" "$addr$CUSTODIA_READ_PATH")")
    figures+=("$(wrk_run "$c" "$work/batch.lua" "$addr")")
    figures+=("$(wrk_run "$c" "$work/mixed.lua" "$addr")")
    touch "$stop"; wait $sampler
    local rss; rss=$(cat "$work/custodia-rss-$c")
    kill $pid; wait $pid 2>/dev/null || true; pid=""
    rm -rf "$data"
    row custodia create "$c" 1 "${figures[0]}" "$rss"
    row custodia read "$c" 1 "${figures[1]}" "$rss"
    row custodia batch-100 "$c" 100 "${figures[2]}" "$rss"
    row custodia mixed "$c" 1 "${figures[3]}" "$rss"
}

openbao_at() { # conns
    local c=$1 stop="$work/bao-done-$1"
    peak_rss "bao server -config=$BENCH_DIR" "$stop" >"$work/bao-rss-$c" &
    local sampler=$!
    local lines; lines=$(bash "$peer" "$secs" "$c")
    touch "$stop"; wait $sampler
    local rss; rss=$(cat "$work/bao-rss-$c")
    local name ours
    for pair in kv-write:create kv-read:read transit-100:batch-100; do
        name=${pair%%:*}; ours=${pair##*:}
        # "kv-write  1561.23 req/s  p50  9.40ms  p99  50.70ms  non-2xx 0"
        local l; l=$(grep "^$name " <<<"$lines")
        local ms='function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }'
        local fig; fig=$(awk "$ms"' {print $2, ms($5), ms($7), $9}' <<<"$l")
        row openbao "$ours" "$c" "$([[ $name == transit-100 ]] && echo 100 || echo 1)" "$fig" "$rss"
    done
}

echo "Custodia $("$bin" --version | awk '{print $2}') beside OpenBao, ${secs}s per workload, connections: ${counts[*]}"
for c in "${counts[@]}"; do
    openbao_at "$c"
    custodia_at "$c"
done
python3 "$root/bench/report_side_by_side.py" "$out"

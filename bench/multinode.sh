#!/usr/bin/env bash
# Custodia on several server nodes over one PostgreSQL database (issue 17): a throwaway
# PostgreSQL started here, then 1, 2 and 3 release server nodes on a fresh database each
# round (every node with a data directory of its own: the registry and root key copied from
# the first, as an operator deploys them), measured with wrk on loopback, the connections
# split over the nodes (one wrk per node, all at once; req/s summed):
#   read     read a subject's record back (list under a purpose): each read is audited, so
#            each is also a write to the shared audit log
#   create   store one customer record (4 sealed fields, 2 blind indexes), a new subject each
# Printed per round and workload: total req/s, p50/p99 of the worst node (the one with the
# highest p99), non-2xx answers, and while wrk ran: the mean number of PostgreSQL backends
# waiting on an advisory lock (the audit sequencer is one) and the machine's CPU use.
# Everything runs on this machine's cores: more nodes add no CPU, so this measures what
# sharing one database costs, not what more machines would gain.
# Usage: bench/multinode.sh [seconds] [connections]   (from the project root)
#        BIN=/path/to/custodia bench/multinode.sh ...  measures that binary instead of
#        building this tree
#        PG_FSYNC=off  PostgreSQL without fsync (default on, as SQLite runs synchronous=FULL
#        in bench/custodia_wrk.sh)
#        NODES="1 2 3"  the node counts to measure
set -euo pipefail
secs=${1:-8}; conns=${2:-16}
nodes_list=${NODES:-1 2 3}
pg_fsync=${PG_FSYNC:-on}
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
if [[ -z ${BIN:-} ]]; then
    cargo build --release -q -p custodia-cli
fi
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/custodia}

# PostgreSQL, found (or installed) and started the way .ci/run does.
pg_bin=""
for dir in /usr/lib/postgresql/*/bin; do
    [[ -x $dir/initdb ]] && pg_bin=$dir
done
if [[ -z $pg_bin ]] || ! command -v psql >/dev/null 2>&1; then
    sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get install -y -q postgresql postgresql-client >/dev/null
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x $dir/initdb ]] && pg_bin=$dir
    done
fi
[[ -n $pg_bin ]] || { echo "initdb not found" >&2; exit 1; }
work=$(mktemp -d /tmp/custodia-multinode.XXXXXX)
chmod 755 "$work"
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    as_pg=(runuser -u postgres --)
fi
mkdir "$work/pg"
[[ ${#as_pg[@]} -eq 0 ]] || chown postgres "$work/pg"
pids=()
stop_nodes() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    stop_nodes
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U custodia --auth=trust -E UTF8 >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w \
    -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c fsync=$pg_fsync -c max_connections=300" \
    start >/dev/null
pg="postgres://custodia@127.0.0.1:$pg_port"

. "$(dirname "$0")/workloads.sh"

# Starts `n` nodes on a fresh database; sets addrs[] and tok.
start_nodes() { # n round
    local n=$1 round=$2 i dir url
    url="$pg/bench_$round"
    psql -q "$pg/postgres" -c "CREATE DATABASE bench_$round" >/dev/null
    dir="$work/r$round"
    mkdir -p "$dir"
    tok=$("$bin" init --json --data-dir "$dir/n1" --database-url "$url" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["admin_token"])')
    addrs=()
    for i in $(seq 1 "$n"); do
        if [[ $i -gt 1 ]]; then
            mkdir -m 700 "$dir/n$i"
            cp -p "$dir/n1/registry.toml" "$dir/n1/root.key" "$dir/n$i/"
        fi
        CUSTODIA_LOG=warn "$bin" serve --data-dir "$dir/n$i" --database-url "$url" --listen 127.0.0.1:0 \
            >"$dir/n$i.stdout" 2>"$dir/n$i.log" &
        pids+=($!)
    done
    for i in $(seq 1 "$n"); do
        for _ in $(seq 1 100); do grep -q "listening on" "$dir/n$i.stdout" 2>/dev/null && break; sleep 0.1; done
        addrs+=("$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$dir/n$i.stdout")")
        [[ -n ${addrs[-1]} ]] || { echo "node $i did not start:" >&2; cat "$dir/n$i.log" >&2; exit 1; }
    done
    seed_read "${addrs[0]}" "$tok"
    write_workloads "$dir" "$tok"
}

# Milliseconds from wrk's latency notation (850.00us, 1.23ms, 1.02s, 2.00m).
to_ms() {
    awk -v v="$1" 'BEGIN { u = v; sub(/^[0-9.]+/, "", u); n = v + 0;
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
        printf "%.2f", n }'
}

# Samples, until killed: backends waiting on an advisory lock, and the CPU's busy share.
sample() { # out
    local prev total idle
    read -r _ a b c d e f g h _ </proc/stat; prev="$((a+b+c+d+e+f+g+h)) $((d+e))"
    while :; do
        psql -qtAX "$pg/postgres" -c \
            "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event = 'advisory') FROM pg_stat_activity" \
            2>/dev/null | sed 's/^/adv /' >>"$1" || true
        sleep 0.25
    done &
    sampler=$!
    cpu_start=$prev
}
cpu_busy() { # "total idle" at the start
    local t0 i0 a b c d e f g h
    read -r t0 i0 <<<"$1"
    read -r _ a b c d e f g h _ </proc/stat
    awk -v t=$((a+b+c+d+e+f+g+h-t0)) -v i=$((d+e-i0)) 'BEGIN { if (t > 0) printf "%.0f%%", 100 * (t - i) / t; else print "?" }'
}

run() { # n workload round
    local n=$1 w=$2 round=$3 dir="$work/r$3" i c path outs=() base rest sum p50 p99 worst non2xx adv busy
    base=$((conns / n)); rest=$((conns % n))
    path=""
    [[ $w == read ]] && path=$CUSTODIA_READ_PATH
    : >"$dir/$w.samples"
    sample "$dir/$w.samples"
    local wrks=()
    for i in $(seq 0 $((n - 1))); do
        c=$((base + (i < rest ? 1 : 0)))
        local t=1; [[ $n -eq 1 ]] && t=2
        wrk -t"$t" -c"$c" -d"${secs}s" --latency -s "$dir/$w.lua" "${addrs[$i]}$path" >"$dir/$w.wrk$i" 2>&1 &
        wrks+=($!)
    done
    for i in "${wrks[@]}"; do wait "$i"; done
    busy=$(cpu_busy "$cpu_start")
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    sum=0; worst=-1; p50=?; p99=?; non2xx=0
    for i in $(seq 0 $((n - 1))); do
        local out="$dir/$w.wrk$i" rps l50 l99 bad
        rps=$(awk '/Requests\/sec/ {print $2}' "$out")
        [[ -n $rps ]] || { echo "wrk against node $((i + 1)) failed:" >&2; cat "$out" >&2; exit 1; }
        sum=$(awk -v a="$sum" -v b="$rps" 'BEGIN { printf "%.1f", a + b }')
        l50=$(to_ms "$(awk '$1=="50%" {print $2}' "$out")")
        l99=$(to_ms "$(awk '$1=="99%" {print $2}' "$out")")
        if awk -v a="$l99" -v b="$worst" 'BEGIN { exit !(a > b) }'; then worst=$l99; p50=$l50; p99=$l99; fi
        bad=$(awk '/Non-2xx/ {print $5}' "$out"); non2xx=$((non2xx + ${bad:-0}))
    done
    adv=$(awk '$1=="adv" { s += $2; k++ } END { if (k) printf "%.1f", s / k; else print "?" }' "$dir/$w.samples")
    printf '%5s  %-8s %10s %10s %10s %8s %9s %6s\n' "$n" "$w" "$sum" "$p50" "$p99" "$non2xx" "$adv" "$busy"
}

echo "Custodia $("$bin" --version | awk '{print $2}') on PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') (fsync=$pg_fsync), ${secs}s per workload, $conns connections over the nodes, $(nproc) cores shared by all"
printf '%5s  %-8s %10s %10s %10s %8s %9s %6s\n' nodes workload "req/s" "p50 ms" "p99 ms" non-2xx adv-wait cpu
round=0
for n in $nodes_list; do
    round=$((round + 1))
    start_nodes "$n" "$round"
    run "$n" read "$round"
    run "$n" create "$round"
    stop_nodes
done

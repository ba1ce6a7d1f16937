#!/usr/bin/env bash
# The PII scanner beside Presidio, in one run: Presidio (regex only, then with spaCy) and then
# Custodia's `bench-scan` on two corpora, gen_corpus.py (English prose) and gen_dense.py
# (identifiers in seven locales). Presidio is installed in a virtualenv on first use by
# ../shared/bench/pii/presidio_baseline.sh (PyPI only).
#
# Usage: bash bench/pii/compare.sh [CUSTODIA_BINARY]   (default: target/release/custodia)
# Environment: BENCH_DIR (Presidio's venv and gen_corpus corpus; default .bench/presidio),
#              SHARED_BENCH (default ../shared/bench/pii).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared=${SHARED_BENCH:-$repo/../shared/bench/pii}
work=$(mkdir -p "${BENCH_DIR:-$repo/.bench/presidio}" && cd "${BENCH_DIR:-$repo/.bench/presidio}" && pwd)
bin=${1:-$repo/target/release/custodia}
[[ -x $bin ]] || { echo "no Custodia binary at $bin (cargo build --release, or pass its path)" >&2; exit 2; }
if [[ ! -x $work/venv/bin/python || ! -f $work/corpus.jsonl ]]; then
  echo "installing Presidio and writing gen_corpus.py 1000000 42 in $work ..." >&2
  BENCH_DIR=$work bash "$shared/presidio_baseline.sh" > "$work/baseline.log" 2>&1
fi
py=$work/venv/bin/python
dense=$work/dense
mkdir -p "$dense"
[[ -f $dense/corpus.jsonl ]] || "$py" "$here/gen_dense.py" 1000000 7 > "$dense/corpus.jsonl"
date -u
for corpus in "$work" "$dense"; do
  echo "### Presidio on $corpus/corpus.jsonl"
  (cd "$corpus" && "$py" "$shared/presidio_time.py" regex 2>/dev/null && "$py" "$shared/presidio_time.py" spacy 2>/dev/null)
done
for corpus in "$work" "$dense"; do
  echo "### Custodia on $corpus/corpus.jsonl"
  "$bin" bench-scan "$corpus/corpus.jsonl" --seconds 3
done
date -u

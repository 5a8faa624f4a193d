#!/usr/bin/env bash
# Engine benchmark on the public benchmark (zlib, libyaml, expat; built by `python -m training.corpus all --benchmark`).
# Writes one JSON report per configuration to docs/bench/ and prints the summary lines.
# Usage: scripts/bench_engine.sh [LIMIT] [SOURCES]   (LIMIT: even sample of functions, 0 = all; default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${1:-300}
sources=${2:-coreset,search}
tag=${3:-engine}
passpilot=${PASSPILOT:-.venv/bin/passpilot}
for budget in 1 10 50; do
  for config in "$tag:$sources" "random:search"; do
    name=${config%%:*}; src=${config#*:}
    out=docs/bench/${name}-b${budget}-n${limit}.json
    "$passpilot" bench data/benchmark --limit "$limit" --budget "$budget" --sources "$src" --json > "$out"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); t=r['totals']; s=r['seconds_per_function']; print(f\"{sys.argv[2]:>8} budget {r['budget']:>3} sources {','.join(r['sources']):<22} functions {t['functions']}  gain vs -Oz {t['gain_vs_oz_percent']:6.2f}%  improved {t['improved_functions']:>4}  p50 {s['p50']:.3f}s  p95 {s['p95']:.3f}s\")" "$out" "$name"
  done
done

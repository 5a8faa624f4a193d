#!/usr/bin/env bash
# Model and coreset benchmark on the public benchmark: writes docs/bench/<name>-b<budget>-n<limit>.json
# and prints one summary line per configuration.  Usage: scripts/bench_model.sh [LIMIT]
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${1:-150}
passpilot=${PASSPILOT:-.venv/bin/passpilot}
run() {  # name budget sources [extra passpilot options]
  local name=$1 budget=$2 sources=$3; shift 3
  local out=docs/bench/${name}-b${budget}-n${limit}.json
  "$passpilot" bench data/benchmark --limit "$limit" --budget "$budget" --sources "$sources" --json "$@" > "$out"
  python3 - "$out" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); t = r["totals"]; s = r["seconds_per_function"]; m = r["model_answers"] or {}
extra = f"  model valid {100 * m['valid_share']:.1f}% MAE original {m['mae_original']} MAE best {m['mae_best']}" if m else ""
print(f"{sys.argv[2]:>14} budget {r['budget']:>3} sources {','.join(r['sources']):<20} gain vs -Oz {t['gain_vs_oz_percent']:6.2f}%  "
      f"improved {t['improved_functions']:>3}/{t['functions']}  p50 {s['p50']:.3f}s  p95 {s['p95']:.3f}s{extra}")
PY
}
run model 1 model
run model 10 model --samples 10
run coreset 10 coreset
run model+coreset 10 model,coreset --samples 4
run engine 1 model,coreset,search
run engine 10 model,coreset,search
run engine 50 model,coreset,search
run random 1 search
run random 10 search
run random 50 search
run random 100 search

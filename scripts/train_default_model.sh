#!/usr/bin/env bash
# Rebuild the shipped ranking model and coreset from the dense labels in data/labels (python -m training.labels),
# on this machine's CPU. Steps:
#   1. coreset: greedy on the dense labels, curve and plot; models/coreset.txt is replaced only if it wins on held-out functions;
#   2. more functions labelled under the curve's lists only (cheap: ~30 lists instead of 512), EXTRA functions;
#   3. ranking dataset (both label folders) -> train (best checkpoint on held-out functions) -> export (how many
#      best-scored lists lead before the coreset order, chosen on held-out functions; Q8_0; llama.cpp parity check);
#   4. models/passpilot.gguf, only if on held-out functions the model's order beats the fixed coreset order at budget 1
#      and is not worse at budget 10.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
minutes=${TRAIN_MINUTES:-45}
extra=${EXTRA:-6000}
ctx=${CTX:-192}
base=${BASE:-models/passpilot.gguf}  # vocabulary and starting weights (a ranking model's list tokens are replaced)
mkdir -p data/model && cp "$base" data/model/base.gguf  # a copy: the export reads it after models/ may have changed
$py -m training.coreset --labels data/labels --max-k 64 --write
lists=data/labels-lists/$($py -c "import json,hashlib;print(hashlib.sha256(json.dumps(json.load(open('docs/bench/coreset-curve.json'))['lists']).encode()).hexdigest()[:12])")
$py -m training.labels --out "$lists" --lists docs/bench/coreset-curve.json --seed 2 --limit "$extra" ${LABEL_ARGS:-}
$py -m training.model.ranker dataset --labels "data/labels,$lists" --curve docs/bench/coreset-curve.json --base data/model/base.gguf --ctx "$ctx"
$py -m training.model.ranker train --max-minutes "$minutes" --steps "${STEPS:-240}"
$py -m training.model.ranker export --out data/model/rank/passpilot.gguf
$py - <<'PY'
import json, shutil
report = json.load(open("data/model/rank/run/export.json"))
best, fixed = report["chosen"], report["fixed_coreset_order"]
wins = float(best["1"]) > float(fixed["1"]) and float(best["10"]) >= float(fixed["10"])
print(f"held-out gain, model order {best} vs fixed coreset order {fixed}: " + ("shipping" if wins else "NOT shipping"))
if wins:
    shutil.copyfile("data/model/rank/passpilot.gguf", "models/passpilot.gguf")
PY

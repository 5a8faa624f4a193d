#!/usr/bin/env bash
# Rebuild the shipped ranking model (models/passpilot.gguf) from the corpus, on this machine's CPU.
# Needs data/corpus (python -m training.corpus) and the dense labels in data/labels (python -m training.labels).
# Steps:
#   1. coreset: greedy on the dense labels, curve and plot; models/coreset.txt is replaced only if it wins on
#      held-out functions;
#   2. the lists the model ranks: the coreset, then the curve's other lists; every corpus function labelled under
#      those and the levels (a cheap pass: 30 lists instead of 512; about 20 minutes on 2 idle cores, resumable);
#      then 6,000 functions under a wider pool with the deep-search winners of 800 functions (about 40 minutes),
#      and the winners that add most join the ranked lists (training/model/ranking-lists.txt);
#   4. ranking dataset -> train (best checkpoint on held-out functions) -> export (how many best-scored lists
#      lead before the coreset order, chosen on held-out functions; Q8_0; llama.cpp parity check);
#   5. models/passpilot.gguf, only if on held-out functions the model's order beats the fixed coreset order at
#      budget 1 and is not worse at budget 10.
# TRAIN_MINUTES (45), CTX (128 tokens), BASE (models/passpilot.gguf), LABEL_ARGS (e.g. "--scheduler tcp://HOST:8786").
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
minutes=${TRAIN_MINUTES:-45}
ctx=${CTX:-128}
base=${BASE:-models/passpilot.gguf}  # vocabulary and starting weights (a ranking model's own tokens are replaced)
mkdir -p data/model && cp "$base" data/model/base.gguf  # a copy: the export reads it after models/ may have changed
$py -m training.coreset --labels data/labels --max-k 64 --write
# the lists to rank, before local-search winners: the coreset, then the curve's other lists
$py -m training.model.ranker lists --out data/model/base-lists.txt
# one label folder per set of lists (a folder refuses another pool)
key=$(grep -v '^#' data/model/base-lists.txt | sha256sum | cut -c1-12)
# every corpus function under those lists and the levels (cheap: ~30 lists)
$py -m training.labels --out "data/labels-rank-$key" --lists data/model/base-lists.txt --seed 2 ${LABEL_ARGS:-}
# a wider pool on fewer functions: those lists plus the deep-search winners of 800 functions (>= 40 instructions)
$py -m training.labels --out "data/labels-wide-$key" --coreset data/model/base-lists.txt --seed-functions 800 --deep-calls 300 \
    --seed-min-instructions 40 --pool-size 0 --limit 6000 --seed 3 ${LABEL_ARGS:-}
# the ranked lists: those lists, then up to 40 winners, greedily by what each adds (on functions not held out)
$py -m training.model.ranker lists --winners "data/labels-wide-$key" --max-winners 40
$py -m training.model.ranker dataset --labels "data/labels-rank-$key,data/labels-wide-$key" --base data/model/base.gguf --ctx "$ctx"
$py -m training.model.ranker train --max-minutes "$minutes" --steps "${STEPS:-1400}" --eval-every 100 --eval-functions 0
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

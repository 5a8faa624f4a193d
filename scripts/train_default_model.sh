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
#   3. every corpus function under those winners too; the coreset chosen again over all these labels
#      (models/coreset.txt replaced if it wins on held-out functions); the refinement edits chosen on the
#      held-out packages after a coreset chosen without them (models/refinements.txt; about 6 minutes);
#   4. ranking dataset -> train (validation on whole held-out packages; best checkpoint there) -> export (the
#      lists stored in greedy order on the training functions; how many best-scored lists lead before that order,
#      chosen on the held-out packages; Q8_0; llama.cpp parity check);
#   5. models/passpilot.gguf, only if on the held-out packages the model's order beats the fixed greedy order of
#      its lists at budget 1, and over budgets 1, 3 and 10 together.
# TRAIN_MINUTES (45), CTX (128 tokens), BASE (models/passpilot.gguf), LABEL_ARGS (e.g. "--scheduler tcp://HOST:8786"),
# VAL_PACKAGES, TRAIN_ARGS (more `ranker train` options).
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
# every corpus function under those winners too (the lists not labelled above; about 30 minutes on 2 cores)
grep -v '^#' training/model/ranking-lists.txt | grep -vxF -f <(grep -v '^#' data/model/base-lists.txt) > data/model/winner-lists.txt
winners=$(sha256sum < data/model/winner-lists.txt | cut -c1-12)
$py -m training.labels --out "data/labels-winners-$winners" --lists data/model/winner-lists.txt --seed 2 ${LABEL_ARGS:-}
# the coreset again, now over every corpus function under the levels, those lists and the winners
$py -m training.coreset --labels "data/labels-rank-$key,data/labels-winners-$winners" --max-k 69 --write
val=${VAL_PACKAGES:-cjson,xz-utils,pcre2,libpng1.6,libsodium,lz4,dash,brotli}
# the edits of the `refine` source, chosen where the coreset is as new as on users' code
$py -m training.refinements --labels "data/labels-rank-$key,data/labels-winners-$winners" --unseen-packages "$val" \
    --per-package 600 --write ${LABEL_ARGS:-}
$py -m training.model.ranker dataset --labels "data/labels-rank-$key,data/labels-winners-$winners,data/labels-wide-$key" \
    --base data/model/base.gguf --ctx "$ctx"
# validation on whole packages the model never sees (small C libraries, like the public benchmark's)
$py -m training.model.ranker train --max-minutes "$minutes" --steps "${STEPS:-1400}" --eval-every 100 --eval-functions 0 \
    --val-packages "$val" ${TRAIN_ARGS:-}
$py -m training.model.ranker export --out data/model/rank/passpilot.gguf
$py - <<'PY'
import json, shutil
report = json.load(open("data/model/rank/run/export.json"))
best, fixed = report["chosen"], report["fixed_greedy_order"]
total = lambda gains: sum(float(gains[b]) for b in "1 3 10".split())
# the model must beat the best fixed order of its own lists: at budget 1, and over budgets 1, 3 and 10 together
wins = float(best["1"]) > float(fixed["1"]) and total(best) >= total(fixed)
print(f"held-out packages, model order {best} vs the fixed greedy order {fixed}: " + ("better" if wins else "NOT better"))
# and it replaces the shipped model only when, through llama.cpp, it is 0.1 points better over budgets 1, 3 and 10:
# less is within the spread between neighbouring checkpoints, and every user's results would change for nothing
shipped, exported = report.get("incumbent"), report.get("exported_llama_cpp")
if wins and shipped and exported:
    wins = total(exported) >= total(shipped) + 0.1
    print(f"through llama.cpp, this model {exported} vs the shipped one {shipped}: " + ("shipping" if wins else "NOT shipping"))
if wins:
    shutil.copyfile("data/model/rank/passpilot.gguf", "models/passpilot.gguf")
PY

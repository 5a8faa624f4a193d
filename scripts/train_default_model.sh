#!/usr/bin/env bash
# Rebuild the shipped model and coreset from data/labels.jsonl (python -m training.labels), on this machine's CPU.
# Steps: coreset (+ model labels) -> dataset -> train -> export (Q8_0, parity check) -> models/.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
minutes=${TRAIN_MINUTES:-30}
$py -m training.coreset --labels data/labels.jsonl --k 16 --candidates 20 --extra 1500 --out models/coreset.txt --model-labels data/model_labels.jsonl
$py -m training.model.dataset --labels data/model_labels.jsonl --tokenizer data/model/tokenizer --out data/model/dataset --ctx 1024
$py -m training.model.train --data data/model/dataset --out data/model/run --dim 192 --layers 4 --heads 4 --ffn 512 --ctx 1024 \
  --steps 900 --warmup 30 --lr 2e-3 --eval-every 50 --eval-generate 16 --save-every 50 --max-minutes "$minutes"
$py -m training.model.export --run data/model/run --out data/model/passpilot.gguf --check 20
cp data/model/passpilot.gguf models/passpilot.gguf

#!/usr/bin/env bash
# The project's test command: Python tests (real opt, real llama.cpp, real LSP client), then the VS Code
# extension's unit tests and its real-editor test when their tools are installed
# (`cd vscode-extension && npm ci && bash scripts/setup-e2e.sh`, which .ci/run does).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -q "$@"
if [ -d vscode-extension/node_modules ]; then
  (cd vscode-extension && npm test)
  if [ -f vscode-extension/.tools/env.json ]; then
    (cd vscode-extension && PASSPILOT_PYTHON="$PWD/../.venv/bin/python" npm run test:e2e)
  else
    echo "vscode-extension: e2e tools not installed (bash vscode-extension/scripts/setup-e2e.sh); real-editor test skipped"
  fi
else
  echo "vscode-extension: node_modules not installed (cd vscode-extension && npm ci); the extension's unit tests and real-editor test skipped"
fi

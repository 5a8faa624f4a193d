#!/usr/bin/env bash
# Installs what `npm run test:e2e` needs, idempotently:
#   - Debian packages: chromium (headless browser driven by Playwright), libkrb5-dev (code-server's
#     native `kerberos` module builds against it)
#   - Node 24 (code-server requires it) from the npm registry, into .tools/node24
#   - code-server, into .tools/code-server (never into the extension's own dependencies)
# Everything lands in vscode-extension/.tools/ (git-ignored). Safe to run repeatedly.
set -euo pipefail

EXT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${PASSPILOT_E2E_TOOLS:-$EXT_DIR/.tools}"
CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
NODE_MAJOR="${NODE_MAJOR:-24}"

log() { printf '[setup-e2e] %s\n' "$*"; }

# ---- Debian packages -------------------------------------------------------------------------
missing=()
dpkg -s chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  log "Debian packages present (chromium, libkrb5-dev)"
fi

# ---- Node 24 ---------------------------------------------------------------------------------
NODE_PREFIX="$TOOLS/node$NODE_MAJOR"
node_bin_dir() { # directory holding the `node` executable of the npm `node` package
  local d
  for d in "$NODE_PREFIX/node_modules/node/bin" "$NODE_PREFIX/node_modules/.bin"; do
    if [ -x "$d/node" ]; then echo "$d"; return 0; fi
  done
  return 1
}
if NODE_BIN="$(node_bin_dir)" && "$NODE_BIN/node" --version 2>/dev/null | grep -q "^v$NODE_MAJOR\."; then
  log "node $("$NODE_BIN/node" --version) present in $NODE_PREFIX"
else
  log "installing node@$NODE_MAJOR into $NODE_PREFIX"
  mkdir -p "$NODE_PREFIX"
  npm install --prefix "$NODE_PREFIX" --no-save --no-package-lock --loglevel=error "node@$NODE_MAJOR"
  NODE_BIN="$(node_bin_dir)"
  "$NODE_BIN/node" --version
fi
# The real distribution directory (holds include/node for native builds).
NODE_HOME="$(cd "$(dirname "$(readlink -f "$NODE_BIN/node")")/.." && pwd)"

# ---- code-server -----------------------------------------------------------------------------
CS_PREFIX="$TOOLS/code-server"
CS_BIN="$CS_PREFIX/node_modules/.bin/code-server"
have_cs_version() {
  [ -x "$CS_BIN" ] || return 1
  local v
  # The first run may log a line (default config written) before the version: pick the version.
  v="$(PATH="$NODE_BIN:$PATH" "$CS_BIN" --config "$TOOLS/code-server-config.yaml" --version 2>/dev/null |
    grep -Eo '^[0-9]+\.[0-9]+\.[0-9]+' | head -1 || true)"
  [ "$v" = "$CODE_SERVER_VERSION" ]
}
if have_cs_version; then
  log "code-server $CODE_SERVER_VERSION present in $CS_PREFIX"
else
  log "installing code-server@$CODE_SERVER_VERSION into $CS_PREFIX (builds native modules; takes a few minutes)"
  mkdir -p "$CS_PREFIX"
  [ -f "$CS_PREFIX/package.json" ] || echo '{"name":"passpilot-e2e-tools","private":true}' >"$CS_PREFIX/package.json"
  # Node 24 first on PATH; native modules must build against Node 24's headers, not a
  # `nodedir` from the user's npmrc that may point at the system Node.
  nodedir_env=()
  if [ -d "$NODE_HOME/include/node" ]; then nodedir_env=("npm_config_nodedir=$NODE_HOME"); fi
  env PATH="$NODE_BIN:$PATH" "${nodedir_env[@]}" JOBS="${JOBS:-1}" \
    npm install --prefix "$CS_PREFIX" --loglevel=error --unsafe-perm "code-server@$CODE_SERVER_VERSION"
  if ! have_cs_version; then
    # The very first start can be slow; look again and show what it printed.
    sleep 2
    if ! have_cs_version; then
      log "code-server did not install correctly; \`code-server --version\` printed:"
      PATH="$NODE_BIN:$PATH" "$CS_BIN" --config "$TOOLS/code-server-config.yaml" --version || true
      exit 1
    fi
  fi
fi

# Record where things are so the test does not need to guess.
cat >"$TOOLS/env.json" <<JSON
{"nodeBin": "$NODE_BIN", "codeServer": "$CS_BIN", "chromium": "$(command -v chromium || echo /usr/bin/chromium)"}
JSON
log "ready: $(cat "$TOOLS/env.json")"

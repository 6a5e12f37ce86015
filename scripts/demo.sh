#!/usr/bin/env bash
# The demo on embedded defaults: installs what it needs, then runs `vmdelta demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
node bin/vmdelta.js demo "$@"

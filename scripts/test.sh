#!/usr/bin/env bash
# The whole test suite with every gate: install, format, lint, typecheck, layer rules, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
npm run -s format:check
npm run -s lint
npm run -s typecheck
npm run -s layers
npm test

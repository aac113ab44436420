#!/usr/bin/env bash
# Builds the browser dashboard into frontend/dist (served by the service at /).
# Needs Node.js 20.19+ and npm; installs exactly what package-lock.json pins.
#   bash scripts/build-frontend.sh          install, type-check and build
#   bash scripts/build-frontend.sh --test   the same, then ESLint and the unit and component tests (vitest)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) run_tests=1 ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
  esac
done
cd "$ROOT/frontend"
npm ci --no-audit --no-fund
npm run build
if [ "$run_tests" = 1 ]; then
  npm run lint
  npm test
fi

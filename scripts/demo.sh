#!/usr/bin/env bash
# The demo: embedded database, the service and simulated orders traffic; prints the URL to open.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec .venv/bin/orders-live demo "$@"

#!/usr/bin/env bash
# The demo on a fresh machine: installs, builds the dashboard, then runs the embedded
# database, the service and simulated orders traffic, and prints the URL to open.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
bash "$ROOT/scripts/build-frontend.sh"
cd "$ROOT"
exec .venv/bin/orders-live demo "$@"

#!/usr/bin/env bash
# Shared by demo.sh and test.sh: a virtual environment with orders-live installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
extras="${1:-}"
.venv/bin/pip install --quiet --disable-pip-version-check -e "backend${extras}"

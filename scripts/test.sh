#!/usr/bin/env bash
# Every check: format, lint, types, then all tests (fast tier and the real embedded database).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh" "[dev]"
cd "$ROOT"
.venv/bin/ruff format --check backend tests
.venv/bin/ruff check backend tests
.venv/bin/mypy
.venv/bin/pytest "$@"

#!/usr/bin/env bash
# Every check on a fresh machine: installs what is missing (Python packages, the
# dashboard's npm packages, Debian's chromium, postgresql and nginx for the browser,
# PostgreSQL and balancer tests; the tests start their own servers), then format,
# lint, types, the import layers, the dashboard's unit tests and build, and all Python
# tests (the fast tier, the real embedded database, the fault tests and the browser
# tests); then, in one more pass, the Socket.IO suites again with the direct path switched
# off, so that the libraries' own path (the fallback) is known to work, and the PostgreSQL
# suites again on the trigger feed (the first pass is on the default: the WAL feed, which the
# tests' server can give).
# Arguments go to both pytest runs. The fast tier alone: .venv/bin/pytest -m fast
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
[ -x /usr/sbin/nginx ] || missing="$missing nginx"
if [ -n "$missing" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's$missing for the browser, PostgreSQL and balancer tests"
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
bash "$ROOT/scripts/bootstrap.sh" "[dev]"
bash "$ROOT/scripts/build-frontend.sh" --test
cd "$ROOT"
.venv/bin/ruff format --check backend tests
.venv/bin/ruff check backend tests
.venv/bin/mypy
.venv/bin/lint-imports
# Tests run in parallel (pytest-xdist): most of a test's time is spent waiting on a server, so
# more workers than cores pay; each worker starts its own nx-27017 and PostgreSQL when a test
# of it needs one (every port is a free one). PYTEST_WORKERS=0 runs them in this process.
workers="${PYTEST_WORKERS:-4}"
.venv/bin/pytest -n "$workers" --dist worksteal "$@"
# One second pass for both (the suite's time stays under ten minutes on two cores): each
# dimension runs both ways across the two passes.
echo "the Socket.IO suites again on the libraries' own path (ORDERS_LIVE_SOCKETIO_DIRECT=false)," \
  "and the PostgreSQL suites again on the trigger feed (ORDERS_LIVE_PG_CHANGES=triggers)"
# (tests/conftest.py, second_pass: each setting only for the tests it concerns)
ORDERS_LIVE_TEST_SECOND_PASS=1 .venv/bin/pytest -n "$workers" --dist worksteal -m "socketio or postgres" "$@"

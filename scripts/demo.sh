#!/usr/bin/env bash
# The demo on a fresh machine: installs, builds the dashboard, then runs the embedded
# database, the service and simulated orders traffic, and prints the URL to open.
#   bash scripts/demo.sh                        the embedded nx-27017 (MongoDB wire protocol)
#   bash scripts/demo.sh --database postgres    an embedded PostgreSQL (installed from apt if missing)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case " $* " in
  *" --database postgres "*|*" --database=postgres "*)
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      echo "installing Debian's postgresql for the embedded PostgreSQL"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi ;;
esac
bash "$ROOT/scripts/bootstrap.sh"
bash "$ROOT/scripts/build-frontend.sh"
cd "$ROOT"
exec .venv/bin/orders-live demo "$@"

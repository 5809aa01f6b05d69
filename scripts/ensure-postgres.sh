#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, postgres) are present:
# `prism dev` and the tests start their own cluster from them. Installs the
# distribution's package when they are missing (Debian/Ubuntu).
set -euo pipefail

have_pg() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then return 0; fi
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  command -v initdb >/dev/null 2>&1
}

if have_pg; then exit 0; fi
if [ -n "${DATABASE_URL:-}" ] && [ -n "${PRISM_TEST_DATABASE_URL:-}" ]; then exit 0; fi

echo "PostgreSQL server binaries not found; installing the distribution's postgresql package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q postgresql >/dev/null
have_pg || { echo "PostgreSQL installation did not provide initdb" >&2; exit 1; }

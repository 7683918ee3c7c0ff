#!/usr/bin/env bash
# Installs the database servers the store tests run against, from Debian's packages: PostgreSQL
# (initdb / postgres) and Redis (redis-server). The tests start their own throwaway instances on
# loopback (tests/support/servers.py); nothing here starts a system service.
# Idempotent: a no-op when both are installed. Cold run: ~30 s.
set -euo pipefail

log() { printf 'install-store-servers: %s\n' "$*" >&2; }

have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }
have_redis() { command -v redis-server >/dev/null; }

packages=()
have_postgres || packages+=(postgresql)
have_redis || packages+=(redis-server)
if (( ${#packages[@]} == 0 )); then exit 0; fi

sudo=()
if (( EUID != 0 )); then
  command -v sudo >/dev/null || { log "need root (or sudo) to install ${packages[*]}"; exit 1; }
  sudo=(sudo)
fi
log "installing ${packages[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
# The packages' own services must not start (they would take the default ports): policy-rc.d says no.
printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
"${sudo[@]}" chmod +x /usr/sbin/policy-rc.d
trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
have_postgres || { log "postgres is still missing after the install"; exit 1; }
have_redis || { log "redis-server is still missing after the install"; exit 1; }

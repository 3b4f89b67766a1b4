#!/usr/bin/env bash
# Everything Hotline needs on a fresh Debian machine, idempotent and quick when done:
# apt packages (SIPp, debootstrap, PostgreSQL and Redis where absent), the venv with the
# project installed, and the Asterisk 22 lab chroot (built once, cached under /var/lib).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

pkgs=()
command -v sipp >/dev/null || pkgs+=(sip-tester)
[ -x /usr/sbin/debootstrap ] || pkgs+=(debootstrap)
command -v pg_ctlcluster >/dev/null || pkgs+=(postgresql)
command -v redis-server >/dev/null || pkgs+=(redis-server)
command -v chromium >/dev/null || pkgs+=(chromium)
# Chinese glyphs for the pages' screenshots and browser tests
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || pkgs+=(fonts-noto-cjk)
if [ ${#pkgs[@]} -gt 0 ]; then
  log "apt-get install ${pkgs[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${pkgs[@]}"
fi

# PostgreSQL on 127.0.0.1:5432 with trust auth for local tests (what the dev machines have).
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "starting PostgreSQL $version"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 50); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.2; done
fi
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -n 1)
  log "allowing trust auth for 127.0.0.1 in $hba (test machine)"
  $SUDO sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(basename "$(dirname "$(dirname "$hba")")")" main reload
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/hotline.log
  for _ in $(seq 50); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "creating .venv and installing Hotline"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi

log "Asterisk lab (provisions the Debian sid chroot on first use: about a minute)"
$SUDO .venv/bin/hotline lab up

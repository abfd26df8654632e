#!/usr/bin/env bash
# nginx for the production profile (Debian's nginx-light): installed if missing, never started as
# a system service — scripts/prod.py runs its own instance with its own configuration.
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "The production profile needs nginx: install the Debian package 'nginx-light' (as root: apt-get install nginx-light)." >&2
  exit 1
fi
echo "Installing nginx-light (Debian) for the production profile ..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
# Debian starts the system nginx on port 80 after installing it; this project does not use it.
(command -v service >/dev/null 2>&1 && service nginx stop >/dev/null 2>&1) || true

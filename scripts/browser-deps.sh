#!/usr/bin/env bash
# Chromium and a Japanese font for the browser tests, from Debian's packages (Playwright's own
# browser download is not used: nothing but package registries is reachable here).
set -euo pipefail
# grep reads all of fc-list's output: with -q it would stop early and, under pipefail, fail.
have_font() { fc-list 2>/dev/null | grep -iE 'IPA|Noto Sans CJK|Noto Sans JP' >/dev/null; }
if command -v chromium >/dev/null 2>&1 && have_font; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "The browser tests need Chromium and a Japanese font: install the Debian packages 'chromium' and 'fonts-ipafont-gothic' (as root: apt-get install chromium fonts-ipafont-gothic)." >&2
  exit 1
fi
echo "Installing chromium and fonts-ipafont-gothic (Debian) for the browser tests ..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-ipafont-gothic >/dev/null

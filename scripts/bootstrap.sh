#!/usr/bin/env bash
# Build .venv for the Rasa side with Python 3.10 and the locked dependencies.
# Safe to re-run: an existing venv of the right version is reused and pip installs only what the
# lock changed. Called by `make venv` (so by `make run` and `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."

is_py310() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

find_python310() {
  local candidate
  if [ -n "${PYTHON310:-}" ] && is_py310 "$PYTHON310"; then echo "$PYTHON310"; return; fi
  for candidate in python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && is_py310 "$(command -v "$candidate")"; then
      command -v "$candidate"; return
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for candidate in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | sort -rV); do
      candidate="$(pyenv root)/versions/$candidate/bin/python"
      if is_py310 "$candidate"; then echo "$candidate"; return; fi
    done
  fi
  for candidate in "$HOME"/.pyenv/versions/3.10*/bin/python; do
    if [ -x "$candidate" ] && is_py310 "$candidate"; then echo "$candidate"; return; fi
  done
  if command -v uv >/dev/null 2>&1; then
    candidate="$(uv python find 3.10 2>/dev/null || true)"
    if [ -n "$candidate" ] && is_py310 "$candidate"; then echo "$candidate"; return; fi
  fi
  return 1
}

if [ -x .venv/bin/python ] && is_py310 .venv/bin/python; then
  :
else
  if ! python310="$(find_python310)"; then
    echo "Python 3.10 is required for Rasa 3.6 and none was found: install it (for example 'pyenv install 3.10' or 'uv python install 3.10') and run make again." >&2
    exit 1
  fi
  echo "Creating .venv with $python310"
  rm -rf .venv
  "$python310" -m venv .venv
fi

# This machine's pip configuration names local mirrors that may be empty; pip warns about each.
pip_quiet() { grep -v 'is ignored: it is neither a file nor a directory' >&2 || true; }
.venv/bin/python -m pip install --quiet --disable-pip-version-check "pip==24.0" 2> >(pip_quiet)
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -r requirements/rasa.in -r requirements/rasa-dev.in -c requirements/rasa.lock 2> >(pip_quiet)
echo "Rasa environment ready (.venv, $(.venv/bin/python --version))"

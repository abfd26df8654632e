#!/usr/bin/env bash
# Build .venv-backend for the consent service with Python >= 3.11 and the locked dependencies.
# It is a separate environment from the Rasa one: neither side can import the other.
set -euo pipefail
cd "$(dirname "$0")/.."

is_py311plus() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }

find_python() {
  local candidate
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && is_py311plus "$(command -v "$candidate")"; then
      command -v "$candidate"; return
    fi
  done
  for candidate in "$HOME"/.pyenv/versions/3.1[1-3]*/bin/python; do
    if [ -x "$candidate" ] && is_py311plus "$candidate"; then echo "$candidate"; return; fi
  done
  if command -v uv >/dev/null 2>&1; then
    candidate="$(uv python find '>=3.11' 2>/dev/null || true)"
    if [ -n "$candidate" ] && is_py311plus "$candidate"; then echo "$candidate"; return; fi
  fi
  return 1
}

if ! { [ -x .venv-backend/bin/python ] && is_py311plus .venv-backend/bin/python; }; then
  if ! python="$(find_python)"; then
    echo "Python 3.11 or newer is required for the consent service and none was found: install it (for example 'pyenv install 3.11' or 'uv python install 3.11') and run make again." >&2
    exit 1
  fi
  echo "Creating .venv-backend with $python"
  rm -rf .venv-backend
  "$python" -m venv .venv-backend
fi
pip_quiet() { grep -v 'is ignored: it is neither a file nor a directory' >&2 || true; }
.venv-backend/bin/python -m pip install --quiet --disable-pip-version-check "pip==24.0" 2> >(pip_quiet)
.venv-backend/bin/python -m pip install --quiet --disable-pip-version-check \
  -r backend/requirements.in -c backend/requirements.lock 2> >(pip_quiet)
echo "Consent service environment ready (.venv-backend, $(.venv-backend/bin/python --version))"

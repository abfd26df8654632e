#!/usr/bin/env bash
# A terminal chat with the assistant (`make shell`). Uses the action server of a running
# `make run` if there is one, otherwise starts its own for the length of the chat. Both use
# ACTION_SERVER_TOKEN from .env (bot/startup.py); the chat's server listens on loopback only.
set -euo pipefail
umask 077
cd "$(dirname "$0")/.."
mkdir -p var/log
chmod 700 var var/log
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export SQLALCHEMY_SILENCE_UBER_WARNING=1
ACTIONS_PORT="${ACTIONS_PORT:-5055}"
if ! curl -sf -o /dev/null "http://127.0.0.1:$ACTIONS_PORT/health"; then
  .venv/bin/python -m bot.action_server --port "$ACTIONS_PORT" >var/log/actions-shell.log 2>&1 &
  actions_pid=$!
  # Stop it however the chat ends (Ctrl-C, a closed terminal, kill).
  trap 'kill "$actions_pid" 2>/dev/null || true' EXIT
  trap 'exit 130' HUP INT TERM
  until curl -sf -o /dev/null "http://127.0.0.1:$ACTIONS_PORT/health"; do
    kill -0 "$actions_pid" 2>/dev/null || { tail -n 20 var/log/actions-shell.log >&2; exit 1; }
    sleep 1
  done
fi
.venv/bin/python -m bot.server shell --model models/assistant.tar.gz --endpoints endpoints.yml \
  --interface 127.0.0.1 --port "${SHELL_PORT:-5006}"

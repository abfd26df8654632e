#!/usr/bin/env bash
# Start the whole assistant on embedded defaults: the consent service on 8000 (SQLite in var/),
# the analytics consumer, the action server on 5055 and the Rasa server on 5005 (REST channel,
# SQLite tracker store in var/). Runs in the foreground; Ctrl-C stops everything it started.
# Called by `make run` after both environments, the model and .env exist. The starting,
# waiting and stopping is scripts/harness.py's (`python -m scripts.harness run`), the one
# process harness the production profile, the tests and the benchmarks use too.
#
# Nothing it starts is open: the action server and Rasa's HTTP API refuse calls without
# ACTION_SERVER_TOKEN / RASA_API_TOKEN (generated into .env by scripts/init_env.py; the servers
# read them from there and refuse to start without them, bot/startup.py), so a web page the
# developer visits cannot drive them. Databases and logs under var/ are private (umask 0077).
set -euo pipefail
umask 077
cd "$(dirname "$0")/.."
mkdir -p var/log
chmod 700 var var/log
exec .venv/bin/python -m scripts.harness run "$@"

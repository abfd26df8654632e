#!/usr/bin/env bash
# Start the whole assistant on embedded defaults: the consent service on 8000 (SQLite in var/),
# the action server on 5055 and the Rasa server on 5005 (REST channel, SQLite tracker store in
# var/). Runs in the foreground; Ctrl-C stops everything it started. Called by `make run` after
# both environments, the model and .env exist.
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
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export SQLALCHEMY_SILENCE_UBER_WARNING=1
RASA_PORT="${RASA_PORT:-5005}"
ACTIONS_PORT="${ACTIONS_PORT:-5055}"
CONSENT_PORT="${CONSENT_PORT:-8000}"
INTERFACE="${RASA_INTERFACE:-127.0.0.1}"

pids=()
names=()
logs=()
stop() {
  trap - INT TERM EXIT
  if [ "${#pids[@]}" -gt 0 ]; then
    echo "Stopping ..."
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

wait_for() {  # name url log seconds
  local name="$1" url="$2" log="$3" deadline=$((SECONDS + $4))
  until curl -sf -o /dev/null "$url"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$name did not answer on $url in time; last lines of $log:" >&2
      tail -n 30 "$log" >&2
      exit 1
    fi
    for i in "${!pids[@]}"; do
      if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        echo "${names[$i]} stopped while starting (is its port already in use?); last lines of ${logs[$i]}:" >&2
        tail -n 30 "${logs[$i]}" >&2
        exit 1
      fi
    done
    sleep 1
  done
}

# The consent service sees only backend/ on its path, the Rasa side only the project root.
PYTHONPATH="$PWD/backend" .venv-backend/bin/python -m consent_service serve --port "$CONSENT_PORT" \
  >var/log/consent.log 2>&1 &
pids+=($!); names+=("The consent service"); logs+=(var/log/consent.log)
# The staff console's analytics: Rasa's SQL event broker (var/events.db, endpoints.yml) read
# into the consent service's own tables (it waits for the tables and for Rasa's first event).
PYTHONPATH="$PWD/backend" ANALYTICS_SOURCE=sql .venv-backend/bin/python -m consent_service consume \
  >var/log/consumer.log 2>&1 &
pids+=($!); names+=("The analytics consumer"); logs+=(var/log/consumer.log)
.venv/bin/python -m bot.action_server --port "$ACTIONS_PORT" \
  >var/log/actions.log 2>&1 &
pids+=($!); names+=("The action server"); logs+=(var/log/actions.log)
# --enable-api: bot.server gives Rasa RASA_API_TOKEN (environment, then .env) itself, so the
# token never appears in a process list; it refuses to start without a strong one.
.venv/bin/python -m bot.server run --model models/assistant.tar.gz --endpoints endpoints.yml \
  --credentials credentials.yml --interface "$INTERFACE" --port "$RASA_PORT" --enable-api \
  >var/log/rasa.log 2>&1 &
pids+=($!); names+=("The Rasa server"); logs+=(var/log/rasa.log)

echo "Starting the consent service (:$CONSENT_PORT), the action server (:$ACTIONS_PORT) and the Rasa server (:$RASA_PORT) ..."
wait_for "The consent service" "http://127.0.0.1:$CONSENT_PORT/health" var/log/consent.log 60
wait_for "The action server" "http://127.0.0.1:$ACTIONS_PORT/health" var/log/actions.log 120
wait_for "The Rasa server" "http://127.0.0.1:$RASA_PORT/webhooks/rest/" var/log/rasa.log 300

cat <<MSG

The assistant is running. Talk to it:
  web chat:  http://localhost:$RASA_PORT/webhooks/socketio/chat
  curl -s localhost:$RASA_PORT/webhooks/rest/webhook -d '{"sender":"me","message":"情報銀行って何？"}'
  make shell    (a terminal chat, in another terminal)
Rasa's HTTP API: http://127.0.0.1:$RASA_PORT/status?token=... (RASA_API_TOKEN in .env)
Consent service: http://127.0.0.1:$CONSENT_PORT/docs (API; token CONSENT_API_TOKEN in .env)
Staff console:   http://127.0.0.1:$CONSENT_PORT/staff/ (first account: make staff-user NAME=kanri)
Logs: var/log/rasa.log, var/log/actions.log, var/log/consent.log, var/log/consumer.log. Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
echo "A server stopped unexpectedly; see var/log/." >&2
exit 1

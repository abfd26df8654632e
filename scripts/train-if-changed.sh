#!/usr/bin/env bash
# Train models/assistant.tar.gz only when config.yml, domain.yml, data/, the NLU components
# (bot/nlu/, and bot/privacy/ whose markers the tokenizer skips) or the locked dependencies changed
# since the model there was trained (a content hash, not file times).
set -euo pipefail
cd "$(dirname "$0")/.."
model=models/assistant.tar.gz
stamp=models/assistant.fingerprint
fingerprint="$( { sha256sum config.yml domain.yml requirements/rasa.lock;
                  find data bot/nlu bot/privacy -type f -name '*.y*ml' -print0 -o -type f -name '*.py' -print0 \
                    | sort -z | xargs -0 sha256sum; } | sha256sum | cut -d' ' -f1)"
if [ -f "$model" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then
  echo "Model is up to date ($model)."
  exit 0
fi
echo "Training $model (config, domain or data changed) ..."
mkdir -p models
rm -f "$stamp"
.venv/bin/rasa train --config config.yml --domain domain.yml --data data \
  --out models --fixed-model-name assistant
echo "$fingerprint" > "$stamp"
echo "Trained $model in $SECONDS s."

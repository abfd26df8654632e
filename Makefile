# Two commands set everything up on a fresh machine: `make run` and `make test`.
# Each target installs what it needs itself; re-running is fast and safe.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
PY       := $(VENV)/bin/python
RASA     := $(VENV)/bin/rasa
MODEL    := models/assistant.tar.gz
STAMP    := $(VENV)/.installed
# The consent service has its own environment (Python >= 3.11): the two never import each other.
BVENV    := .venv-backend
BPY      := $(BVENV)/bin/python
BSTAMP   := $(BVENV)/.installed
BACKEND_PYTEST := $(BPY) -m pytest -c backend/pyproject.toml --rootdir . tests/backend
export PYTHONPATH := $(CURDIR)
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
# Keep TensorFlow quiet and on the CPU threads this machine has.
export TF_CPP_MIN_LOG_LEVEL := 2
# Rasa sends nothing to Rasa's telemetry or error-reporting servers (bot/server.py does the same).
export RASA_TELEMETRY_ENABLED := false

.PHONY: help venv venv-backend browser-deps model run backend staff-user staff-labels shell test lint lint-backend validate unit \
        test-backend backend-while-training test-nlu test-stories e2e test-reliability nginx-deps nlu-report bench bench-consent bench-assistant bench-nlu bench-privacy lock lock-backend \
        clean

help:  ## List the targets.
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(STAMP)  ## Build .venv (Python 3.10, locked dependencies).
$(STAMP): requirements/rasa.in requirements/rasa-dev.in requirements/rasa.lock scripts/bootstrap.sh
	@scripts/bootstrap.sh
	@touch $@

venv-backend: $(BSTAMP)  ## Build .venv-backend (Python >= 3.11) for the consent service.
$(BSTAMP): backend/requirements.in backend/requirements.lock scripts/bootstrap-backend.sh
	@scripts/bootstrap-backend.sh
	@touch $@

model: venv  ## Train models/assistant.tar.gz if config, domain or data changed.
	@scripts/train-if-changed.sh

# Always run: writes .env if missing, else adds the generated secrets it lacks (never changes a
# value); .env 0600, var/ 0700.
.PHONY: .env
.env:
	@$(PY) scripts/init_env.py .env

PROFILE ?= dev
run: venv venv-backend model .env  ## Start everything (Rasa :5005, actions :5055, consent :8000). PROFILE=prod: docs/deploy.md
ifeq ($(PROFILE),prod)
	@scripts/nginx-deps.sh
	@set -a && . ./.env && set +a && $(PY) scripts/prod.py run
else
	@scripts/run.sh
endif

staff-user: venv-backend .env  ## Create a staff account: make staff-user NAME=kanri ROLE=admin
	@test -n "$(NAME)" || { echo "Give a name: make staff-user NAME=kanri ROLE=admin"; exit 1; }
	@PYTHONPATH=$(CURDIR)/backend $(BPY) -m consent_service staff create-user "$(NAME)" --role "$(or $(ROLE),admin)"

staff-labels: venv-backend .env  ## Export the console's labelled messages (masked) to data/nlu/staff_labels.yml for review.
	@PYTHONPATH=$(CURDIR)/backend $(BPY) -m consent_service staff export-labels --out data/nlu/staff_labels.yml

backend: venv-backend .env  ## Start the consent service alone on :8000 until Ctrl-C.
	@PYTHONPATH=$(CURDIR)/backend exec $(BPY) -m consent_service serve --port 8000

shell: venv model .env  ## Chat with the assistant in this terminal.
	@scripts/shell.sh

# Everything CI runs, in stages; within a stage two jobs share CI's 2 cores where one alone would
# leave a core idle (lint, type checks and validation beside the single-process unit tests; the
# consent service's database-bound tests beside the training; the held-out NLU beside the
# conversation tests). Each job's output is printed whole when it ends; any failure stops the run.
# Each stage prints how long it took (bash's `time`) and pytest its 15 slowest tests, so a slow CI
# run says where its time went. (Running lint, validation and the unit tests beside the training
# too, before the consent service's tests, was tried on 2026-12-03 and was not faster: the 2 cores
# were already full; after 29 minutes neither the training, which had had about one core, nor
# the consent service's tests had ended, where the two stages here took 28 to 36 in earlier runs.)
test:  ## Everything CI runs.
	@TIMEFORMAT='make test: lint, types, validation and unit tests took %0R s'; \
	  time $(MAKE) --no-print-directory -j2 --output-sync=target lint lint-backend validate unit
	@TIMEFORMAT='make test: consent-service tests beside the training took %0R s'; \
	  time $(MAKE) --no-print-directory backend-while-training
	@TIMEFORMAT='make test: held-out NLU and conversation tests took %0R s'; \
	  time $(MAKE) --no-print-directory -j2 --output-sync=target test-nlu test-stories
	@TIMEFORMAT='make test: e2e took %0R s'; time $(MAKE) --no-print-directory e2e
	@TIMEFORMAT='make test: reliability took %0R s'; time $(MAKE) --no-print-directory test-reliability
	@echo "make test: all checks passed"

lint: venv  ## ruff and mypy on the Python of the Rasa side.
	$(VENV)/bin/ruff check bot actions tests scripts
	$(VENV)/bin/ruff format --check bot actions tests scripts
	$(VENV)/bin/mypy bot actions

lint-backend: venv-backend  ## ruff and mypy on the consent service.
	$(BVENV)/bin/ruff check backend bench
	$(BVENV)/bin/ruff format --check backend bench
	cd backend && ../$(BVENV)/bin/mypy consent_service

validate: venv  ## rasa data validate: domain, data and config agree.
	$(RASA) data validate --fail-on-warnings --config config.yml --domain domain.yml --data data

unit: venv nginx-deps  ## pytest for the Rasa side's Python (no trained model needed; `nginx -t` checks the rendered configuration).
	$(PY) -m pytest -m "not e2e and not reliability" -q --durations=15 --ignore=tests/backend

test-backend: venv-backend  ## The consent service's tests, on SQLite and PostgreSQL.
	PYTHONPATH=$(CURDIR)/backend $(BACKEND_PYTEST) -q --durations=15

# In `make test` the consent service's tests run while the model trains: the tests wait mostly on
# PostgreSQL, the training on the CPU, and they share no file (CI's 2 cores: about 15 minutes less).
backend-while-training: venv venv-backend  ## test-backend and model at once (each one's output whole).
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-backend model

test-nlu: model  ## Held-out NLU test set; fails below 0.93 intent accuracy.
	$(RASA) test nlu --nlu tests/nlu --model $(MODEL) --out results/nlu
	$(PY) scripts/nlu_report.py results/nlu --min-accuracy 0.93

test-stories: model  ## Conversation tests, failing on any wrong prediction.
	$(RASA) test core --stories tests/stories --model $(MODEL) --out results/stories \
	  --fail-on-prediction-errors

browser-deps:  ## Chromium and a Japanese font for the browser tests (Debian packages).
	@scripts/browser-deps.sh

nginx-deps:  ## nginx for the production profile (Debian package nginx-light).
	@scripts/nginx-deps.sh

test-reliability: model venv-backend nginx-deps  ## The production profile under faults (docs/reliability.md).
	$(PY) -m pytest -m reliability -q --durations=15 tests/reliability

e2e: model venv-backend browser-deps  ## Start the real servers; talk over HTTP, LINE and a browser.
	$(PY) -m pytest -m e2e -q --durations=15 --ignore=tests/backend

nlu-report: test-nlu  ## Rewrite docs/nlu-report.md from the held-out test set.
	$(PY) scripts/nlu_report.py results/nlu --write docs/nlu-report.md

lock: venv  ## Re-resolve requirements/rasa.lock after editing requirements/*.in.
	@(echo "# Generated by 'make lock' from rasa.in + rasa-dev.in on Python 3.10: the exact set every install resolves to."; \
	  $(PY) -m pip freeze --all | grep -vE '^(pip|setuptools|wheel)==') > requirements/rasa.lock

bench: bench-consent bench-assistant bench-nlu bench-privacy  ## Run every benchmark and rewrite docs/benchmarks.md.

bench-assistant: venv venv-backend  ## The assistant vs Rasa's stock Japanese set-up; trains both models only when their inputs changed (docs/benchmarks.md).
	$(PY) bench/assistant.py

bench-nlu: venv  ## 5-fold cross-validation of data/ (fixed folds, full epochs) -> docs/nlu-report.md.
	$(PY) bench/nlu_cv.py --config config.yml --folds 5

bench-consent: venv-backend  ## Consent writes/s and latency, SQLite and PostgreSQL.
	$(BPY) bench/consent_api.py

bench-privacy: venv  ## The intake masking's cost per message (bot/privacy), under a minute.
	$(PY) bench/privacy.py

lock-backend: venv-backend  ## Re-resolve backend/requirements.lock after editing requirements.in.
	@(echo "# Generated by 'make lock-backend' from requirements.in on Python 3.11: the exact set every install resolves to."; \
	  $(BPY) -m pip freeze --all | grep -vE '^(pip|setuptools|wheel)==') > backend/requirements.lock

clean:  ## Remove the environments, models and results (keeps .env and var/).
	rm -rf $(VENV) $(BVENV) models results .rasa .pytest_cache .mypy_cache .ruff_cache

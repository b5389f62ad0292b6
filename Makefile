# The front door. `make run` to chat with the assistant, `make test` for every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
RASA := .venv-bot/bin/rasa
PYTHON := .venv-bot/bin/python

.PHONY: help system-packages install lint format check train run shell serve test test-unit test-gateway test-gateway-e2e test-tasks test-e2e test-workbench test-faults test-security test-scale load validate check-policy check-deploy check-nlu-baseline test-stories review audit-report import-review evaluate evaluate-nlu evaluate-handoff bench reset-demo clean rich-menu rich-menu-preview

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' Makefile | sed 's/:.*## /\t/'

system-packages: ## The Debian packages the tests need (redis-server, PostgreSQL, Chromium, fonts, the compose client): installed if missing, or the command to run
	@./scripts/system_packages.sh test

install: ## Install uv and the three environments (bot, gateway, devkit) from their lock files
	@./scripts/bootstrap.sh

train: install ## Train the model if its inputs changed (FORCE=1 to retrain anyway)
	@./scripts/train.sh >/dev/null

run: install ## Start everything and chat as a LINE customer in the terminal (local LINE emulator without credentials)
	@./scripts/run.sh chat

shell: install ## Rasa's own terminal chat, without the gateway (NLU debugging)
	@./scripts/run.sh shell

serve: install ## Action server, Rasa and the gateway in the foreground (a real deployment: needs the LINE and Slack credentials, or EMULATE=1)
	@./scripts/run.sh serve

rich-menu: install ## Publish gateway/rich_menu.yml as the LINE rich menu (LINE_CHANNEL_ACCESS_TOKEN from the environment or .env); unchanged YAML: nothing changes
	@set -a; f="$${ENV_FILE:-.env}"; [ ! -f "$$f" ] || . "$$f"; set +a; \
	  .venv-gateway/bin/python -m gateway.line.rich_menu apply

rich-menu-preview: install ## Draw the rich menus of gateway/rich_menu.yml into var/rich-menu/ (ja.png, en.png, and the JSON sent to LINE)
	.venv-gateway/bin/python -m gateway.line.rich_menu render --out var/rich-menu

validate: install ## Check the training data and domain (rasa data validate)
	$(RASA) data validate --config config.yml --domain domain.yml --data bot/data

check-policy: install ## Check remedy_policy.yml, handoff.yml and the lexicons (errors name file and line); show what the bot offers for the demo orders
	$(PYTHON) -m scripts.check_policy

check-deploy: install ## Lint and validate the Dockerfile, docker-compose.yml and deploy/k8s (no Docker engine needed; docs/deploy.md)
	./scripts/check_deploy.sh

lint: install ## One style for all code: ruff's lint and its formatter's check (pyproject.toml)
	.venv-devkit/bin/ruff check .
	.venv-devkit/bin/ruff format --check .

format: install ## Format all code and fix what the linter can
	.venv-devkit/bin/ruff format .
	.venv-devkit/bin/ruff check --fix .

check: lint ## The inner loop (under 3 minutes): lint, then the bot's unit tests and the gateway's tests side by side (one per core)
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-unit test-gateway

test: system-packages install lint train validate check-policy check-deploy test-unit test-gateway test-e2e test-gateway-e2e test-tasks test-security test-faults test-scale test-workbench test-stories check-nlu-baseline ## Every test

test-unit: install ## Unit tests (policy, store, matching, NLU components, actions with real Trackers)
	$(PYTHON) -m pytest tests/bot -q

test-gateway: install ## Gateway tests (gateway/: LINE signature, event store, ordering, messages, emulator) with a real redis-server
	.venv-devkit/bin/python -m pytest tests/gateway -q

test-gateway-e2e: install train ## LINE conversations through the real gateway, Rasa, action server, redis-server and the LINE emulator
	.venv-devkit/bin/python -m pytest tests/system/line -q

test-tasks: install train ## Whole customer tasks (tests/data/tasks.yml, ja and en) over LINE, the gateway, Rasa, actions and Slack: success per language, turns, asked-again -> results/tasks/report.json
	.venv-devkit/bin/python -m pytest tests/system/tasks -q

test-workbench: install train ## The web workbench in headless Chromium: a whole case as customer and agent, review and cases pages (screenshots in results/screenshots/)
	.venv-devkit/bin/python -m pytest tests/system/browser -q

test-security: install train ## Attacks over the real processes: the action server's secret, loopback-only demo, serve without credentials, order ownership, Rasa's API token and model loading, no secrets or customer data in logs and Sentry
	.venv-devkit/bin/python -m pytest tests/system/security -q

test-scale: install train ## Two gateways and two Rasa servers behind balancers, one Redis: per-user order and exactly-once replies hold
	.venv-devkit/bin/python -m pytest tests/system/scale -q

LOAD_USERS ?= 10,25,50,100
LOAD_DURATION ?= 30
load: install train ## Load curve: LOAD_USERS (10,25,50,100) customers in full conversations, LOAD_DURATION (30) s per phase, LINE gateway beside Rasa alone, 1 and 2 Rasa servers, and Rasa before the speed-ups: table, JSON and PNG plot in bench/results/
	.venv-devkit/bin/python -m bench.load --users $(LOAD_USERS) --duration $(LOAD_DURATION) --baseline-speedups validator

test-faults: install train ## Faults over the real processes: Rasa, actions, Redis, orders DB, LINE and Slack failing, the gateway killed
	.venv-devkit/bin/python -m pytest tests/system/faults -q

test-e2e: install train ## End-to-end conversations through the real Rasa server and action server
	$(PYTHON) -m pytest tests/system/rasa -q

test-stories: install train ## Rasa test stories, both languages, each problem type
	@./scripts/test_stories.sh

review: install ## The review queue: messages the bot handled badly, from the tracker store -> results/review/review.csv
	$(PYTHON) -m scripts.review $(if $(OUT),--out $(OUT),)

audit-report: install ## Quality audit of the cases closed in the last 7 days (or FROM=YYYY-MM-DD TO=YYYY-MM-DD): patterns of bot/audit.yml -> results/audit/report.html and report.md
	$(PYTHON) -m scripts.audit_report $(if $(FROM),--from $(FROM),) $(if $(TO),--to $(TO),)

import-review: install ## Add the labelled rows of FILE (correct_intent filled in) to bot/data/nlu/<language>/
	@test -n "$(FILE)" || { echo "usage: make import-review FILE=results/review/review.csv"; exit 1; }
	$(PYTHON) -m scripts.import_review --file "$(FILE)"

evaluate: install train ## Test the new model against the served one; promote it if no regression (FORCE_PROMOTE=1 anyway, CROSS=1 adds cross-validation)
	$(PYTHON) -m scripts.evaluate $(if $(FORCE_PROMOTE),--force,) $(if $(CROSS),--cross-validation --folds $(or $(FOLDS),5),)

check-nlu-baseline: install train ## CI: fail if intent macro F1 on the fixed test split is below tests/data/nlu/baseline.json
	$(PYTHON) -m scripts.evaluate --check-baseline

evaluate-nlu: install ## Held-out NLU accuracy per language, and CROSS=1 for cross-validation (FOLDS=5)
	$(PYTHON) -m scripts.evaluate_nlu $(if $(CROSS),--cross-validation --folds $(or $(FOLDS),5),)

evaluate-handoff: install train ## Handoff decision on the labelled conversations (tests/data/handoff/): precision, recall, per category
	$(PYTHON) -m scripts.evaluate_handoff --json results/handoff.json

bench: install train ## Latency: NLU parse and REST webhook; the LINE gateway against Rasa alone (1 and 20 users)
	$(PYTHON) -m bench.bot_latency
	.venv-devkit/bin/python -m bench.gateway_latency

reset-demo: ## Recreate the demo orders (their times are relative to now)
	rm -f var/orders.db var/orders.db-wal var/orders.db-shm

clean: ## Remove environments, models and local data
	rm -rf .venv-bot models var results .rasa

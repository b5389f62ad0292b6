# The front door. `make run` to chat with the assistant, `make test` for every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
RASA := .venv-bot/bin/rasa
PYTHON := .venv-bot/bin/python

.PHONY: help install train run serve test test-unit test-gateway test-e2e validate test-stories evaluate-nlu bench reset-demo clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

install: ## Install uv and the bot environment (from requirements/bot.lock)
	@./scripts/bootstrap.sh

train: install ## Train the model if its inputs changed (FORCE=1 to retrain anyway)
	@./scripts/train.sh >/dev/null

run: install ## Chat with the assistant in the terminal as the demo customer
	@./scripts/run.sh chat

serve: install ## Action server and Rasa server in the foreground (a real deployment)
	@./scripts/run.sh serve

validate: install ## Check the training data and domain (rasa data validate)
	$(RASA) data validate --config config.yml --domain domain.yml --data bot/data

test: install train validate test-unit test-gateway test-e2e test-stories ## Every test

test-unit: install ## Unit tests (policy, store, matching, NLU components, actions with real Trackers)
	$(PYTHON) -m pytest tests/unit -q

test-gateway: install ## Gateway tests (connectors/: LINE signature, event store, ordering, messages, emulator) with a real redis-server
	.venv-gateway/bin/python -m pytest tests/gateway -q

test-e2e: install train ## End-to-end conversations through the real Rasa server and action server
	$(PYTHON) -m pytest tests/e2e -q

test-stories: install train ## Rasa test stories, both languages, each problem type
	@./scripts/test_stories.sh

evaluate-nlu: install ## Held-out NLU accuracy per language, and CROSS=1 for 5-fold cross-validation
	$(PYTHON) scripts/evaluate_nlu.py $(if $(CROSS),--cross-validation,)

bench: install train ## Latency of NLU parse and the REST webhook (serial and 20 concurrent)
	$(PYTHON) bench/bot_latency.py

reset-demo: ## Recreate the demo orders (their times are relative to now)
	rm -f var/orders.db var/orders.db-wal var/orders.db-shm

clean: ## Remove environments, models and local data
	rm -rf .venv-bot models var results .rasa

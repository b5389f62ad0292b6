#!/usr/bin/env bash
# Trains the model only when its inputs changed, and prints the model's path.
# The model is named by a hash of everything that shapes it (config, domain, training
# data, custom components, locked packages), so tests and `make run` reuse it.
# FORCE=1 retrains anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

inputs=$( { ls config.yml domain.yml requirements/bot.lock; find bot/data bot/components -type f \( -name '*.yml' -o -name '*.py' \); } | LC_ALL=C sort)
hash=$(cat $inputs | sha256sum | cut -c1-16)
model="models/bot-$hash.tar.gz"
# One training at a time on this machine: a second caller waits, then finds the model made.
mkdir -p models
exec 9>models/.train.lock
flock 9
if [ -f "$model" ] && [ "${FORCE:-0}" != 1 ]; then
  echo "train: $model is up to date" >&2
else
  echo "train: training $model (inputs changed)" >&2
  .venv-bot/bin/rasa train --config config.yml --domain domain.yml --data bot/data \
    --out models --fixed-model-name "bot-$hash" >&2
fi
echo "$model"

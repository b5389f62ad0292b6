#!/usr/bin/env bash
# Rasa's test stories (tests/data/stories): the customer's words -> intents -> the bot's actions,
# for every problem type in Japanese and English. Fails if any story fails.
set -euo pipefail
cd "$(dirname "$0")/.."
model=$(./scripts/train.sh)
out=results/stories
rm -rf "$out"
mkdir -p "$(dirname "$out")"
.venv-bot/bin/rasa test core --model "$model" --stories tests/data/stories --out "$out" \
  --fail-on-prediction-errors --no-plot >"$out.log" 2>&1 || {
  tail -60 "$out.log"
  [ -f "$out/failed_test_stories.yml" ] && cat "$out/failed_test_stories.yml"
  echo "test-stories: FAILED (see $out.log)"; exit 1; }
grep -E "Correct:|Accuracy:" "$out.log" | head -4 || true
echo "test-stories: all stories passed"

"""The review queue's file (results/review/review.csv): written by `make review` in the bot's
environment, read and labelled by the workbench in the devkit's, imported back by
`make import-review`. Its columns, once."""

from __future__ import annotations

REVIEW_COLUMNS = (
    "id",
    "conversation",
    "language",
    "message",
    "predicted_intent",
    "confidence",
    "reason",
    "timestamp",
    "correct_intent",  # filled by a product owner; empty when written
)

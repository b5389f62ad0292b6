"""Running Rasa itself: the `rasa` command with this project's speed-up (see speedups.py)."""

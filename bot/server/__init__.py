"""Running Rasa itself: the `rasa` command with this project's speed-up (speedups.py)
and its refusal of request-supplied model addresses (hardening.py)."""

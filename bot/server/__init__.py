"""The bot's servers. Rasa itself: the `rasa` command with this project's speed-up
(speedups.py) and its refusal of request-supplied model addresses (hardening.py). The
action server: `python -m bot.server.actions` (actions.py), rasa_sdk's app on loopback
behind the shared secret that only Rasa holds."""

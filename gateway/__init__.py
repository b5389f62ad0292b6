"""The LINE gateway service: webhook in, Rasa over REST, reply/push out (see app.py)."""

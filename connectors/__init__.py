"""Channel gateway: LINE webhook in, Rasa REST out (own environment: requirements/gateway.lock)."""

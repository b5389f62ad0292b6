"""Custom Rasa NLU components: Japanese tokenisation and safety signals."""

"""Custom Rasa NLU components: Japanese tokenisation, language detection, safety signals."""

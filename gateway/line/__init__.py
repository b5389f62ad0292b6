"""LINE edge: webhook signature, message conversion, API calls."""

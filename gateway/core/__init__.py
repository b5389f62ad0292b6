"""Platform-neutral case logic: event recording/dedupe, per-user ordering, the Rasa client.

Nothing here imports line-bot-sdk or slack: the edges (gateway/line, gateway/slack)
adapt their platform's events to these plain modules.
"""

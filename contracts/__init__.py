"""Shapes both environments rely on (the bot's and the gateway's). Standard library only:
each environment imports these modules, never the other's code."""

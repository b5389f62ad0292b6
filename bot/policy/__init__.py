"""The remedy policy: `bot/policy.yml`, its loader, the decision engine and its wording."""

from bot.policy.engine import decide, minutes_late, order_escalation, remedy_value
from bot.policy.loader import Policy, PolicyError, RemedyRule, load_policy, parse_policy
from bot.policy.wording import match_remedy, render_button, render_confirmation, render_label

__all__ = [
    "Policy",
    "PolicyError",
    "RemedyRule",
    "load_policy",
    "parse_policy",
    "decide",
    "minutes_late",
    "order_escalation",
    "remedy_value",
    "match_remedy",
    "render_button",
    "render_confirmation",
    "render_label",
]

"""The remedy policy: `bot/remedy_policy.yml`, its loader, the decision engine and its wording."""

from bot.remedy_policy.engine import (
    available_combinations,
    combination_value,
    decide,
    minutes_late,
    order_escalation,
    price_combination,
    price_remedy,
    remedy_value,
)
from bot.remedy_policy.loader import GoodwillRule, Policy, PolicyError, RemedyRule, load_policy, parse_policy
from bot.remedy_policy.wording import (
    match_remedy,
    render_button,
    render_confirmation,
    render_confirmations,
    render_goodwill_confirmation,
    render_label,
)

__all__ = [
    "GoodwillRule",
    "Policy",
    "PolicyError",
    "RemedyRule",
    "load_policy",
    "parse_policy",
    "available_combinations",
    "combination_value",
    "decide",
    "minutes_late",
    "order_escalation",
    "price_combination",
    "price_remedy",
    "remedy_value",
    "match_remedy",
    "render_button",
    "render_confirmation",
    "render_confirmations",
    "render_goodwill_confirmation",
    "render_label",
]

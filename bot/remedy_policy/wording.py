"""What the customer reads about a remedy: the option, its button, and the confirmation.

The words live in `bot/remedy_policy.yml` beside the rule they describe; this module fills in
the real items, amount and time, and recognises a remedy the customer typed instead of
tapping a button.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional, Sequence

from bot.formatting import TOKYO, clock, fit_label, item_names, yen
from bot.remedy_policy.loader import Policy
from bot.remedy_policy.types import ItemView, RemedyOffer


def eta_text(eta: Optional[datetime], language: str, now: datetime) -> str:
    """ "19:40" for today's deliveries; "11月27日" / "Nov 27" for parcels."""
    if eta is None:
        return "-"
    if eta - now < timedelta(hours=12):
        return clock(eta)
    local = eta.astimezone(TOKYO)
    return local.strftime("%b %-d") if language == "en" else f"{local.month}月{local.day}日"


def _fill(
    template: str, offer: RemedyOffer, language: str, items: Sequence[ItemView], case_id: str, now: datetime
) -> str:
    return template.format(
        items=item_names(items, language),
        amount=yen(offer.amount),
        eta=eta_text(offer.eta, language, now),
        case_id=case_id,
    )


def render_label(policy: Policy, offer: RemedyOffer, language: str, items: Sequence[ItemView], now: datetime) -> str:
    """The option as listed in the message, e.g. "別卵の代金¥80を返金"."""
    rule = policy.remedies[offer.kind]
    return _fill(rule.label[_lang(language)], offer, language, items, "", now)


def render_button(policy: Policy, offer: RemedyOffer, language: str, items: Sequence[ItemView], now: datetime) -> str:
    """The quick-reply label, 20 characters at most (LINE's limit), e.g. "¥80を返金"."""
    rule = policy.remedies[offer.kind]
    return fit_label(_fill(rule.button[_lang(language)], offer, language, items, "", now))


def render_confirmation(
    policy: Policy,
    offer: RemedyOffer,
    language: str,
    items: Sequence[ItemView],
    case_id: str,
    now: datetime,
) -> str:
    """What happens, when and how much, once the remedy is applied."""
    rule = policy.remedies[offer.kind]
    return _fill(rule.confirmation[_lang(language)], offer, language, items, case_id, now)


def render_confirmations(
    policy: Policy,
    offers: Sequence[RemedyOffer],
    language: str,
    items: Sequence[ItemView],
    case_id: str,
    now: datetime,
) -> str:
    """One message for remedies applied together: each part's confirmation, in order, one
    per line (what, when and how much of every part)."""
    return "\n".join(render_confirmation(policy, o, language, items, case_id, now) for o in offers)


def render_goodwill_confirmation(policy: Policy, kind: str, amount: int, language: str, case_id: str) -> str:
    """What the customer reads once an agent's goodwill is given (`goodwill.confirmation`)."""
    if policy.goodwill is None:
        raise KeyError("the policy has no goodwill section")
    template = policy.goodwill.confirmation[kind][_lang(language)]
    return template.format(amount=yen(amount), case_id=case_id)


def match_remedy(policy: Policy, text: str, offered: Sequence[str], language: str) -> Optional[str]:
    """The offered remedy a typed answer chooses: by keyword ("返金で", "send it") without a
    negation, or by its number in the list ("2", "２番"). None when it is unclear."""
    from bot.remedy_policy.reading import read_remedy  # here: bot.remedy_policy imports this module first

    return read_remedy(policy, text, offered).chosen


def _lang(language: str) -> str:
    return "en" if language == "en" else "ja"

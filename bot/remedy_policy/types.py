"""Plain value types shared by the orders store, the remedy policy engine and the actions.

They carry no database or Rasa state, so the policy engine stays a pure function over them
and can be tested with literal tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional, Tuple

from contracts.vocabulary import CLAIM_PROBLEMS

# Problems the bot can fix (named once, in the contract). The names match the NLU intents
# without the `report_` prefix.
PROBLEMS = CLAIM_PROBLEMS

# Order kinds and statuses as stored in the orders database.
ORDER_KINDS = ("food_delivery", "shipping")
ORDER_STATUSES = ("placed", "preparing", "out_for_delivery", "delivered", "cancelled")


@dataclass(frozen=True)
class ItemView:
    """One line of an order."""

    item_id: int
    sku: str
    name_ja: str
    name_en: str
    category: str  # e.g. "dish", "side", "topping", "drink", "goods", "gift_card"
    unit_price: int  # yen, tax included
    quantity: int = 1

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity

    def name(self, language: str) -> str:
        return self.name_en if language == "en" else self.name_ja


@dataclass(frozen=True)
class OrderView:
    """An order as the policy engine and the actions see it. Datetimes are timezone-aware."""

    number: str  # what the customer sees, e.g. "1001"
    customer_id: int
    kind: str  # one of ORDER_KINDS
    status: str  # one of ORDER_STATUSES
    shop_name: str
    placed_at: datetime
    promised_at: Optional[datetime]  # promised delivery time
    delivered_at: Optional[datetime]
    delivery_fee: int
    items: Tuple[ItemView, ...] = field(default_factory=tuple)

    @property
    def total(self) -> int:
        return sum(i.line_total for i in self.items) + self.delivery_fee


@dataclass(frozen=True)
class CustomerHistory:
    """What the policy needs to know about a customer's past claims."""

    # When each earlier claim of this customer had a remedy applied (timezone-aware).
    claim_times: Tuple[datetime, ...] = ()


@dataclass(frozen=True)
class RemedyOffer:
    """One concrete remedy with its real amount and time."""

    kind: str  # e.g. "send_item", "remake_dish", "refund_item", "store_credit", ...
    amount: int  # yen the customer receives or is refunded (0 when nothing is paid back)
    eta: Optional[datetime] = None  # when the item/replacement arrives, if something is sent
    needs_approval: bool = False  # True when only a person may grant it (e.g. above the limit)

    def as_dict(self) -> dict:
        """As slots, payloads and the case context carry it (for display: nothing applied
        is ever read back from it)."""
        return {
            "kind": self.kind,
            "amount": self.amount,
            "eta": self.eta.isoformat() if self.eta else None,
            "needs_approval": self.needs_approval,
        }


@dataclass(frozen=True)
class PolicyDecision:
    """The engine's answer for one claim.

    `offers` are what the bot may grant alone, in the order to offer them. `needs_approval`
    are remedies a person could grant. When `escalate_reason` is set, the bot must hand the
    case to a person (offers may then be empty).
    """

    problem: str
    offers: Tuple[RemedyOffer, ...] = ()
    needs_approval: Tuple[RemedyOffer, ...] = ()
    escalate_reason: Optional[str] = None
    # Something to tell the customer when there is nothing to fix yet, e.g. "not_late_yet".
    notice: Optional[str] = None


# Signals the frustration score adds up (bot/frustration.py); each has a weight in the
# `frustration:` section of bot/remedy_policy.yml.
FRUSTRATION_SIGNALS = (
    "express_frustration",  # the classifier's confidence that the message is frustration
    "request_human",  # ... that the customer asks for a person
    "angry_word",  # angry words of bot/frustration_lexicon.yml
    "desperate_word",  # desperate words of bot/frustration_lexicon.yml
    "shouting",  # capitals, "!!", "？？", "?!", characters repeated
    "repeated_message",  # the customer says (nearly) the same thing again
    "consecutive_fallbacks",  # messages in a row the bot did not understand
    "all_remedies_refused",  # every remedy offered was refused
    "no_progress",  # time since the customer's first message without a remedy applied
)


@dataclass(frozen=True)
class FrustrationSettings:
    """How the frustration score is computed and when it hands the case to a person.

    The defaults are the values shipped in bot/remedy_policy.yml (used when the section is absent).
    """

    threshold: float = 1.0
    weights: Tuple[Tuple[str, float], ...] = (
        ("express_frustration", 0.8),
        ("request_human", 1.0),
        ("angry_word", 0.45),
        ("desperate_word", 0.3),
        ("shouting", 0.3),
        ("repeated_message", 0.5),
        ("consecutive_fallbacks", 0.4),
        ("all_remedies_refused", 0.6),
        ("no_progress", 0.3),
    )
    # Each intensifier ("本当に", "so") next to an angry or desperate word or shouting
    # multiplies that message's lexicon and shouting score, at most `max_intensifiers` times.
    intensifier: float = 1.5
    max_intensifiers: int = 2
    # Message signals of earlier customer messages count less: the previous one times
    # `decay`, the one before times decay², ... over the last `decay_turns` messages.
    decay: float = 0.5
    decay_turns: int = 3
    # Two messages are "the same" from this similarity (0-1) on, if at least this long.
    repeat_similarity: float = 0.8
    repeat_min_length: int = 5
    max_repeats: int = 2
    # Misunderstood messages in a row count from this many on.
    fallback_count: int = 2
    # Time without progress counts from this many minutes on (twice as much at twice the time).
    minutes_without_progress: int = 10

    def weight(self, signal: str) -> float:
        return dict(self.weights).get(signal, 0.0)

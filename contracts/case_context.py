"""The case context: what the bot hands to a person, typed once for both environments.

The action server builds it (bot/actions/handoff.py) and sends it in the handoff payload
(`{"custom": {"handoff": <CaseContext.to_dict()>}}`); the gateway keeps it with the case
and renders the Slack card from it (gateway/slack/cards.py); the workbench reads it back.
The JSON form is plain dicts and lists, so a case stored before a field was added still
loads (missing fields take their defaults; unknown keys, such as the gateway's own
`backlog`, are left to the caller).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional, Type, TypeVar, Union

T = TypeVar("T")


def _build(cls: Type[T], data: Optional[Mapping[str, Any]]) -> T:
    """`cls` from a dict, ignoring keys it does not have (the JSON may be newer or older;
    every field has a default, so an older or partial context still renders)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in (data or {}).items() if k in names})


@dataclass
class CustomerRef:
    line_user_id: Optional[str] = None
    customer_id: Optional[int] = None  # None: a guest the bot could not identify
    display_name: Optional[str] = None
    language: str = "ja"


@dataclass
class OrderSummary:
    number: str = ""
    shop: Optional[str] = None
    kind: Optional[str] = None  # food_delivery | shipping
    status: Optional[str] = None
    placed_at: Optional[str] = None  # ISO 8601 with the zone
    promised_at: Optional[str] = None
    delivered_at: Optional[str] = None
    delivery_fee: int = 0
    total: int = 0


@dataclass
class CaseItem:
    item_id: Optional[int] = None
    name_ja: str = ""
    name_en: str = ""
    unit_price: int = 0
    quantity: int = 1
    claimed: bool = False  # the item the customer's claim is about

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity


@dataclass
class OfferedRemedy:
    """A remedy as the policy engine priced it for this case (for display: what is applied
    is re-decided by the engine from the orders database, never read back from here)."""

    kind: str
    amount: Optional[int] = None
    eta: Optional[str] = None  # ISO 8601 with the zone
    needs_approval: bool = False


@dataclass
class OfferedCombination:
    """Remedies the policy lets an agent apply together for this case (`combinations:` in
    bot/remedy_policy.yml), each priced by the engine; `name` is contracts.vocabulary's
    combination_name of the parts. For display, like OfferedRemedy."""

    name: str
    parts: List[OfferedRemedy] = field(default_factory=list)
    needs_approval: bool = False  # worth more than an agent's own limit: a supervisor too

    @property
    def amount(self) -> int:
        return sum(p.amount or 0 for p in self.parts)


@dataclass
class GoodwillAllowance:
    """What an agent may give as goodwill for this case (bot/remedy_policy.yml `goodwill:`): the
    modal offers these kinds, up to `agent_limit` alone and `max_amount` with a supervisor."""

    kinds: List[str] = field(default_factory=list)
    agent_limit: int = 0
    max_amount: int = 0
    reason_max_length: int = 500  # the agent's reason, in characters


@dataclass
class Frustration:
    score: float = 0.0
    threshold: float = 0.0
    reasons: List[Dict[str, Any]] = field(default_factory=list)  # {"signal", "detail"?, "weight"?}


@dataclass
class Turn:
    role: str = "bot"  # customer | bot | agent (an agent's reply relayed from Slack)
    text: str = ""
    time: Optional[str] = None
    intent: Optional[str] = None  # customer turns only


# A flag on a case (`CaseContext.flags`): what the agent must see first, beyond the reason.
# "broken_promise": a remedy with a promised time (an item sent, a dish re-made) had not
# arrived when the bot asked after that time; `promise` is that remedy, with its eta.
BROKEN_PROMISE = "broken_promise"
# "recurring": the customer's Nth problem within the policy's window (bot/remedy_policy.yml
# `recurring.customer`); `earlier_cases` are the case numbers of the earlier ones.
RECURRING = "recurring"


@dataclass
class CaseContext:
    case_id: str
    reason: str = "request_human"  # a name of contracts.vocabulary.REASONS
    created_at: Optional[str] = None
    customer: CustomerRef = field(default_factory=CustomerRef)
    problem: Optional[str] = None  # a name of contracts.vocabulary.PROBLEMS
    order: Optional[OrderSummary] = None
    items: List[CaseItem] = field(default_factory=list)
    remedies_offered: List[OfferedRemedy] = field(default_factory=list)
    remedies_refused: List[str] = field(default_factory=list)
    remedies_needing_approval: List[OfferedRemedy] = field(default_factory=list)
    combinations: List[OfferedCombination] = field(default_factory=list)
    goodwill: GoodwillAllowance = field(default_factory=GoodwillAllowance)
    safety_signals: List[Union[Dict[str, Any], str]] = field(default_factory=list)
    frustration: Frustration = field(default_factory=Frustration)
    transcript: List[Turn] = field(default_factory=list)
    summary: str = ""
    # The shop's time zone (IANA name): agents read times as the customer was told them.
    timezone: str = "Asia/Tokyo"
    flags: List[str] = field(default_factory=list)  # e.g. BROKEN_PROMISE
    promise: Optional[OfferedRemedy] = None  # the remedy whose promised time passed (with a flag)
    earlier_cases: List[str] = field(default_factory=list)  # with RECURRING: the earlier problems' cases

    @property
    def claimed_items(self) -> List[CaseItem]:
        return [i for i in self.items if i.claimed]

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CaseContext":
        data = dict(data or {})
        ctx = cls(
            case_id=str(data.get("case_id") or ""), created_at=data.get("created_at"), problem=data.get("problem")
        )
        ctx.customer = _build(CustomerRef, data.get("customer"))
        ctx.order = _build(OrderSummary, data["order"]) if data.get("order") else None
        ctx.items = [_build(CaseItem, i) for i in data.get("items") or []]
        ctx.remedies_offered = [_build(OfferedRemedy, o) for o in data.get("remedies_offered") or []]
        ctx.remedies_refused = list(data.get("remedies_refused") or [])
        ctx.remedies_needing_approval = [_build(OfferedRemedy, o) for o in data.get("remedies_needing_approval") or []]
        ctx.combinations = [_combination(c) for c in data.get("combinations") or [] if isinstance(c, Mapping)]
        ctx.goodwill = _build(GoodwillAllowance, data.get("goodwill"))
        ctx.safety_signals = list(data.get("safety_signals") or [])
        ctx.frustration = _build(Frustration, data.get("frustration"))
        ctx.transcript = [_build(Turn, t) for t in data.get("transcript") or []]
        ctx.reason = data.get("reason") or "request_human"
        ctx.summary = data.get("summary") or ""
        ctx.timezone = data.get("timezone") or "Asia/Tokyo"
        ctx.flags = [str(f) for f in data.get("flags") or []]
        ctx.earlier_cases = [str(c) for c in data.get("earlier_cases") or []]
        promise = data.get("promise")
        ctx.promise = _build(OfferedRemedy, promise) if isinstance(promise, Mapping) and promise.get("kind") else None
        return ctx


def _combination(data: Mapping[str, Any]) -> OfferedCombination:
    return OfferedCombination(
        name=str(data.get("name") or ""),
        parts=[_build(OfferedRemedy, p) for p in data.get("parts") or [] if isinstance(p, Mapping)],
        needs_approval=bool(data.get("needs_approval")),
    )

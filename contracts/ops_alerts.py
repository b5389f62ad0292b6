"""The operations alert: the same item or shop failing again (bot/remedy_policy.yml
`recurring:`), typed once for both environments.

The action server raises it when a claim makes a count reach its threshold (once per
burst: the orders database keeps it under a UNIQUE key, bot/store/models.RecurringAlert)
and sends it in the bot's answer as a custom payload, `{"ops_alert": <OpsAlert.to_dict()>}`.
The customer never sees it: the gateway takes it out of the answer before anything goes
to LINE and posts it to the operations channel in Slack (gateway/slack/ops_alerts.py).
Nothing in it names a customer: the shop, the item, the problem, counts and case numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence

OPS_ALERT = "ops_alert"
# same_item_at_shop: one item with one problem in several orders of a shop (the egg missing
# three times); same_shop: any problem in several orders of a shop.
ALERT_KINDS = ("same_item_at_shop", "same_shop")


def alert_id(kind: str, shop: str, sku: str, problem: str, window_start: str) -> str:
    """A short stable id for one burst: the gateway posts each id once, whoever sends it
    again (a retried turn, a second action server)."""
    key = "\x1f".join((kind, shop, sku, problem, window_start))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]


@dataclass
class OpsAlert:
    alert_id: str
    kind: str  # ALERT_KINDS
    shop: str
    count: int  # orders with the problem in the window, this claim's included
    threshold: int  # the policy's `claims`
    window_hours: int  # the policy's `within_hours`
    window_start: str  # ISO 8601 with the zone: the first counted claim
    raised_at: str  # ISO 8601 with the zone
    case_ids: List[str] = field(default_factory=list)  # oldest first
    problem: Optional[str] = None  # contracts.vocabulary PROBLEMS; None for same_shop
    sku: Optional[str] = None  # the item (same_item_at_shop)
    item_name_ja: Optional[str] = None
    item_name_en: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OpsAlert":
        """From the JSON form; unknown keys are ignored (a newer bot may add some)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in dict(data).items() if k in names}
        values["case_ids"] = [str(c) for c in values.get("case_ids") or []]
        values["count"] = int(values.get("count") or 0)
        values["threshold"] = int(values.get("threshold") or 0)
        values["window_hours"] = int(values.get("window_hours") or 0)
        return cls(**values)


def ops_alerts_in(responses: Sequence[Mapping[str, Any]]) -> List[OpsAlert]:
    """The alerts in Rasa's answer (custom payload {"ops_alert": {...}}); malformed ones are
    skipped (they never reach the customer either: see `without_ops_alerts`)."""
    found = []
    for r in responses:
        custom = r.get("custom")
        if isinstance(custom, Mapping) and isinstance(custom.get(OPS_ALERT), Mapping):
            try:
                found.append(OpsAlert.from_dict(custom[OPS_ALERT]))
            except (TypeError, ValueError):
                continue
    return found


def without_ops_alerts(responses: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The answer without its alert payloads (the rest of such a message, if any, is kept)."""
    out: List[Dict[str, Any]] = []
    for r in responses:
        custom = r.get("custom")
        if isinstance(custom, Mapping) and OPS_ALERT in custom:
            rest_custom = {k: v for k, v in custom.items() if k != OPS_ALERT}
            rest = {k: v for k, v in r.items() if k != "custom"}
            if rest_custom:
                rest["custom"] = rest_custom
            if rest.get("text") or rest.get("buttons") or rest.get("image") or rest.get("custom"):
                out.append(rest)
            continue
        out.append(dict(r))
    return out


__all__ = ["ALERT_KINDS", "OPS_ALERT", "OpsAlert", "alert_id", "ops_alerts_in", "without_ops_alerts"]

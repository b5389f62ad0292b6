"""The names both environments use for a case, each once, with the bilingual label agents,
product owners and charts read.

The bot decides with these names (bot/remedy_policy.yml's problems and remedies, the handoff
reasons of bot/actions), the gateway shows them on the Slack card, the workbench counts
them. A name missing here still shows readably ("gift_box" -> "gift box"), never as a
raw id; tests/bot/test_contracts.py fails when bot/remedy_policy.yml or the bot's handoff
reasons use a name this module does not label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Mapping, Optional, Sequence, Tuple


@dataclass(frozen=True)
class Label:
    en: str
    ja: str

    def bilingual(self) -> str:
        """As the agents' card shows it: "English / 日本語"."""
        return f"{self.en} / {self.ja}"

    def in_language(self, language: Optional[str]) -> str:
        return self.ja if (language or "").startswith("ja") else self.en


# What the customer reports (bot/remedy_policy.yml `problems:`), and the status question.
PROBLEMS: Mapping[str, Label] = {
    "missing_item": Label("Missing item", "入っていない"),
    "wrong_item": Label("Wrong item", "違う商品"),
    "damaged_item": Label("Damaged item", "破損"),
    "late_delivery": Label("Late delivery", "配達遅れ"),
    "cancel_order": Label("Cancellation", "キャンセル"),
    "check_order_status": Label("Order status", "状況確認"),
}
CLAIM_PROBLEMS = ("missing_item", "wrong_item", "damaged_item", "late_delivery", "cancel_order")


@dataclass(frozen=True)
class Remedy:
    label: Label
    # False for what does not fix the problem itself (a coupon for the next order): the
    # engine never offers it first or alone (`never_alone:` in bot/remedy_policy.yml, which a
    # test keeps equal to this), and the workbench counts it apart from real fixes.
    fixes_the_problem: bool = True


# What the bot (or an agent) can do about it (bot/remedy_policy.yml `remedies:`).
REMEDIES: Mapping[str, Remedy] = {
    "send_item": Remedy(Label("send the item", "商品を届ける")),
    "remake_dish": Remedy(Label("re-make the dish", "作り直し")),
    "replace_item": Remedy(Label("replace", "交換")),
    "refund_item": Remedy(Label("refund the item", "商品代を返金")),
    "refund_delivery_fee": Remedy(Label("refund the delivery fee", "配送料を返金")),
    "cancel_order": Remedy(Label("cancel and refund", "キャンセル・返金")),
    "store_credit": Remedy(Label("store credit", "残高（クレジット）")),
    "coupon": Remedy(Label("coupon", "クーポン"), fixes_the_problem=False),
}

# Why a case went to a person (the handoff context's `reason`).
REASONS: Mapping[str, Label] = {
    "request_human": Label("Asked for a person", "担当者希望"),
    "frustration": Label("Frustrated customer", "不満が強い"),
    "safety": Label("SAFETY: allergy, illness or injury", "安全（アレルギー・体調・けが）"),
    "payment_or_account": Label("Payment or account", "支払い・アカウント"),
    "out_of_scope": Label("Outside the bot's scope", "対象外の相談"),
    "repeated_misunderstanding": Label("Bot did not understand twice", "2回理解できず"),
    "all_remedies_refused": Label("Every remedy refused", "提案をすべて辞退"),
    "claim_window_passed": Label("Out of policy: claim window passed", "申告期限切れ"),
    "amount_above_limit": Label("Needs approval: above the auto limit", "承認が必要（上限超え）"),
    "too_many_claims": Label("Out of policy: too many claims", "申告回数超過"),
    "item_not_covered": Label("Out of policy: item not covered", "対象外の商品"),
    "order_not_cancellable": Label("Out of policy: cannot cancel", "キャンセル不可"),
    "order_not_delivered": Label("Order not delivered yet", "未配達"),
    "order_cancelled": Label("Order was cancelled", "キャンセル済みの注文"),
    "no_remedy_available": Label("No remedy the bot may give", "自動で提案できる対応なし"),
    "order_not_found": Label("Order not found", "注文が見つからない"),
    "identity_not_verified": Label("Could not verify the customer", "本人確認できず"),
    # the follow-up at the promised time: what was promised did not come (bot/actions/follow_up.py)
    "broken_promise": Label("Promised remedy did not arrive", "約束した対応が届いていない"),
    # the customer's Nth problem in a short time (bot/remedy_policy.yml `recurring.customer`)
    "recurring": Label("Recurring problems: this customer again", "繰り返しの不具合（同じお客様）"),
}
SAFETY_REASON = "safety"
DEFAULT_REASON = "request_human"


def readable(name: str) -> Label:
    """A label for a name this module does not know yet: the id made readable."""
    words = name.replace("_", " ").strip() or "-"
    return Label(words, words)


def problem_label(name: Optional[str]) -> Label:
    return PROBLEMS.get(name or "") or readable(name or "-")


# A goodwill gesture an agent gives beyond the policy's remedies (Slack's Goodwill modal;
# bot/remedy_policy.yml `goodwill:`): its kind is one of these remedies, its amount the agent's.
GOODWILL = "goodwill"
GOODWILL_LABEL = Label("goodwill", "お詫びの対応")

# Remedies an agent applies together for one case (bot/remedy_policy.yml `combinations:`) travel
# as one name, the parts joined: "send_item+refund_delivery_fee".
COMBINATION_JOINER = "+"


def combination_name(kinds: Sequence[str]) -> str:
    return COMBINATION_JOINER.join(kinds)


def combination_parts(name: Optional[str]) -> Tuple[str, ...]:
    """The remedies a name stands for: one for a plain remedy, two or more for a combination."""
    return tuple(part for part in (name or "").split(COMBINATION_JOINER) if part)


def remedy_label(kind: Optional[str]) -> Label:
    """A remedy's label; a combination's parts joined with " + "."""
    parts = combination_parts(kind)
    if len(parts) > 1:
        labels = [remedy_label(p) for p in parts]
        return Label(" + ".join(x.en for x in labels), " ＋ ".join(x.ja for x in labels))
    if kind == GOODWILL:
        return GOODWILL_LABEL
    remedy = REMEDIES.get(kind or "")
    return remedy.label if remedy else readable(kind or "?")


def reason_label(name: Optional[str]) -> Label:
    return REASONS.get(name or "") or readable(name or DEFAULT_REASON)


def not_fixes() -> FrozenSet[str]:
    """The remedies that do not fix the problem itself (coupons)."""
    return frozenset(kind for kind, r in REMEDIES.items() if not r.fixes_the_problem)


def bilingual_table(labels: Mapping[str, Label]) -> Dict[str, str]:
    return {name: label.bilingual() for name, label in labels.items()}

"""Reads and validates `bot/remedy_policy.yml`.

Product owners edit the policy by hand, so every mistake is reported with the file, the
line and the field (`bot/remedy_policy.yml:42: remedies.refund_item.amount: ...`), and the
action server refuses to start on a broken policy rather than offer the wrong remedy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import yaml

from bot.remedy_policy.types import FRUSTRATION_SIGNALS, ORDER_KINDS, ORDER_STATUSES, PROBLEMS, FrustrationSettings
from contracts.vocabulary import combination_name

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "remedy_policy.yml"
LANGUAGES = ("ja", "en")
AMOUNT_RULES = ("none", "item_total", "delivery_fee", "order_total", "fixed")
CATEGORIES = ("dish", "side", "topping", "drink", "goods", "gift_card", "alcohol")
TEXT_FIELDS = ("label", "button", "confirmation")
PLACEHOLDERS = ("{items}", "{amount}", "{eta}", "{case_id}")
GOODWILL_PLACEHOLDERS = ("{amount}", "{case_id}")
RECURRING_PLACEHOLDERS = ("{count}", "{ordinal}", "{days}")
# A combination's name ("send_item+refund_delivery_fee") is kept as the case's approved
# remedy, a column of this many characters (bot/store/models.py CaseOutcome).
COMBINATION_NAME_MAX = 40
# Goodwill kinds that need no order: they go to the customer's account, not to a payment.
GOODWILL_WITHOUT_ORDER = ("store_credit", "coupon")


class PolicyError(ValueError):
    """The policy file is invalid; the message names the file, line and field."""


@dataclass(frozen=True)
class RemedyRule:
    kind: str
    amount: str  # one of AMOUNT_RULES
    fixed_amount: int = 0
    bonus_percent: int = 0
    eta_minutes: Optional[int] = None
    eta_days: Optional[int] = None
    categories: Optional[Tuple[str, ...]] = None
    statuses: Optional[Tuple[str, ...]] = None
    within_minutes_of_delivery: Optional[int] = None
    min_minutes_late_by_status: Mapping[str, int] = field(default_factory=dict)
    never_alone: bool = False
    label: Mapping[str, str] = field(default_factory=dict)
    button: Mapping[str, str] = field(default_factory=dict)
    confirmation: Mapping[str, str] = field(default_factory=dict)
    keywords: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class GoodwillRule:
    """The `goodwill:` section: what an agent may give beyond the policy's remedies."""

    kinds: Tuple[str, ...]
    agent_limit: int  # an agent gives up to this alone (yen); above it a supervisor too
    max_amount: int  # never more, whoever approves
    reason_max_length: int = 500
    # kind -> language -> what the customer reads ({amount}, {case_id})
    confirmation: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def kinds_for(self, has_order: bool) -> Tuple[str, ...]:
        """The kinds allowed for a case: without an order (a case about the account) there
        is no payment to refund, only what goes to the customer's account."""
        return tuple(k for k in self.kinds if has_order or k in GOODWILL_WITHOUT_ORDER)


@dataclass(frozen=True)
class RecurringRule:
    """One `recurring:` threshold: this many different orders with a problem within the window."""

    claims: int
    window: timedelta


@dataclass(frozen=True)
class RecurringRules:
    """The `recurring:` section: when the same item, shop or customer failing again is noticed."""

    problems: Tuple[str, ...]  # the problems that count
    same_item_at_shop: Optional[RecurringRule] = None
    same_shop: Optional[RecurringRule] = None
    customer: Optional[RecurringRule] = None
    # language -> what a customer reads on their Nth problem ({count}, {ordinal}, {days})
    acknowledgement: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    auto_approve_limit: int
    claim_window_hours: int
    late_claim_window_hours: int
    max_claims: int
    claims_period_days: int
    late_grace_minutes: int
    excluded_categories: Tuple[str, ...]
    # problem -> order kind -> remedy kinds, in the order offered
    problems: Mapping[str, Mapping[str, Tuple[str, ...]]]
    remedies: Mapping[str, RemedyRule]
    source: str = "bot/remedy_policy.yml"
    # When frustration hands a case to a person (the `frustration:` section).
    frustration: FrustrationSettings = field(default_factory=FrustrationSettings)
    # An agent approves alone up to this value (yen); above it a supervisor approves too.
    agent_approval_limit: int = 10000
    # Slack user ids with the supervisor role (the `approvals:` section).
    supervisors: Tuple[str, ...] = ()
    # Asked "shall I go ahead?" before applying (the `confirm_first:` section): these
    # remedies always, and any remedy chosen by typing that is worth more than the amount.
    confirm_remedies: Tuple[str, ...] = ("cancel_order",)
    confirm_typed_above: int = 1000
    # Remedies an agent may apply together (the `combinations:` section), each a tuple of
    # remedy kinds, the first one the problem's own.
    combinations: Tuple[Tuple[str, ...], ...] = ()
    # What an agent may give as goodwill (the `goodwill:` section); None: no goodwill.
    goodwill: Optional[GoodwillRule] = None
    # Recurring problems (the `recurring:` section); None: nothing is counted.
    recurring: Optional[RecurringRules] = None

    def needs_confirmation(self, kind: str, amount: int, tapped: bool) -> bool:
        """Whether a chosen remedy is confirmed with a yes/no before it is applied."""
        return kind in self.confirm_remedies or (not tapped and amount > self.confirm_typed_above)


def load_policy(path: Optional[os.PathLike] = None) -> Policy:
    """Loads the policy from `path`, `$REMEDY_POLICY_PATH` or `bot/remedy_policy.yml`."""
    chosen = Path(path or os.environ.get("REMEDY_POLICY_PATH") or DEFAULT_POLICY_PATH)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(f"{chosen}: cannot read the policy file: {error.strerror}") from error
    return parse_policy(text, str(chosen))


def load_owner_file(parse: Callable[[str, str], Any], path: Optional[os.PathLike], env_var: str, default: Path) -> Any:
    """Reads a file product owners edit (from `path`, `$env_var` or `default`) and parses
    it; an unreadable file is a PolicyError naming it."""
    chosen = Path(path or os.environ.get(env_var) or default)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(f"{chosen}: cannot read the file: {error.strerror}") from error
    return parse(text, str(chosen))


def compose_yaml(text: str, source: str) -> yaml.Node:
    """The node tree of a file product owners edit (nodes keep their lines for errors); a
    syntax error or an empty file is a PolicyError naming the file and the line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise PolicyError(
            f"{source}:{mark.line + 1 if mark else 1}: not valid YAML: {getattr(error, 'problem', error)}"
        ) from error
    if root is None:
        raise PolicyError(f"{source}:1: the file is empty")
    return root


def parse_policy(text: str, source: str = "remedy_policy.yml") -> Policy:
    return _Reader(source).policy(compose_yaml(text, source))


class _Reader:
    """Walks the YAML node tree so that every error can point at a line."""

    def __init__(self, source: str) -> None:
        self.source = source

    # --- generic helpers -------------------------------------------------------------
    def fail(self, node: yaml.Node, path: str, message: str) -> PolicyError:
        return PolicyError(f"{self.source}:{node.start_mark.line + 1}: {path}: {message}")

    def mapping(self, node: yaml.Node, path: str) -> Dict[str, Tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, path, "expected a mapping (key: value lines)")
        entries: Dict[str, Tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in entries:
                raise self.fail(key, f"{path}.{name}".lstrip("."), "appears twice")
            entries[name] = (key, value)
        return entries

    def required(self, entries: Dict, parent: yaml.Node, path: str, name: str) -> yaml.Node:
        if name not in entries:
            raise self.fail(parent, path, f"missing `{name}`")
        return entries[name][1]

    def no_unknown(self, entries: Dict, path: str, allowed: Tuple[str, ...]) -> None:
        for name, (key, _) in entries.items():
            if name not in allowed:
                raise self.fail(
                    key, f"{path}.{name}".lstrip("."), f"unknown field (expected one of: {', '.join(allowed)})"
                )

    def scalar(self, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, path, "expected a single value")
        return yaml.safe_load(yaml.serialize(node))

    def integer(self, node: yaml.Node, path: str, minimum: int = 0) -> int:
        value = self.scalar(node, path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(node, path, f"expected a whole number, got {value!r}")
        if value < minimum:
            raise self.fail(node, path, f"must be {minimum} or more, got {value}")
        return value

    def string_list(self, node: yaml.Node, path: str, allowed: Optional[Tuple[str, ...]] = None) -> Tuple[str, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, path, "expected a list, e.g. [a, b]")
        values = []
        for item in node.value:
            value = self.scalar(item, path)
            if not isinstance(value, str) or not value:
                raise self.fail(item, path, f"expected a word, got {value!r}")
            if allowed is not None and value not in allowed:
                raise self.fail(item, path, f"unknown value {value!r} (expected one of: {', '.join(allowed)})")
            values.append(value)
        return tuple(values)

    # --- the policy ------------------------------------------------------------------
    def policy(self, root: yaml.Node) -> Policy:
        top = self.mapping(root, "")
        self.no_unknown(
            top,
            "",
            (
                "version",
                "limits",
                "excluded_categories",
                "problems",
                "remedies",
                "frustration",
                "approvals",
                "confirm_first",
                "combinations",
                "goodwill",
                "recurring",
            ),
        )
        version = self.scalar(self.required(top, root, "version", "version"), "version")
        if version != 1:
            raise self.fail(top["version"][1], "version", f"unsupported version {version!r} (expected 1)")
        limits_node = self.required(top, root, "limits", "limits")
        limits = self.mapping(limits_node, "limits")
        limit_names = (
            "auto_approve_limit",
            "claim_window_hours",
            "late_claim_window_hours",
            "max_claims",
            "claims_period_days",
            "late_grace_minutes",
        )
        self.no_unknown(limits, "limits", limit_names)
        numbers = {
            name: self.integer(self.required(limits, limits_node, "limits", name), f"limits.{name}")
            for name in limit_names
        }
        excluded = ()
        if "excluded_categories" in top:
            excluded = self.string_list(top["excluded_categories"][1], "excluded_categories", CATEGORIES)
        remedies_node = self.required(top, root, "remedies", "remedies")
        remedies = {
            name: self.remedy(name, value, f"remedies.{name}")
            for name, (_, value) in self.mapping(remedies_node, "remedies").items()
        }
        problems_node = self.required(top, root, "problems", "problems")
        problems = self.problems(problems_node, remedies)
        frustration = FrustrationSettings()
        if "frustration" in top:
            frustration = self.frustration(top["frustration"][1])
        approvals: Dict[str, Any] = {}
        if "approvals" in top:
            approvals = self.approvals(top["approvals"][1], numbers["auto_approve_limit"])
        confirm: Dict[str, Any] = {}
        if "confirm_first" in top:
            confirm = self.confirm_first(top["confirm_first"][1], remedies)
        extras: Dict[str, Any] = {}
        if "combinations" in top:
            extras["combinations"] = self.combinations(top["combinations"][1], remedies)
        if "goodwill" in top:
            extras["goodwill"] = self.goodwill(top["goodwill"][1], remedies)
        if "recurring" in top:
            extras["recurring"] = self.recurring(top["recurring"][1])
        return Policy(
            excluded_categories=excluded,
            problems=problems,
            remedies=remedies,
            source=self.source,
            frustration=frustration,
            **numbers,
            **approvals,
            **confirm,
            **extras,
        )

    def combinations(self, node: yaml.Node, remedies: Mapping[str, RemedyRule]) -> Tuple[Tuple[str, ...], ...]:
        """The `combinations:` section: a list of remedy lists an agent may apply together."""
        path = "combinations"
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, path, "expected a list of remedy lists, e.g. - [send_item, refund_delivery_fee]")
        result = []
        for entry in node.value:
            parts = self.string_list(entry, path, tuple(remedies))
            shown = f"[{', '.join(parts)}]"
            if len(parts) < 2:
                raise self.fail(entry, path, f"{shown} needs at least 2 remedies (a single one is not a combination)")
            if len(set(parts)) != len(parts):
                raise self.fail(entry, path, f"{shown} lists a remedy twice")
            if "cancel_order" in parts:
                # cancelling already refunds the whole order: nothing may be added to it
                raise self.fail(entry, path, f"{shown}: cancel_order cannot be combined")
            if len(combination_name(parts)) > COMBINATION_NAME_MAX:
                raise self.fail(
                    entry, path, f"{shown} is too long a name to keep (at most {COMBINATION_NAME_MAX} characters)"
                )
            if parts in result:
                raise self.fail(entry, path, f"{shown} is listed twice")
            result.append(parts)
        return tuple(result)

    def recurring(self, node: yaml.Node) -> RecurringRules:
        """The `recurring:` section: which problems count, the thresholds (each optional),
        and what the customer reads when they reach theirs (required with `customer`)."""
        path = "recurring"
        entries = self.mapping(node, path)
        rules = {"same_item_at_shop": "within_hours", "same_shop": "within_hours", "customer": "within_days"}
        self.no_unknown(entries, path, ("problems",) + tuple(rules) + ("acknowledgement",))
        problems_node = self.required(entries, node, path, "problems")
        problems = self.string_list(problems_node, f"{path}.problems", PROBLEMS)
        if not problems:
            raise self.fail(problems_node, f"{path}.problems", "name at least one problem")
        values: Dict[str, Any] = {"problems": problems}
        for name, unit in rules.items():
            if name not in entries:
                continue
            rule_path = f"{path}.{name}"
            rule_node = entries[name][1]
            rule = self.mapping(rule_node, rule_path)
            self.no_unknown(rule, rule_path, ("claims", unit))
            # one order is not a repetition: at least two before anything is noticed
            claims = self.integer(self.required(rule, rule_node, rule_path, "claims"), f"{rule_path}.claims", 2)
            span = self.integer(self.required(rule, rule_node, rule_path, unit), f"{rule_path}.{unit}", 1)
            values[name] = RecurringRule(
                claims, timedelta(hours=span) if unit == "within_hours" else timedelta(days=span)
            )
        if "acknowledgement" in entries:
            values["acknowledgement"] = self.texts(
                entries["acknowledgement"][1], f"{path}.acknowledgement", RECURRING_PLACEHOLDERS
            )
        elif "customer" in values:
            raise self.fail(entries["customer"][0], f"{path}.customer", "needs `recurring.acknowledgement` (ja, en)")
        return RecurringRules(**values)

    def goodwill(self, node: yaml.Node, remedies: Mapping[str, RemedyRule]) -> GoodwillRule:
        """The `goodwill:` section: which kinds, the limits, and what the customer reads."""
        path = "goodwill"
        entries = self.mapping(node, path)
        self.no_unknown(entries, path, ("kinds", "agent_limit", "max_amount", "reason_max_length", "confirmation"))
        kinds_node = self.required(entries, node, path, "kinds")
        kinds = (
            ()
            if isinstance(kinds_node, yaml.SequenceNode) and not kinds_node.value
            else self.string_list(kinds_node, f"{path}.kinds", tuple(remedies))
        )
        for kind, item in zip(kinds, kinds_node.value):
            # a goodwill is money the agent decides: a remedy that pays nothing, or one that
            # cancels the order, cannot carry an amount of the agent's
            if kind == "cancel_order" or remedies[kind].amount == "none":
                raise self.fail(item, f"{path}.kinds", f"`{kind}` pays no amount and cannot be a goodwill")
        if len(set(kinds)) != len(kinds):
            raise self.fail(kinds_node, f"{path}.kinds", "lists a remedy twice")
        max_node = self.required(entries, node, path, "max_amount")
        max_amount = self.integer(max_node, f"{path}.max_amount", minimum=1)
        limit_node = self.required(entries, node, path, "agent_limit")
        agent_limit = self.integer(limit_node, f"{path}.agent_limit")
        if agent_limit > max_amount:
            raise self.fail(limit_node, f"{path}.agent_limit", f"must be at most goodwill.max_amount ({max_amount})")
        reason_max_length = 500
        if "reason_max_length" in entries:
            reason_max_length = self.integer(entries["reason_max_length"][1], f"{path}.reason_max_length", 1)
        texts_node = self.required(entries, node, path, "confirmation")
        texts_path = f"{path}.confirmation"
        texts = self.mapping(texts_node, texts_path)
        for kind, (key, _) in texts.items():
            if kind not in kinds:
                raise self.fail(key, f"{texts_path}.{kind}", "is not one of goodwill.kinds")
        confirmation: Dict[str, Dict[str, str]] = {}
        for kind in kinds:
            if kind not in texts:
                # at the `confirmation:` line itself (the mapping starts at its first entry)
                raise self.fail(
                    entries["confirmation"][0], texts_path, f"missing `{kind}` (every kind needs its confirmation)"
                )
            confirmation[kind] = self.goodwill_texts(texts[kind][1], f"{texts_path}.{kind}")
        return GoodwillRule(
            kinds=kinds,
            agent_limit=agent_limit,
            max_amount=max_amount,
            reason_max_length=reason_max_length,
            confirmation=confirmation,
        )

    def goodwill_texts(self, node: yaml.Node, path: str) -> Dict[str, str]:
        """A goodwill confirmation in both languages; it must say how much ({amount})."""
        texts = self.texts(node, path, GOODWILL_PLACEHOLDERS)
        for lang, text in texts.items():
            if "{amount}" not in text:
                raise self.fail(self.mapping(node, path)[lang][1], f"{path}.{lang}", "must say how much: use {amount}")
        return texts

    def confirm_first(self, node: yaml.Node, remedies: Mapping[str, Any]) -> Dict[str, Any]:
        """The `confirm_first:` section: which choices are confirmed before applying."""
        entries = self.mapping(node, "confirm_first")
        self.no_unknown(entries, "confirm_first", ("remedies", "typed_above"))
        values: Dict[str, Any] = {}
        if "remedies" in entries:
            listed = entries["remedies"][1]
            values["confirm_remedies"] = (
                ()
                if isinstance(listed, yaml.SequenceNode) and not listed.value
                else self.string_list(listed, "confirm_first.remedies", tuple(remedies))
            )
        if "typed_above" in entries:
            values["confirm_typed_above"] = self.integer(entries["typed_above"][1], "confirm_first.typed_above")
        return values

    def approvals(self, node: yaml.Node, auto_limit: int) -> Dict[str, Any]:
        """The `approvals:` section: an agent's own limit and who the supervisors are."""
        entries = self.mapping(node, "approvals")
        self.no_unknown(entries, "approvals", ("agent_limit", "supervisors"))
        values: Dict[str, Any] = {}
        if "agent_limit" in entries:
            limit_node = entries["agent_limit"][1]
            values["agent_approval_limit"] = self.integer(limit_node, "approvals.agent_limit")
            if values["agent_approval_limit"] < auto_limit:
                raise self.fail(
                    limit_node, "approvals.agent_limit", f"must be at least limits.auto_approve_limit ({auto_limit})"
                )
        if "supervisors" in entries:
            node = entries["supervisors"][1]
            if isinstance(node, yaml.SequenceNode) and not node.value:
                values["supervisors"] = ()
            else:
                values["supervisors"] = self.string_list(node, "approvals.supervisors")
        return values

    def number(self, node: yaml.Node, path: str, minimum: float = 0.0, maximum: Optional[float] = None) -> float:
        value = self.scalar(node, path)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(node, path, f"expected a number, got {value!r}")
        if value < minimum:
            raise self.fail(node, path, f"must be {minimum:g} or more, got {value}")
        if maximum is not None and value > maximum:
            raise self.fail(node, path, f"must be {maximum:g} or less, got {value}")
        return float(value)

    def frustration(self, node: yaml.Node) -> FrustrationSettings:
        """The `frustration:` section; every field is optional (defaults: FrustrationSettings)."""
        path = "frustration"
        entries = self.mapping(node, path)
        fractions = ("decay", "repeat_similarity")  # 0 to 1
        counts = (
            "max_intensifiers",
            "decay_turns",
            "repeat_min_length",
            "max_repeats",
            "fallback_count",
            "minutes_without_progress",
        )
        self.no_unknown(entries, path, ("threshold", "weights", "intensifier") + fractions + counts)
        values: Dict[str, Any] = {}
        if "threshold" in entries:
            values["threshold"] = self.number(entries["threshold"][1], f"{path}.threshold")
            if values["threshold"] <= 0:
                raise self.fail(entries["threshold"][1], f"{path}.threshold", "must be above 0")
        if "intensifier" in entries:
            values["intensifier"] = self.number(entries["intensifier"][1], f"{path}.intensifier", minimum=1.0)
        for name in fractions:
            if name in entries:
                values[name] = self.number(entries[name][1], f"{path}.{name}", maximum=1.0)
        for name in counts:
            if name in entries:
                minimum = 0 if name == "max_intensifiers" else 1
                values[name] = self.integer(entries[name][1], f"{path}.{name}", minimum)
        if "weights" in entries:
            weights_node = entries["weights"][1]
            weights = self.mapping(weights_node, f"{path}.weights")
            self.no_unknown(weights, f"{path}.weights", FRUSTRATION_SIGNALS)
            merged = dict(FrustrationSettings().weights)
            for name, (_, value) in weights.items():
                merged[name] = self.number(value, f"{path}.weights.{name}")
            values["weights"] = tuple((name, merged[name]) for name in FRUSTRATION_SIGNALS)
        return FrustrationSettings(**values)

    def problems(self, node: yaml.Node, remedies: Mapping[str, RemedyRule]) -> Dict[str, Dict[str, Tuple[str, ...]]]:
        entries = self.mapping(node, "problems")
        self.no_unknown(entries, "problems", PROBLEMS)
        result: Dict[str, Dict[str, Tuple[str, ...]]] = {}
        for problem in PROBLEMS:
            if problem not in entries:
                raise self.fail(node, "problems", f"missing `{problem}`")
            by_kind_node = entries[problem][1]
            by_kind = self.mapping(by_kind_node, f"problems.{problem}")
            self.no_unknown(by_kind, f"problems.{problem}", ORDER_KINDS)
            result[problem] = {}
            for kind, (_, kinds_node) in by_kind.items():
                path = f"problems.{problem}.{kind}"
                kinds = self.string_list(kinds_node, path, tuple(remedies))
                if len(set(kinds)) != len(kinds):
                    raise self.fail(kinds_node, path, "lists a remedy twice")
                if kinds and remedies[kinds[0]].never_alone:
                    raise self.fail(kinds_node, path, f"`{kinds[0]}` is never_alone and cannot be offered first")
                result[problem][kind] = kinds
        return result

    def remedy(self, kind: str, node: yaml.Node, path: str) -> RemedyRule:
        entries = self.mapping(node, path)
        allowed = (
            "amount",
            "fixed_amount",
            "bonus_percent",
            "eta_minutes",
            "eta_days",
            "categories",
            "statuses",
            "within_minutes_of_delivery",
            "min_minutes_late_by_status",
            "never_alone",
            "keywords",
        ) + TEXT_FIELDS
        self.no_unknown(entries, path, allowed)
        amount = self.scalar(self.required(entries, node, path, "amount"), f"{path}.amount")
        if amount not in AMOUNT_RULES:
            raise self.fail(
                entries["amount"][1],
                f"{path}.amount",
                f"unknown rule {amount!r} (expected one of: {', '.join(AMOUNT_RULES)})",
            )
        values: Dict[str, Any] = {"kind": kind, "amount": amount}
        for name in ("fixed_amount", "bonus_percent", "eta_minutes", "eta_days", "within_minutes_of_delivery"):
            if name in entries:
                values[name] = self.integer(entries[name][1], f"{path}.{name}")
        if amount == "fixed" and not values.get("fixed_amount"):
            raise self.fail(node, path, "amount `fixed` needs a `fixed_amount` above 0")
        if "eta_minutes" in values and "eta_days" in values:
            raise self.fail(entries["eta_days"][1], f"{path}.eta_days", "give eta_minutes or eta_days, not both")
        if "categories" in entries:
            values["categories"] = self.string_list(entries["categories"][1], f"{path}.categories", CATEGORIES)
        if "statuses" in entries:
            values["statuses"] = self.string_list(entries["statuses"][1], f"{path}.statuses", ORDER_STATUSES)
        if "min_minutes_late_by_status" in entries:
            late_path = f"{path}.min_minutes_late_by_status"
            late_entries = self.mapping(entries["min_minutes_late_by_status"][1], late_path)
            self.no_unknown(late_entries, late_path, ORDER_STATUSES)
            values["min_minutes_late_by_status"] = {
                status: self.integer(value, f"{late_path}.{status}") for status, (_, value) in late_entries.items()
            }
        if "never_alone" in entries:
            flag = self.scalar(entries["never_alone"][1], f"{path}.never_alone")
            if not isinstance(flag, bool):
                raise self.fail(entries["never_alone"][1], f"{path}.never_alone", "expected true or false")
            values["never_alone"] = flag
        for name in TEXT_FIELDS:
            values[name] = self.texts(self.required(entries, node, path, name), f"{path}.{name}")
        if "keywords" in entries:
            keywords_node = entries["keywords"][1]
            keywords = self.mapping(keywords_node, f"{path}.keywords")
            self.no_unknown(keywords, f"{path}.keywords", LANGUAGES)
            values["keywords"] = {
                lang: tuple(w.lower() for w in self.string_list(value, f"{path}.keywords.{lang}"))
                for lang, (_, value) in keywords.items()
            }
        return RemedyRule(**values)

    def texts(self, node: yaml.Node, path: str, placeholders: Sequence[str] = PLACEHOLDERS) -> Dict[str, str]:
        """A text in both languages, using only `placeholders`."""
        entries = self.mapping(node, path)
        self.no_unknown(entries, path, LANGUAGES)
        result = {}
        for lang in LANGUAGES:
            text = self.scalar(self.required(entries, node, path, lang), f"{path}.{lang}")
            if not isinstance(text, str) or not text.strip():
                raise self.fail(entries[lang][1], f"{path}.{lang}", "expected a text")
            try:
                text.format(**{name.strip("{}"): "" for name in placeholders})
            except (KeyError, IndexError, ValueError) as error:
                raise self.fail(
                    entries[lang][1],
                    f"{path}.{lang}",
                    f"unknown placeholder {error} (use {', '.join(placeholders)})",
                ) from error
            result[lang] = text
        return result

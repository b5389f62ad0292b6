"""A broken remedy_policy.yml is refused with an error naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.remedy_policy import PolicyError, load_policy, parse_policy
from bot.remedy_policy.loader import DEFAULT_POLICY_PATH

SHIPPED = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


def broken(old: str, new: str) -> str:
    assert old in SHIPPED, old
    return SHIPPED.replace(old, new, 1)


def test_the_shipped_policy_loads():
    policy = load_policy()
    assert policy.auto_approve_limit == 3000
    assert policy.problems["missing_item"]["food_delivery"][0] == "send_item"


@pytest.mark.parametrize(
    "old, new, field, message",
    [
        ("auto_approve_limit: 3000", "auto_approve_limit: lots", "limits.auto_approve_limit", "whole number"),
        ("claim_window_hours: 48", "claim_window_hours: -1", "limits.claim_window_hours", "0 or more"),
        (
            "    amount: item_total\n    label:",
            "    amount: everything\n    label:",
            "remedies.refund_item.amount",
            "unknown rule",
        ),
        (
            "food_delivery: [send_item, refund_item",
            "food_delivery: [send_itme, refund_item",
            "problems.missing_item.food_delivery",
            "send_itme",
        ),
        (
            "food_delivery: [refund_delivery_fee, cancel_order, coupon]",
            "food_delivery: [coupon, refund_delivery_fee]",
            "problems.late_delivery.food_delivery",
            "never_alone",
        ),
        (
            'ja: "{items}の代金{amount}を返金"',
            'ja: "{items}の代金{price}を返金"',
            "remedies.refund_item.label.ja",
            "placeholder",
        ),
        ("    categories: [goods]", "    categories: [furniture]", "remedies.replace_item.categories", "furniture"),
        (
            "  late_grace_minutes: 10",
            "  late_grace_minutes: 10\n  late_grace_seconds: 5",
            "limits.late_grace_seconds",
            "unknown field",
        ),
    ],
)
def test_errors_name_file_line_and_field(old, new, field, message):
    text = broken(old, new)
    with pytest.raises(PolicyError) as error:
        parse_policy(text, "bot/remedy_policy.yml")
    where = next(line for line in new.splitlines() if line not in old.splitlines()).strip()
    expected_line = line_of(text, where)
    assert str(error.value).startswith(f"bot/remedy_policy.yml:{expected_line}: {field}: "), str(error.value)
    assert message in str(error.value)


def test_a_missing_section_and_bad_yaml_are_reported(tmp_path: Path):
    without_limits = SHIPPED.replace("limits:", "limitz:", 1)
    with pytest.raises(PolicyError, match=r"limitz: unknown field"):
        parse_policy(without_limits, "p.yml")
    bad = tmp_path / "remedy_policy.yml"
    bad.write_text("version: 1\nlimits: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=rf"{bad}:\d+: not valid YAML"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.yml")


def test_a_product_owner_change_takes_effect(tmp_path: Path):
    cheaper = tmp_path / "remedy_policy.yml"
    cheaper.write_text(SHIPPED.replace("auto_approve_limit: 3000", "auto_approve_limit: 50"), encoding="utf-8")
    assert load_policy(cheaper).auto_approve_limit == 50


# --- the `frustration:` section ----------------------------------------------------------
def test_the_shipped_frustration_section_loads():
    settings = load_policy().frustration
    assert settings.threshold == 1.0
    assert settings.weight("angry_word") == 0.45 and settings.weight("repeated_message") == 0.5
    assert (settings.decay, settings.decay_turns, settings.fallback_count) == (0.5, 3, 2)
    assert settings.minutes_without_progress == 10 and settings.repeat_similarity == 0.8


@pytest.mark.parametrize(
    "old, new, field, message",
    [
        ("  threshold: 1.0", "  threshold: high", "frustration.threshold", "expected a number"),
        ("  threshold: 1.0", "  threshold: 0", "frustration.threshold", "above 0"),
        ("    angry_word: 0.45", "    angry_word: -1", "frustration.weights.angry_word", "0 or more"),
        ("    angry_word: 0.45", "    angry_words: 0.45", "frustration.weights.angry_words", "unknown field"),
        ("  decay: 0.5", "  decay: 1.5", "frustration.decay", "1 or less"),
        ("  repeat_similarity: 0.8", "  repeat_similarity: [0.8]", "frustration.repeat_similarity", "single value"),
        ("  fallback_count: 2", "  fallback_count: 0", "frustration.fallback_count", "1 or more"),
        ("  decay_turns: 3", "  decay_turns: 2.5", "frustration.decay_turns", "whole number"),
        ("  intensifier: 1.5", "  intensifier: 0.5", "frustration.intensifier", "1 or more"),
        ("  max_repeats: 2", "  max_repeats: 2\n  patience: 3", "frustration.patience", "unknown field"),
    ],
)
def test_frustration_errors_name_file_line_and_field(old, new, field, message):
    text = broken(old, new)
    with pytest.raises(PolicyError) as error:
        parse_policy(text, "bot/remedy_policy.yml")
    where = next(line for line in new.splitlines() if line not in old.splitlines() or line == new).strip()
    expected_line = line_of(text, where)
    assert str(error.value).startswith(f"bot/remedy_policy.yml:{expected_line}: {field}: "), str(error.value)
    assert message in str(error.value)


def test_frustration_settings_are_optional_and_merge_with_the_defaults():
    start = SHIPPED.index("\nfrustration:")
    without = SHIPPED[:start] + "\n"
    assert parse_policy(without, "p.yml").frustration.threshold == 1.0
    only_two = SHIPPED[:start] + "\nfrustration:\n  threshold: 2\n  weights:\n    shouting: 0.9\n"
    settings = parse_policy(only_two, "p.yml").frustration
    assert settings.threshold == 2.0 and settings.weight("shouting") == 0.9
    assert settings.weight("angry_word") == 0.45  # the others keep their defaults


def test_a_frustration_change_by_a_product_owner_takes_effect(tmp_path: Path):
    stricter = tmp_path / "remedy_policy.yml"
    stricter.write_text(SHIPPED.replace("  threshold: 1.0", "  threshold: 0.6"), encoding="utf-8")
    assert load_policy(stricter).frustration.threshold == 0.6


# --- the `combinations:` and `goodwill:` sections ----------------------------------------
def test_the_shipped_combinations_and_goodwill_load():
    policy = load_policy()
    assert ("send_item", "refund_delivery_fee") in policy.combinations
    assert all(len(parts) >= 2 and "cancel_order" not in parts for parts in policy.combinations)
    goodwill = policy.goodwill
    assert goodwill.kinds == ("store_credit", "coupon", "refund_item")
    assert (goodwill.agent_limit, goodwill.max_amount, goodwill.reason_max_length) == (2000, 10000, 500)
    assert "{amount}" in goodwill.confirmation["store_credit"]["ja"]
    assert goodwill.kinds_for(has_order=False) == ("store_credit", "coupon")


COMBO_LINE = "  - [send_item, refund_delivery_fee]"
KINDS_LINE = "  kinds: [store_credit, coupon, refund_item]"
COUPON_EN = '      en: "As an apology, we sent you a {amount} coupon for your next order."'


@pytest.mark.parametrize(
    "old, new, field, message, where",
    [
        # `where`: the line the error must name (the new line unless said; n-th occurrence)
        (COMBO_LINE, "  - [send_item, refund_delivery_fees]", "combinations", "unknown value", None),
        (COMBO_LINE, "  - [send_item]", "combinations", "at least 2 remedies", None),
        (COMBO_LINE, "  - [send_item, refund_delivery_fee, send_item]", "combinations", "a remedy twice", None),
        (COMBO_LINE, "  - [cancel_order, refund_delivery_fee]", "combinations", "cannot be combined", None),
        ("  - [remake_dish, refund_delivery_fee]", COMBO_LINE, "combinations", "listed twice", (COMBO_LINE, 2)),
        (COMBO_LINE, "  - [replace_item, refund_delivery_fee, store_credit]", "combinations", "too long", None),
        (COMBO_LINE, "  - send_item", "combinations", "expected a list", None),
        ("  agent_limit: 2000", "  agent_limit: 20000", "goodwill.agent_limit", "at most goodwill.max_amount", None),
        ("  max_amount: 10000", "  max_amount: 0", "goodwill.max_amount", "1 or more", None),
        (KINDS_LINE, "  kinds: [store_credit, coupon, voucher]", "goodwill.kinds", "unknown value 'voucher'", None),
        (KINDS_LINE, "  kinds: [store_credit, coupon, send_item]", "goodwill.kinds", "pays no amount", None),
        (
            KINDS_LINE,
            "  kinds: [store_credit, coupon, refund_item, refund_delivery_fee]",
            "goodwill.confirmation",
            "missing `refund_delivery_fee`",
            ("  confirmation:", 1),
        ),
        (
            KINDS_LINE,
            "  kinds: [store_credit, refund_item]",
            "goodwill.confirmation.coupon",
            "not one of goodwill.kinds",
            ("    coupon:", 1),
        ),
        (
            COUPON_EN,
            '      en: "As an apology, we sent you a coupon for your next order."',
            "goodwill.confirmation.coupon.en",
            "{amount}",
            None,
        ),
        (
            COUPON_EN,
            '      en: "As an apology, we sent you a {amount} coupon for {items}."',
            "goodwill.confirmation.coupon.en",
            "unknown placeholder",
            None,
        ),
        (
            "  reason_max_length: 500",
            "  reason_max_length: 500\n  daily_limit: 3",
            "goodwill.daily_limit",
            "unknown field",
            ("  daily_limit: 3", 1),
        ),
    ],
)
def test_combination_and_goodwill_errors_name_file_line_and_field(old, new, field, message, where):
    text = broken(old, new)
    with pytest.raises(PolicyError) as error:
        parse_policy(text, "bot/remedy_policy.yml")
    needle, nth = where or (new, 1)
    expected_line = [n for n, line in enumerate(text.splitlines(), start=1) if line == needle][nth - 1]
    assert str(error.value).startswith(f"bot/remedy_policy.yml:{expected_line}: {field}: "), str(error.value)
    assert message in str(error.value)


def test_combinations_and_goodwill_are_optional():
    start = SHIPPED.index("\ncombinations:")
    end = SHIPPED.index("\n# Items of these categories")
    policy = parse_policy(SHIPPED[:start] + SHIPPED[end:], "p.yml")
    assert policy.combinations == () and policy.goodwill is None

"""Checks the files product owners edit besides the training data, and shows what the
remedy policy will offer.

    make check-policy
    .venv-bot/bin/python -m scripts.check_policy [--policy FILE] [--quiet]

1. Loads bot/remedy_policy.yml, bot/handoff.yml, bot/safety_lexicon.yml and bot/frustration_lexicon.yml
   with the same loaders the action server and the model use; a mistake is reported with
   the file, the line and the field, and the exit status is 1.
2. Warns about settings that load but probably do not do what was meant (a fixed amount
   above the approval limit, a remedy defined but never offered, a problem that offers
   nothing for an order kind).
3. Prints, for every demo order (bot/store/seed.py) and every problem that fits it, what
   the bot would offer now with the exact amounts, or why it would hand the case to a
   person: the quickest way to see the effect of a change before restarting anything.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

from bot.actions.fallback import load_intent_choices
from bot.actions.follow_up import load_follow_up_texts
from bot.actions.matching import item_words
from bot.actions.problems import load_problem_words
from bot.audit.patterns import load_patterns
from bot.components import frustration_signals, safety_signals
from bot.remedy_policy import engine
from bot.remedy_policy.hours import load_hours
from bot.remedy_policy.loader import Policy, PolicyError, load_policy
from bot.remedy_policy.reading import choice_words
from bot.remedy_policy.types import PROBLEMS

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the lexicon components import Rasa, and so TensorFlow


def load_all(policy_path: Optional[Path]) -> tuple:
    """(policy or None, errors): every file is tried, so one run shows every mistake."""
    errors: List[str] = []
    policy = None
    checks = [
        ("policy", lambda: load_policy(policy_path)),
        ("hours", load_hours),
        ("safety", safety_signals.load_safety),
        ("frustration", frustration_signals.load_lexicon),
        ("choice words", choice_words),
        ("item words", item_words),
        ("intent choices", load_intent_choices),
        ("problem words", load_problem_words),
        ("audit patterns", load_patterns),
        ("follow-up texts", load_follow_up_texts),
    ]
    for name, load in checks:
        try:
            loaded = load()
        except (
            PolicyError,
            safety_signals.LexiconError,
            frustration_signals.LexiconError,
            ValueError,
            OSError,
        ) as error:
            errors.append(str(error))
            continue
        if name == "policy":
            policy = loaded
    return policy, errors


def warnings_for(policy: Policy) -> List[str]:
    warnings = []
    offered = {kind for by_kind in policy.problems.values() for kinds in by_kind.values() for kind in kinds}
    for kind, rule in policy.remedies.items():
        if kind not in offered:
            warnings.append(f"{policy.source}: remedies.{kind} is defined but no problem offers it")
        if rule.amount == "fixed" and rule.fixed_amount > policy.auto_approve_limit:
            warnings.append(
                f"{policy.source}: remedies.{kind}.fixed_amount ¥{rule.fixed_amount:,} is above "
                f"limits.auto_approve_limit ¥{policy.auto_approve_limit:,}: only a person can grant it"
            )
    for problem, by_kind in policy.problems.items():
        for order_kind, kinds in by_kind.items():
            if kinds and all(policy.remedies[k].never_alone for k in kinds):
                warnings.append(
                    f"{policy.source}: problems.{problem}.{order_kind} lists only never_alone "
                    "remedies: the bot can never offer anything and always hands off"
                )
    return warnings


def preview(policy: Policy, now: datetime) -> List[str]:
    """What the bot offers for each demo order, computed by the policy engine itself."""
    from bot.store import OrdersRepository, init_db, make_engine
    from bot.store.seed import DEMO_LINE_USER_ID, ENGLISH_LINE_USER_ID

    db = make_engine("sqlite://")
    init_db(db, now)
    repo = OrdersRepository(db)
    lines = []
    for line_id in (DEMO_LINE_USER_ID, ENGLISH_LINE_USER_ID):
        customer = repo.customer_by_line_id(line_id)
        history = repo.customer_history(customer.id)
        for order in repo.recent_orders(customer.id, now, days=30, limit=20):
            item = max(order.items, key=lambda i: i.line_total)
            for problem in PROBLEMS:
                if problem not in policy.problems:
                    continue
                items = [] if problem in ("late_delivery", "cancel_order") else [item]
                decision = engine.decide(policy, problem, order, items, history, now)
                what = f"#{order.number} {order.kind} {order.status}, {problem}" + (
                    f" of {item.name_en} ¥{item.line_total:,}" if items else ""
                )
                if decision.offers:
                    offers = ", ".join(f"{o.kind} ¥{o.amount:,}" for o in decision.offers)
                    approval = (
                        "; a person may approve "
                        + ", ".join(f"{o.kind} ¥{o.amount:,}" for o in decision.needs_approval)
                        if decision.needs_approval
                        else ""
                    )
                    lines.append(f"  {what}: offers {offers}{approval}")
                elif decision.notice:
                    lines.append(f"  {what}: tells the customer {decision.notice}")
                else:
                    lines.append(f"  {what}: hands off to a person ({decision.escalate_reason})")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", type=Path, help="another policy file (default bot/remedy_policy.yml)")
    parser.add_argument("--quiet", action="store_true", help="errors and warnings only")
    args = parser.parse_args(argv)
    policy, errors = load_all(args.policy)
    for error in errors:
        print(f"check-policy: ERROR {error}", file=sys.stderr)
    if errors:
        print("check-policy: fix the line named above, then run make check-policy again.", file=sys.stderr)
        return 1
    for warning in warnings_for(policy):
        print(f"check-policy: warning: {warning}")
    if not args.quiet:
        print("check-policy: what the bot would offer now for the demo orders (bot/store/seed.py):")
        for line in preview(policy, datetime.now(timezone.utc)):
            print(line)
    print(
        "check-policy: OK (remedy_policy.yml, handoff.yml, safety_lexicon.yml, frustration_lexicon.yml, choice_words.yml, item_words.yml, intent_choices.yml, problem_words.yml, audit.yml, follow_up.yml). "
        "Restart the action server (or make run) to use a changed policy; no retraining needed."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

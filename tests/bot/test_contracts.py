"""The contract between the bot and the gateway: every name the bot uses has a label, and
the case context survives its JSON form both ways."""

import json
import re
from pathlib import Path

import yaml

from bot.remedy_policy.loader import load_policy
from bot.remedy_policy.types import PROBLEMS as POLICY_PROBLEMS
from contracts.case_context import CaseContext, OfferedRemedy
from contracts.vocabulary import PROBLEMS, REASONS, REMEDIES, not_fixes, reason_label, remedy_label

ROOT = Path(__file__).resolve().parents[2]


def test_every_remedy_and_problem_of_the_policy_has_a_label():
    policy = yaml.safe_load((ROOT / "bot" / "remedy_policy.yml").read_text())
    assert set(policy["remedies"]) <= set(REMEDIES), "label new remedies in contracts/vocabulary.py"
    assert set(policy["problems"]) <= set(PROBLEMS)
    assert set(POLICY_PROBLEMS) <= set(PROBLEMS)


def test_what_is_not_a_fix_is_what_the_policy_never_offers_alone():
    policy = load_policy()
    never_alone = {kind for kind, rule in policy.remedies.items() if getattr(rule, "never_alone", False)}
    assert never_alone == set(not_fixes())


def test_every_handoff_reason_the_bot_can_give_has_a_label():
    # The reasons are the `utter_handoff_<reason>` responses and the engine's escalations.
    domain = (ROOT / "domain.yml").read_text()
    responses = set(re.findall(r"^  utter_handoff_([a-z_]+):", domain, re.M))
    responses -= {"wait", "wait_closed"}
    assert responses <= set(REASONS), sorted(responses - set(REASONS))


def test_an_unknown_name_reads_as_words_not_as_an_id():
    assert remedy_label("gift_box").en == "gift box"
    assert reason_label("new_reason").bilingual() == "new reason / new reason"


def test_the_case_context_round_trips_through_json_and_tolerates_old_and_new_keys():
    ctx = CaseContext(case_id="K1", reason="safety", remedies_offered=[OfferedRemedy("send_item", 80)])
    back = CaseContext.from_dict(json.loads(json.dumps(ctx.to_dict())))
    assert back == ctx
    old = CaseContext.from_dict(
        {
            "case_id": "K2",
            "items": [{"item_id": 1, "name_ja": "卵", "name_en": "egg", "unit_price": 80, "claimed": True, "later": 1}],
            "backlog": [{"text": "まだ？"}],
        }
    )
    assert old.claimed_items[0].total == 80 and old.reason == "request_human" and old.order is None

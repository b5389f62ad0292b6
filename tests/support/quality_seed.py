"""Cases with known damage for the "CS damage" page (tests/system/browser/test_quality_page.py),
written through bot/store's repository and models as the action server writes them; plain
module (no browser), so it can be run on its own from the bot environment too:

    .venv-bot/bin/python -m tests.system.browser.quality_seed sqlite:////tmp/q.db
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from typing import Dict

from bot.remedy_policy.types import RemedyOffer
from bot.store.db import init_db, make_engine
from bot.store.models import RecurringAlert
from bot.store.repository import OrdersRepository

DEMO = "U00000000000000000000000000000001"


def _turn(role: str, text: str, at: datetime, **more) -> Dict:
    return {"role": role, "text": text, "time": at.isoformat(), **more}


def seed(url: str) -> Dict[str, str]:
    """Three closed cases (one clean), an alert, three follow-ups; returns the case ids."""
    engine = make_engine(url)
    now = datetime.now(timezone.utc)
    init_db(engine, now)
    repo = OrdersRepository(engine)
    customer = repo.customer_by_line_id(DEMO).id

    # 1. the bot offered only a coupon for a missing egg, then a bare "can't"
    opened = now - timedelta(days=2)
    coupon = repo.open_claim(customer, "1001", "missing_item", [], opened)
    repo.apply_remedy(coupon, RemedyOffer("coupon", 300), opened + timedelta(minutes=3))
    repo.save_case_transcript(
        coupon,
        [
            _turn("customer", "親子丼に別卵が付いていませんでした", opened, intent="report_missing_item"),
            _turn("bot", "申し訳ございません。次回使える300円クーポンはいかがですか", opened, offered=["coupon"]),
            _turn("customer", "卵を今すぐ届けてほしいです", opened + timedelta(minutes=1), intent="affirm"),
            _turn("bot", "申し訳ございませんが、お届けはできません。", opened + timedelta(minutes=2)),
            _turn("customer", "わかりました", opened + timedelta(minutes=3), intent="affirm"),
        ],
        opened + timedelta(minutes=3),
    )

    # 2. handed over twice, an agent's bare "can't", and "not solved" at the end (English)
    opened = now - timedelta(days=1)
    passed = repo.open_claim(customer, "1005", "damaged_item", [], opened)
    repo.record_handoff(passed, customer, "frustration", {"problem": "damaged_item"}, opened + timedelta(minutes=1))
    repo.record_handoff(passed, customer, "request_human", {"problem": "damaged_item"}, opened + timedelta(minutes=20))
    repo.save_case_transcript(
        passed,
        [
            _turn("customer", "My burger arrived crushed", opened, intent="report_damaged_item"),
            _turn(
                "bot", "I'm connecting you with a person now.", opened + timedelta(minutes=1), response="utter_handoff"
            ),
            _turn(
                "agent", "Sorry, we can't do anything about that.", opened + timedelta(minutes=10), agent_name="Sam Lee"
            ),
            _turn("customer", "That's not ok", opened + timedelta(minutes=11), intent="express_frustration"),
        ],
        opened + timedelta(minutes=30),
    )
    repo.record_case_outcome(
        passed,
        resolved_by="Sam Lee",
        resolved_at=opened + timedelta(minutes=30),
        satisfaction="not_satisfied",
        answered_at=opened + timedelta(minutes=31),
    )

    # 3. clean: the egg sent, confirmed
    opened = now - timedelta(hours=5)
    clean = repo.open_claim(customer, "1001", "missing_item", [], opened)
    repo.apply_remedy(clean, RemedyOffer("send_item", 0, opened + timedelta(minutes=30)), opened + timedelta(minutes=2))
    repo.save_case_transcript(
        clean,
        [
            _turn("customer", "別卵が入っていませんでした", opened, intent="report_missing_item"),
            _turn("bot", "別卵をお届けするか、80円を返金できます。", opened, offered=["send_item", "refund_item"]),
            _turn("customer", "届けてください", opened + timedelta(minutes=1), intent="affirm"),
        ],
        opened + timedelta(minutes=2),
    )

    # the egg missing three times at one shop: one alert; and the follow-ups' answers
    with engine.begin() as conn:
        conn.execute(
            RecurringAlert.__table__.insert().values(
                kind="same_item_at_shop",
                shop="親子丼専門店 とり松",
                sku="egg-side",
                problem="missing_item",
                item="別卵",
                window_start=now - timedelta(hours=20),
                count=3,
                case_ids=["C-ALERT-1", "C-ALERT-2", coupon],
                raised_at=now - timedelta(hours=2),
                last_claim_at=now - timedelta(hours=2),
            )
        )
    repo.record_follow_up_asked(clean, now - timedelta(hours=4), now - timedelta(hours=4))
    repo.record_follow_up_answer(clean, "arrived", now - timedelta(hours=3))
    repo.record_follow_up_asked(coupon, now - timedelta(days=2), now - timedelta(days=2))
    repo.record_follow_up_answer(coupon, "not_arrived", now - timedelta(days=2))
    repo.record_follow_up_asked(passed, now - timedelta(hours=1), now - timedelta(hours=1))  # no answer yet
    engine.dispose()
    return {"coupon": coupon, "passed": passed, "clean": clean}


if __name__ == "__main__":
    print(seed(sys.argv[1]))

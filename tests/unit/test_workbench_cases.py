"""The workbench's cases page reads the remedies table: a case an agent fixed with a
combination has a row per part, and still reads as one case (devkit/workbench/cases.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.remedy_policy.types import RemedyOffer
from bot.store import OrdersRepository, init_db, make_engine
from devkit.workbench.cases import load_cases, summarize

DEMO = "U00000000000000000000000000000001"


def test_a_combination_is_one_case_with_its_parts_counted_as_the_remedies_they_are(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'orders.db'}")
    now = datetime.now(timezone.utc)
    init_db(engine, now)
    repo = OrdersRepository(engine)
    customer = repo.customer_by_line_id(DEMO).id
    combo = repo.open_claim(customer, "1001", "missing_item", [], now - timedelta(hours=2))
    repo.apply_remedies(
        combo,
        [RemedyOffer("send_item", 0, now), RemedyOffer("refund_delivery_fee", 300)],
        now - timedelta(hours=2) + timedelta(minutes=5),
    )
    single = repo.open_claim(customer, "1005", "damaged_item", [], now - timedelta(hours=1))
    repo.apply_remedy(single, RemedyOffer("coupon", 300), now - timedelta(minutes=50))
    cases = load_cases(engine, [], None, None)
    engine.dispose()
    rows = {c.case_number: c for c in cases}
    assert len(cases) == 2
    assert (rows[combo].remedy, rows[combo].remedy_amount) == ("send_item+refund_delivery_fee", 300)
    assert rows[combo].minutes_to_resolution == 5.0
    summary = summarize(cases)
    assert summary.remedies == {"send_item": 1, "refund_delivery_fee": 1, "coupon": 1}
    assert (summary.real_remedy_count, summary.coupon_count) == (2, 1)

"""The bot's case report (bot/store/reports.py), which the ops API serves to the workbench
(GET /ops/cases): read over a real SQLite orders database filled through the repository,
as the action server fills it. A case an agent fixed with a combination has a row per
part in the remedies table, and still reads as one case; a handed-off case reads as its
outcome says; the period is [from, to). The rows survive their JSON form (contracts.ops),
which is what the workbench receives."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from bot.remedy_policy.types import RemedyOffer
from bot.store import OrdersRepository, init_db, make_engine
from bot.store.reports import follow_ups, load_cases, recurring_alerts
from contracts.ops import CaseRow

DEMO = "U00000000000000000000000000000001"


def test_a_combination_is_one_case_and_a_handoff_reads_as_its_outcome(tmp_path):
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
    late = repo.open_claim(customer, "1004", "late_delivery", [], now - timedelta(minutes=30))
    repo.record_handoff(late, customer, "frustration", {"problem": "late_delivery"}, now - timedelta(minutes=30))
    repo.record_case_outcome(late, resolved_by="Alex Kim", resolved_at=now - timedelta(minutes=5))
    asked = "C-20990101-ASKD"  # a person asked for before any problem was named: no claim row
    repo.record_handoff(asked, customer, "request_human", {"problem": None}, now - timedelta(minutes=10))
    old = repo.open_claim(customer, "1003", "wrong_item", [], now - timedelta(days=40))

    cases = load_cases(engine, None, None)
    rows = {c.case_number: c for c in cases}
    assert [c.case_number for c in cases] == [asked, late, single, combo, old]  # newest first
    assert (rows[combo].remedy, rows[combo].remedy_amount) == ("send_item+refund_delivery_fee", 300)
    assert rows[combo].minutes_to_resolution == 5.0 and rows[combo].status == "remedied"
    assert (rows[single].remedy, rows[single].remedy_amount) == ("coupon", 300)
    assert (rows[late].status, rows[late].handoff_reason, rows[late].resolved_by) == (
        "resolved",
        "frustration",
        "Alex Kim",
    )
    assert rows[late].minutes_to_resolution == 25.0
    assert (rows[asked].problem, rows[asked].status, rows[asked].resolved_at) == ("none", "handed_off", None)

    # the period is [from, to): the 40-day-old case falls outside the last 30 days
    recent = load_cases(engine, now - timedelta(days=30), None)
    assert old not in {c.case_number for c in recent} and len(recent) == 4
    assert [c.case_number for c in load_cases(engine, None, now - timedelta(days=30))] == [old]

    # what the workbench gets over HTTP is the same case, and it counts each part of a
    # combination as the remedy it is (devkit/workbench/cases.py: stdlib and contracts only)
    wire = json.loads(json.dumps([c.to_dict() for c in cases]))
    assert [CaseRow.from_dict(d) for d in wire] == cases
    from devkit.workbench.cases import summarize

    summary = summarize([CaseRow.from_dict(d) for d in wire])
    assert summary.remedies == {"send_item": 1, "refund_delivery_fee": 1, "coupon": 1}
    assert (summary.real_remedy_count, summary.coupon_count, summary.handed_off) == (2, 1, 2)
    engine.dispose()


def test_before_any_case_or_feature_table_the_reports_are_empty(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no table at all yet
    assert load_cases(engine) == []
    assert follow_ups(engine).rows == [] and recurring_alerts(engine) == []
    engine.dispose()


def test_follow_ups_alerts_and_the_audit_as_the_ops_api_sends_them(tmp_path):
    """The seeded damage of the workbench's CS damage page (tests/system/browser/quality_seed.py),
    read by the ops API's reports: follow-up outcomes, the alert, the audit's findings with
    the turns around them only (never a whole transcript)."""
    from bot.server.ops import _audit
    from contracts.audit import Finding
    from contracts.ops import FollowUps, RecurringAlertRow
    from tests.support.quality_seed import seed

    url = f"sqlite:///{tmp_path / 'orders.db'}"
    cases = seed(url)
    engine = make_engine(url)
    follow = FollowUps.from_dict(json.loads(json.dumps(follow_ups(engine).to_dict())))
    assert follow.counts == {"asked": 3, "arrived": 1, "not_arrived": 1, "no_answer": 1, "skipped_budget": 0}
    assert {r.case_id: r.outcome for r in follow.rows} == {
        cases["clean"]: "arrived",
        cases["coupon"]: "not_arrived",
        cases["passed"]: "no_answer",
    }
    now = datetime.now(timezone.utc)
    assert len(follow_ups(engine, now - timedelta(hours=6), None).rows) == 2  # due in the last 6 hours

    [alert] = [RecurringAlertRow.from_dict(a.to_dict()) for a in recurring_alerts(engine)]
    assert (alert.kind, alert.shop, alert.item, alert.problem, alert.count) == (
        "same_item_at_shop",
        "親子丼専門店 とり松",
        "別卵",
        "missing_item",
        3,
    )
    assert alert.case_ids[-1] == cases["coupon"]
    assert recurring_alerts(engine, now - timedelta(hours=1), None) == []

    body = json.loads(json.dumps(_audit(engine, None, None)))
    findings = [Finding.from_dict(f) for f in body["findings"]]
    # the patterns are bot.audit's business (tests/bot/test_audit.py); here: what the API carries
    assert sorted((f.case_id, f.pattern) for f in findings) == sorted(
        [
            (cases["coupon"], "coupon_first"),
            (cases["coupon"], "bare_cant"),
            (cases["passed"], "bare_cant"),
            (cases["passed"], "passed_around"),
            (cases["passed"], "unsatisfied"),
        ]
    )
    assert {(f.pattern, f.turn_index) for f in findings if f.case_id == cases["coupon"]} == {
        ("coupon_first", 1),
        ("bare_cant", 3),
    }
    assert cases["clean"] not in body["transcripts"]  # no finding: no turns sent
    coupon_turns = body["transcripts"][cases["coupon"]]
    assert [t is not None for t in coupon_turns] == [True, True, True, True, True]  # turns 0-4 around 1 and 3
    assert coupon_turns[1]["text"].endswith("300円クーポンはいかがですか")
    engine.dispose()

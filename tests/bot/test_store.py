"""The orders store against a real database file: demo data, lookups, claims, and a
remedy applied exactly once even under concurrent calls and across restarts.

Every repository test runs on SQLite. With ORDERS_TEST_POSTGRES=1 each also runs on a
throwaway PostgreSQL server started here (and fails, not skips, without the binaries).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from glob import glob
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Sequence, Tuple
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from bot.remedy_policy.types import RemedyOffer
from bot.store import (
    AppliedRemedy,
    GivenGoodwill,
    NotFoundError,
    OrdersRepository,
    database_url,
    init_db,
    make_engine,
    normalize_order_number,
)
from bot.store import db as store_db
from bot.store import repository as store_repository
from bot.store.models import Claim, Customer, GoodwillGesture, Order, OrderItem, Remedy

ROOT = Path(__file__).resolve().parents[2]
UTC = timezone.utc
TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo
MIN, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
DEMO = "U00000000000000000000000000000001"
EMMA = "U00000000000000000000000000000002"
CASE_NUMBER = re.compile(r"^C-\d{8}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4}$")

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("ORDERS_TEST_POSTGRES") == "1" else [])


# PostgreSQL: a throwaway server for the whole session, a fresh database per test.


class PostgresServer:
    """initdb + pg_ctl in a temporary folder, reachable only by its unix socket."""

    def __init__(self, bindir: Path, root: Path, port: int) -> None:
        self.bindir, self.root, self.port = bindir, root, port
        self.data = root / "data"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@/{database}?host={self.root}&port={self.port}"

    def start(self) -> None:
        _run(
            self._as_owner(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"
            )
        )
        options = f"-p {self.port} -k {self.root} -c listen_addresses=''"
        _run(
            self._as_owner(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.root / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            )
        )

    def stop(self) -> None:
        _run(self._as_owner("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"))

    def new_database(self) -> str:
        """A database of its own for each test, so tests never see each other's claims."""
        name = f"orders_{uuid.uuid4().hex[:12]}"
        admin = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT", future=True)
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)

    def _as_owner(self, program: str, *args: str) -> List[str]:
        # PostgreSQL refuses to run as root; the Debian package brings the `postgres` user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return [*prefix, str(self.bindir / program), *args]


def _postgres_bindir() -> Path:
    candidates = [shutil.which("pg_ctl"), *sorted(glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)]
    for candidate in filter(None, candidates):
        bindir = Path(candidate).resolve().parent
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            return bindir
    pytest.fail(
        "ORDERS_TEST_POSTGRES=1 but the PostgreSQL server binaries (initdb, pg_ctl, postgres) are missing: "
        "apt-get install -y postgresql",
        pytrace=False,
    )


def _run(command: Sequence[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}", pytrace=False
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = _postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="orders-pg-"))  # short path: unix socket names are limited
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = PostgresServer(bindir, root, _free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


# Fixtures shared by both backends.


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'orders.db'}"
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def engines(url) -> Iterator[Callable[[], Engine]]:
    """Makes engines on the test's database (one per "process") and disposes them after."""
    made: List[Engine] = []

    def make() -> Engine:
        made.append(make_engine(url))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def engine(engines) -> Engine:
    return engines()


@pytest.fixture
def repo(engine) -> OrdersRepository:
    init_db(engine, now=NOW)
    return OrdersRepository(engine)


def demo_id(repo: OrdersRepository, line_user_id: str = DEMO) -> int:
    return repo.customer_by_line_id(line_user_id).id


def count(engine: Engine, model) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def refund(amount: int = 80) -> RemedyOffer:
    return RemedyOffer(kind="refund_item", amount=amount)


# Demo data

# number -> (owner LINE id, kind, status, shop, delivery fee, [(name_ja, name_en, category, price)])
EXPECTED_ORDERS: Dict[str, Tuple] = {
    "1001": (
        DEMO,
        "food_delivery",
        "delivered",
        "とり政 渋谷店",
        300,
        [
            ("親子丼", "Oyakodon", "dish", 980),
            ("別卵", "Extra egg", "topping", 80),
            ("味噌汁", "Miso soup", "side", 150),
        ],
    ),
    "1002": (
        DEMO,
        "food_delivery",
        "delivered",
        "すし匠",
        400,
        [
            ("特上にぎり寿司", "Premium nigiri sushi", "dish", 4800),
            ("茶碗蒸し", "Chawanmushi", "side", 380),
        ],
    ),
    "1003": (
        DEMO,
        "food_delivery",
        "delivered",
        "カレーの店 ガネーシャ",
        300,
        [
            ("カレーライス", "Curry rice", "dish", 850),
            ("フライドポテト", "French fries", "side", 350),
        ],
    ),
    "1004": (
        DEMO,
        "food_delivery",
        "out_for_delivery",
        "麺屋 一心",
        300,
        [
            ("醤油ラーメン", "Shoyu ramen", "dish", 900),
            ("餃子", "Gyoza", "side", 400),
        ],
    ),
    "1005": (
        DEMO,
        "shipping",
        "delivered",
        "うつわ工房",
        500,
        [
            ("波佐見焼 マグカップ", "Hasami porcelain mug", "goods", 2400),
        ],
    ),
    "1006": (
        DEMO,
        "food_delivery",
        "preparing",
        "バーガーズ 恵比寿",
        300,
        [
            ("チーズバーガー", "Cheeseburger", "dish", 880),
            ("フライドポテト", "French fries", "side", 350),
            ("コーラ", "Cola", "drink", 200),
        ],
    ),
    "1101": (
        EMMA,
        "food_delivery",
        "delivered",
        "Burger Lab Roppongi",
        300,
        [
            ("チーズバーガー", "Cheeseburger", "dish", 880),
            ("フライドポテト", "French fries", "side", 350),
            ("コーラ", "Cola", "drink", 200),
        ],
    ),
    "1102": (EMMA, "shipping", "delivered", "Kiln & Co.", 500, [("陶器の鉢", "Ceramic bowl", "goods", 1800)]),
    "2001": (
        None,
        "food_delivery",
        "delivered",
        "牛丼太郎 新宿店",
        250,
        [
            ("牛丼", "Gyudon", "dish", 650),
            ("温泉卵", "Soft-boiled egg", "topping", 100),
        ],
    ),
}

# number -> (placed ago, promised ago (negative: still to come), delivered ago or None)
EXPECTED_TIMES = {
    "1001": (70 * MIN, 25 * MIN, 20 * MIN),
    "1004": (75 * MIN, 35 * MIN, None),
    "1006": (5 * MIN, -35 * MIN, None),
}
EXPECTED_DELIVERED_AGO = {
    "1001": 20 * MIN,
    "1002": 26 * HOUR,
    "1003": 5 * DAY,
    "1005": 20 * HOUR,
    "1101": 15 * MIN,
    "1102": 30 * HOUR,
    "2001": 30 * MIN,
}


def test_seed_creates_the_three_demo_customers(engine, repo):
    demo, emma = repo.customer_by_line_id(DEMO), repo.customer_by_line_id(EMMA)
    guest = repo.customer_by_id(repo.order_by_number("2001").customer_id)
    assert (demo.display_name, demo.language) == ("デモ 太郎", "ja")
    assert (emma.display_name, emma.language) == ("Emma Brown", "en")
    assert (guest.display_name, guest.language, guest.line_user_id) == ("山田 花子", "ja", None)
    with Session(engine) as session:
        assert session.scalar(select(Customer.phone).where(Customer.line_user_id == DEMO)) == "090-0000-0001"


@pytest.mark.parametrize("number", sorted(EXPECTED_ORDERS))
def test_seed_creates_each_demo_order_exactly(repo, number):
    owner, kind, status, shop, fee, items = EXPECTED_ORDERS[number]
    order = repo.order_by_number(number)
    assert repo.customer_by_id(order.customer_id).line_user_id == owner
    assert (order.kind, order.status, order.shop_name, order.delivery_fee) == (kind, status, shop, fee)
    assert [(i.name_ja, i.name_en, i.category, i.unit_price, i.quantity) for i in order.items] == [
        (*item, 1) for item in items
    ]


def test_seed_gives_the_oyakodon_order_its_skus_and_total(repo):
    order = repo.order_by_number("1001")
    assert [i.sku for i in order.items] == ["OYAKODON", "EXTRA-EGG", "MISO-SOUP"]
    assert order.total == 980 + 80 + 150 + 300


def test_seed_has_nothing_else(engine, repo):
    assert (count(engine, Customer), count(engine, Order), count(engine, OrderItem)) == (3, 9, 19)
    assert (count(engine, Claim), count(engine, Remedy)) == (0, 0)


@pytest.mark.parametrize("number", sorted(EXPECTED_TIMES))
def test_seed_times_of_undelivered_and_late_orders(repo, number):
    placed_ago, promised_ago, delivered_ago = EXPECTED_TIMES[number]
    order = repo.order_by_number(number)
    assert order.placed_at == NOW - placed_ago
    assert order.promised_at == NOW - promised_ago
    assert order.delivered_at == (None if delivered_ago is None else NOW - delivered_ago)


@pytest.mark.parametrize("number", sorted(EXPECTED_DELIVERED_AGO))
def test_seed_delivery_times_are_relative_to_now(repo, number):
    order = repo.order_by_number(number)
    assert order.delivered_at == NOW - EXPECTED_DELIVERED_AGO[number]
    assert order.placed_at < order.delivered_at
    assert order.delivered_at.utcoffset() == timedelta(0)


def test_init_db_is_idempotent(engine, repo):
    init_db(engine, now=NOW + DAY)
    init_db(engine)
    assert (count(engine, Customer), count(engine, Order), count(engine, OrderItem)) == (3, 9, 19)
    assert repo.order_by_number("1001").delivered_at == NOW - 20 * MIN  # the first seed stays


def test_two_processes_starting_at_once_seed_once(engines):
    first, second = engines(), engines()
    errors = run_together([lambda: init_db(first, now=NOW), lambda: init_db(second, now=NOW)])
    assert errors == []
    assert (count(first, Customer), count(first, Order), count(first, OrderItem)) == (3, 9, 19)


def test_times_given_in_any_zone_are_stored_as_the_same_instant(engine):
    init_db(engine, now=NOW.astimezone(TOKYO))
    order = OrdersRepository(engine).order_by_number("1001")
    assert order.delivered_at == NOW - 20 * MIN
    assert order.delivered_at.tzinfo == UTC


def test_naive_datetimes_are_refused(repo):
    with pytest.raises(StatementError, match="naive datetime"):
        repo.open_claim(demo_id(repo), "1001", "missing_item", [], datetime(2026, 11, 25, 12, 0))


# Lookups


def test_customer_lookups(repo):
    demo = repo.customer_by_line_id(DEMO)
    assert repo.customer_by_id(demo.id) == demo
    assert demo.line_user_id == DEMO
    assert repo.customer_by_line_id("Uffffffffffffffffffffffffffffffff") is None
    assert repo.customer_by_id(999_999) is None


@pytest.mark.parametrize("typed", ["1001", "#1001", "#１００１", "＃１００１", " 1001 ", "# 1001", "１００１　"])
def test_order_numbers_are_found_however_they_are_typed(repo, typed):
    assert repo.order_by_number(typed).number == "1001"


@pytest.mark.parametrize("typed", ["9999", "", "#", " ", "100", "10011"])
def test_unknown_order_numbers_are_none(repo, typed):
    assert repo.order_by_number(typed) is None


def test_normalize_order_number():
    assert normalize_order_number("＃ ２００１") == "2001"


def test_recent_orders_are_newest_first_and_limited(repo):
    numbers = [o.number for o in repo.recent_orders(demo_id(repo), NOW)]
    assert numbers == ["1006", "1001", "1004", "1002", "1005"]
    everything = [o.number for o in repo.recent_orders(demo_id(repo), NOW, limit=10)]
    assert everything == ["1006", "1001", "1004", "1002", "1005", "1003"]


def test_recent_orders_stay_within_the_window(repo):
    assert [o.number for o in repo.recent_orders(demo_id(repo), NOW, days=1)] == ["1006", "1001", "1004"]
    assert [o.number for o in repo.recent_orders(demo_id(repo), NOW, days=4, limit=10)] == [
        "1006",
        "1001",
        "1004",
        "1002",
        "1005",
    ]
    assert repo.recent_orders(demo_id(repo), NOW + 30 * DAY) == []


def test_recent_orders_are_only_the_customers_own(repo):
    assert [o.number for o in repo.recent_orders(demo_id(repo, EMMA), NOW)] == ["1101", "1102"]
    assert repo.recent_orders(999_999, NOW) == []


# Claims


def test_open_claim_gives_unique_readable_case_numbers(repo):
    cases = {repo.open_claim(demo_id(repo), "1001", "missing_item", [1], NOW) for _ in range(50)}
    assert len(cases) == 50
    assert all(CASE_NUMBER.match(c) and c.startswith("C-20261125-") for c in cases)


def test_case_numbers_carry_the_date_in_tokyo(repo):
    late_evening_utc = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # already the 26th in Tokyo
    assert repo.open_claim(demo_id(repo), "1001", "missing_item", [], late_evening_utc).startswith("C-20261126-")


def test_open_claim_retries_when_a_case_number_is_taken(repo, monkeypatch):
    numbers = iter(["C-20261125-AAAA", "C-20261125-AAAA", "C-20261125-BBBB"])
    monkeypatch.setattr(store_repository, "new_case_number", lambda now: next(numbers))
    first = repo.open_claim(demo_id(repo), "1001", "missing_item", [], NOW)
    second = repo.open_claim(demo_id(repo), "1001", "missing_item", [], NOW)
    assert (first, second) == ("C-20261125-AAAA", "C-20261125-BBBB")


def test_open_claim_records_the_order_and_items(engine, repo):
    egg = next(i.item_id for i in repo.order_by_number("1001").items if i.sku == "EXTRA-EGG")
    case = repo.open_claim(demo_id(repo), "#１００１", "missing_item", [egg], NOW)
    claim = claim_row(engine, case)
    assert (claim.problem, claim.status, claim.item_ids, claim.created_at) == ("missing_item", "open", [egg], NOW)
    with Session(engine) as session:
        assert session.get(Order, claim.order_id).number == "1001"


def test_open_claim_without_customer_or_order(engine, repo):
    case = repo.open_claim(None, None, "handoff", [], NOW)
    claim = claim_row(engine, case)
    assert (claim.customer_id, claim.order_id) == (None, None)


def test_open_claim_for_an_unknown_order_fails(repo):
    with pytest.raises(NotFoundError):
        repo.open_claim(demo_id(repo), "9999", "missing_item", [], NOW)


def test_update_claim_items(engine, repo):
    case = repo.open_claim(demo_id(repo), "1001", "missing_item", [1], NOW)
    repo.update_claim_items(case, ["2", 3], now=NOW + MIN)
    claim = claim_row(engine, case)
    assert (claim.item_ids, claim.updated_at) == ([2, 3], NOW + MIN)
    with pytest.raises(NotFoundError):
        repo.update_claim_items("C-00000000-XXXX", [1])


def claim_row(engine: Engine, case_number: str) -> Claim:
    with Session(engine) as session:
        return session.scalar(select(Claim).where(Claim.case_number == case_number))


# Remedies: exactly once


def test_apply_remedy_applies_once_and_returns_the_record_after(engine, repo):
    case = repo.open_claim(demo_id(repo), "1001", "missing_item", [2], NOW)
    first = repo.apply_remedy(case, refund(80), NOW)
    again = repo.apply_remedy(case, refund(80), NOW + MIN)
    other = repo.apply_remedy(case, RemedyOffer(kind="send_item", amount=0, eta=NOW + HOUR), NOW + 2 * MIN)
    assert first == AppliedRemedy(case, "refund_item", 80, None, NOW, created=True)
    assert again == other == AppliedRemedy(case, "refund_item", 80, None, NOW, created=False)
    assert count(engine, Remedy) == 1
    assert claim_row(engine, case).status == "remedied"


def test_remedy_keeps_its_eta(repo):
    case = repo.open_claim(demo_id(repo), "1001", "missing_item", [2], NOW)
    repo.apply_remedy(case, RemedyOffer(kind="send_item", amount=0, eta=(NOW + 40 * MIN).astimezone(TOKYO)), NOW)
    assert repo.remedy_for_case(case).eta == NOW + 40 * MIN


def test_remedy_for_a_case_without_one_is_none(repo):
    case = repo.open_claim(demo_id(repo), "1001", "missing_item", [2], NOW)
    assert repo.remedy_for_case(case) is None
    assert repo.remedy_for_case("C-00000000-XXXX") is None


def test_apply_remedy_to_an_unknown_case_fails(repo):
    with pytest.raises(NotFoundError):
        repo.apply_remedy("C-00000000-XXXX", refund(), NOW)


@pytest.mark.parametrize("engine_per_thread", [False, True], ids=["one-engine", "engine-per-thread"])
def test_concurrent_calls_apply_one_remedy(engines, engine_per_thread):
    shared = engines()
    init_db(shared, now=NOW)
    repo = OrdersRepository(shared)
    case = repo.open_claim(demo_id(repo), "1001", "missing_item", [2], NOW)
    workers = [OrdersRepository(engines() if engine_per_thread else shared) for _ in range(2)]
    results: List[AppliedRemedy] = []

    def calls(worker: OrdersRepository, kind: str) -> Callable[[], None]:
        def run() -> None:
            for _ in range(20):
                results.append(worker.apply_remedy(case, RemedyOffer(kind=kind, amount=80), NOW))

        return run

    assert run_together([calls(workers[0], "refund_item"), calls(workers[1], "store_credit")]) == []
    assert count(shared, Remedy) == 1
    assert len(results) == 40
    assert sum(r.created for r in results) == 1
    assert len({(r.kind, r.amount, r.applied_at) for r in results}) == 1


def test_cancel_order_cancels_the_order(repo):
    case = repo.open_claim(demo_id(repo), "1006", "cancel_order", [], NOW)
    repo.apply_remedy(case, RemedyOffer(kind="cancel_order", amount=1730), NOW)
    assert repo.order_by_number("1006").status == "cancelled"


def test_other_remedies_leave_the_order_status(repo):
    case = repo.open_claim(demo_id(repo), "1001", "missing_item", [2], NOW)
    repo.apply_remedy(case, refund(), NOW)
    assert repo.order_by_number("1001").status == "delivered"


def test_a_restarted_action_server_sees_the_remedy_and_refuses_another(engines, repo):
    case = repo.open_claim(demo_id(repo), "1001", "missing_item", [2], NOW)
    repo.apply_remedy(case, refund(80), NOW)
    restarted_engine = engines()
    init_db(restarted_engine)
    restarted = OrdersRepository(restarted_engine)
    assert restarted.remedy_for_case(case) == AppliedRemedy(case, "refund_item", 80, None, NOW, created=False)
    assert restarted.apply_remedy(case, RemedyOffer(kind="send_item", amount=0), NOW + HOUR).created is False
    assert count(restarted_engine, Remedy) == 1


def test_customer_history_counts_applied_remedies_only(repo):
    demo = demo_id(repo)
    assert repo.customer_history(demo).claim_times == ()
    first = repo.open_claim(demo, "1001", "missing_item", [2], NOW)
    second = repo.open_claim(demo, "1005", "damaged_item", [], NOW)
    repo.open_claim(demo, "1002", "missing_item", [], NOW)  # no remedy: not counted
    repo.apply_remedy(second, refund(2400), NOW + HOUR)
    repo.apply_remedy(first, refund(80), NOW)
    repo.apply_remedy(first, refund(80), NOW + DAY)  # the same remedy again: still one
    emma_case = repo.open_claim(demo_id(repo, EMMA), "1101", "missing_item", [], NOW)
    repo.apply_remedy(emma_case, refund(350), NOW)
    assert repo.customer_history(demo).claim_times == (NOW, NOW + HOUR)
    assert repo.customer_history(demo_id(repo, EMMA)).claim_times == (NOW,)


# Combinations: several remedies for one case, exactly once, all or none


def fee(amount: int = 300) -> RemedyOffer:
    return RemedyOffer(kind="refund_delivery_fee", amount=amount)


def send() -> RemedyOffer:
    return RemedyOffer(kind="send_item", amount=0, eta=NOW + 40 * MIN)


def test_apply_remedies_applies_a_combination_once_and_returns_the_record_after(engine, repo):
    case = repo.open_claim(demo_id(repo), "1001", "missing_item", [2], NOW)
    first = repo.apply_remedies(case, [send(), fee()], NOW)
    assert [(r.kind, r.amount, r.created) for r in first] == [
        ("send_item", 0, True),
        ("refund_delivery_fee", 300, True),
    ]
    assert all(r.case_number == case for r in first)
    again = repo.apply_remedies(case, [refund(80), fee()], NOW + MIN)  # another combination: nothing new
    assert [(r.kind, r.created) for r in again] == [("send_item", False), ("refund_delivery_fee", False)]
    assert count(engine, Remedy) == 2
    assert claim_row(engine, case).status == "remedied"
    # a single remedy after it returns the case's remedy on record (the first part)
    single = repo.apply_remedy(case, refund(80), NOW + 2 * MIN)
    assert (single.kind, single.created) == ("send_item", False)
    assert repo.remedy_for_case(case).kind == "send_item"
    assert [r.kind for r in repo.remedies_for_case(case)] == ["send_item", "refund_delivery_fee"]


def test_a_combination_after_a_single_remedy_adds_nothing(engine, repo):
    case = repo.open_claim(demo_id(repo), "1001", "missing_item", [2], NOW)
    repo.apply_remedy(case, refund(80), NOW)
    on_record = repo.apply_remedies(case, [send(), fee()], NOW + MIN)
    assert [(r.kind, r.amount, r.created) for r in on_record] == [("refund_item", 80, False)]
    assert count(engine, Remedy) == 1


def test_remedies_for_a_case_without_any_is_empty(repo):
    case = repo.open_claim(demo_id(repo), "1001", "missing_item", [2], NOW)
    assert repo.remedies_for_case(case) == [] and repo.remedies_for_case("C-00000000-XXXX") == []
    with pytest.raises(NotFoundError):
        repo.apply_remedies("C-00000000-XXXX", [send(), fee()], NOW)


@pytest.mark.parametrize("engine_per_thread", [False, True], ids=["one-engine", "engine-per-thread"])
def test_concurrent_combinations_and_remedies_apply_one_set(engines, engine_per_thread):
    shared = engines()
    init_db(shared, now=NOW)
    repo = OrdersRepository(shared)
    case = repo.open_claim(demo_id(repo), "1001", "missing_item", [2], NOW)
    workers = [OrdersRepository(engines() if engine_per_thread else shared) for _ in range(3)]
    created: List[str] = []
    lock = threading.Lock()

    def calls(worker: OrdersRepository, offers: List[RemedyOffer]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(15):
                results = worker.apply_remedies(case, offers, NOW)
                with lock:
                    created.extend(r.kind for r in results if r.created)

        return run

    assert (
        run_together(
            [
                calls(workers[0], [send(), fee()]),
                calls(workers[1], [refund(80), fee()]),
                calls(workers[2], [RemedyOffer("store_credit", 96)]),
            ]
        )
        == []
    )
    on_record = repo.remedies_for_case(case)
    # one call won, with all its parts; nobody added money after it
    assert sorted(created) == sorted(r.kind for r in on_record)
    assert [r.kind for r in on_record] in (
        ["send_item", "refund_delivery_fee"],
        ["refund_item", "refund_delivery_fee"],
        ["store_credit"],
    )
    assert count(shared, Remedy) == len(on_record)


def test_a_combination_counts_once_in_the_customers_history(repo):
    demo = demo_id(repo)
    case = repo.open_claim(demo, "1001", "missing_item", [2], NOW)
    repo.apply_remedies(case, [send(), fee()], NOW)
    assert repo.customer_history(demo).claim_times == (NOW,)


# Goodwill: the agent's gesture, once per case, on top of a remedy or not


def test_goodwill_is_given_once_and_kept_with_its_reason_and_approvers(engine, repo):
    case = repo.open_claim(demo_id(repo), "1001", "missing_item", [2], NOW)
    repo.apply_remedy(case, refund(80), NOW)
    approvers = [("U0AGENT001", "佐藤 花子"), ("U0SUPER001", "Alex Kim")]
    given = repo.give_goodwill(case, "store_credit", 2500, "大幅な遅れのお詫び", approvers, NOW + MIN)
    assert given == GivenGoodwill(
        case, "store_credit", 2500, "大幅な遅れのお詫び", tuple(approvers), NOW + MIN, created=True
    )
    again = repo.give_goodwill(case, "coupon", 300, "もう一度", approvers[:1], NOW + HOUR)
    assert again == replace(given, created=False)
    assert repo.goodwill_for_case(case) == again
    assert count(engine, Remedy) == 1  # the remedy stays as it was
    assert repo.customer_history(demo_id(repo)).claim_times == (NOW,)  # a goodwill is not a claim's remedy


def test_goodwill_for_a_case_without_one_is_none_and_an_unknown_case_fails(repo):
    case = repo.open_claim(demo_id(repo), None, "handoff", [], NOW)
    assert repo.goodwill_for_case(case) is None
    with pytest.raises(NotFoundError):
        repo.give_goodwill("C-00000000-XXXX", "coupon", 300, "x", [], NOW)


def test_concurrent_goodwill_is_given_once(engines):
    shared = engines()
    init_db(shared, now=NOW)
    repo = OrdersRepository(shared)
    case = repo.open_claim(demo_id(repo), "1001", "missing_item", [2], NOW)
    workers = [OrdersRepository(engines()) for _ in range(2)]
    results = []

    def calls(worker: OrdersRepository, amount: int) -> Callable[[], None]:
        def run() -> None:
            for _ in range(15):
                results.append(worker.give_goodwill(case, "coupon", amount, "sorry", [("U1", "A")], NOW))

        return run

    assert run_together([calls(workers[0], 300), calls(workers[1], 500)]) == []
    assert sum(r.created for r in results) == 1 and len({r.amount for r in results}) == 1
    assert count(shared, GoodwillGesture) == 1


# Handoffs


def test_record_handoff_keeps_the_context_and_hands_the_case_over(engine, repo):
    demo = demo_id(repo)
    case = repo.open_claim(demo, "1001", "missing_item", [2], NOW)
    context = {"case_id": case, "reason": "safety", "items": [{"name_ja": "別卵", "claimed": True}]}
    repo.record_handoff(case, demo, "safety", context, NOW)
    assert claim_row(engine, case).status == "handed_off"
    assert repo.handoffs_for_customer(demo) == [
        {"case_number": case, "customer_id": demo, "reason": "safety", "context": context, "created_at": NOW}
    ]


def test_record_handoff_without_a_claim_or_customer(repo):
    repo.record_handoff("C-20261125-ZZZZ", None, "request_human", {"case_id": "C-20261125-ZZZZ"}, NOW)
    assert repo.handoffs_for_customer(demo_id(repo)) == []


# Configuration (SQLite only: it is the default the demo runs on)


def test_sqlite_engine_uses_wal_and_a_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'orders.db'}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 5000
    finally:
        engine.dispose()


def test_sqlite_stores_utc(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'orders.db'}")
    try:
        init_db(engine, now=NOW.astimezone(TOKYO))
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT delivered_at FROM orders WHERE number = '1001'")).scalar()
        assert stored.startswith("2026-11-25 02:40:00")
    finally:
        engine.dispose()


def test_database_url_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("ORDERS_DATABASE_URL", "postgresql+psycopg2://orders@db/orders")
    assert database_url() == "postgresql+psycopg2://orders@db/orders"


def test_database_url_defaults_to_a_sqlite_file_in_var(monkeypatch, tmp_path):
    assert store_db.DEFAULT_SQLITE_PATH == ROOT / "var" / "orders.db"
    monkeypatch.setenv("ORDERS_DATABASE_URL", "")
    monkeypatch.setattr(store_db, "DEFAULT_SQLITE_PATH", tmp_path / "var" / "orders.db")
    assert database_url() == f"sqlite:///{tmp_path / 'var' / 'orders.db'}"
    assert (tmp_path / "var").is_dir()


def run_together(functions: Sequence[Callable[[], None]]) -> List[BaseException]:
    """Starts each function on its own thread at the same moment; returns their errors."""
    barrier = threading.Barrier(len(functions))
    errors: List[BaseException] = []

    def run(function: Callable[[], None]) -> None:
        barrier.wait()
        try:
            function()
        except BaseException as error:  # noqa: BLE001 - reported to the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(f,)) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_a_production_database_is_not_seeded_with_the_demo_customers(tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERS_SEED_DEMO", "0")
    engine = make_engine(f"sqlite:///{tmp_path / 'prod.db'}")
    init_db(engine)
    with Session(engine, future=True) as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 0
    monkeypatch.setenv("ORDERS_SEED_DEMO", "1")
    init_db(engine)
    with Session(engine, future=True) as session:
        assert session.scalar(select(func.count()).select_from(Customer)) > 0
    engine.dispose()

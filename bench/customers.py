"""Load-test customers: each with one fresh order the bot can settle, in the orders database.

Why fresh customers: the remedy policy sends a customer's fourth claim in 30 days to a
person (bot/remedy_policy.yml `max_claims`), so a customer who keeps reporting problems for two
minutes stops getting remedies. Each conversation of a load test therefore belongs to a
customer of its own, with one order delivered a few minutes ago:

- Japanese ("ja"): the demo's order 1001 (親子丼, 別卵 ¥80 missing, 味噌汁) under a new number;
- English ("en"): the demo's order 1101 (cheeseburger, fries ¥350, cola) under a new number.

So "remedies applied twice" is simply an order with more than one remedy.
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
import threading
from datetime import datetime, timezone
from typing import Dict, List, Sequence

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.store import init_db, make_engine
from bot.store import seed as demo
from bot.store.models import Claim, Order, Remedy

# The demo orders each language's conversation is about (numbers replaced per customer).
ORDER_BY_LANGUAGE = {"ja": demo.DEMO_CUSTOMERS[0].orders[0], "en": demo.DEMO_CUSTOMERS[1].orders[0]}


@dataclasses.dataclass(frozen=True)
class LoadCustomer:
    line_user_id: str
    language: str
    order_number: str
    display_name: str


class CustomerPool:
    """Hands out seeded customers, seeding another batch when the pool runs dry."""

    def __init__(self, orders_url: str, batch: int = 50) -> None:
        self.engine: Engine = make_engine(orders_url)
        init_db(self.engine)  # tables (and the demo data) exist before the first batch
        self.batch = batch
        # 7 digits: the bot reads order numbers of at most 8 digits; random start: runs differ
        self._numbers = itertools.count(3_000_000 + secrets.randbelow(60) * 100_000)
        self._free: Dict[str, List[LoadCustomer]] = {"ja": [], "en": []}
        self.seeded = 0
        self._lock = threading.Lock()  # customers take from worker threads

    def take(self, language: str) -> LoadCustomer:
        """A customer nobody has used yet (seeds `batch` more when none is left). Blocking:
        call it from a worker thread inside an event loop."""
        with self._lock:
            if not self._free[language]:
                self._free[language] = self.seed(language, self.batch)
            return self._free[language].pop()

    def seed(self, language: str, count: int) -> List[LoadCustomer]:
        now = datetime.now(timezone.utc)
        made = []
        for _ in range(count):
            number = str(next(self._numbers))
            made.append(LoadCustomer("U" + secrets.token_hex(16), language, number, f"Load {language} {number[-4:]}"))
        with Session(self.engine, future=True) as session, session.begin():
            session.add_all(_customer_row(c, now) for c in made)
        self.seeded += count
        return made

    def remedies_per_order(self, order_numbers: Sequence[str]) -> Dict[str, int]:
        """How many remedies each order got (a settled conversation: exactly 1)."""
        counts: Dict[str, int] = {}
        numbers = list(order_numbers)
        with Session(self.engine, future=True) as session:
            for start in range(0, len(numbers), 500):  # SQLite's bound-parameter limit
                query = (
                    select(Order.number, func.count(Remedy.id))
                    .join(Claim, Claim.order_id == Order.id)
                    .join(Remedy, Remedy.claim_id == Claim.id)
                    .where(Order.number.in_(numbers[start : start + 500]))
                    .group_by(Order.number)
                )
                counts.update({number: n for number, n in session.execute(query)})
        return counts

    def close(self) -> None:
        self.engine.dispose()


def _customer_row(customer: LoadCustomer, now: datetime):
    """The demo's customer builder, with this customer's id, name and order number."""
    order = dataclasses.replace(ORDER_BY_LANGUAGE[customer.language], number=customer.order_number)
    seed = demo.CustomerSeed(customer.display_name, customer.line_user_id, customer.language, None, (order,))
    return demo._customer(seed, now)  # noqa: SLF001 (the store's own builder, reused)


__all__ = ["CustomerPool", "LoadCustomer", "ORDER_BY_LANGUAGE"]

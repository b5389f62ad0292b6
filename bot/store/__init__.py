"""The orders database: customers, orders, claims, remedies and handoffs.

SQLite by default (a demo file seeded on first start), PostgreSQL by ORDERS_DATABASE_URL.
"""

from bot.store.db import database_url, init_db, make_engine
from bot.store.repository import (
    AccountLinkResult,
    AppliedRemedy,
    CustomerRecord,
    FollowUpRecord,
    GivenGoodwill,
    NotFoundError,
    OrdersRepository,
    new_case_number,
    normalize_order_number,
)

__all__ = [
    "AccountLinkResult",
    "AppliedRemedy",
    "CustomerRecord",
    "FollowUpRecord",
    "GivenGoodwill",
    "NotFoundError",
    "OrdersRepository",
    "database_url",
    "init_db",
    "make_engine",
    "new_case_number",
    "normalize_order_number",
]

"""The orders database schema (SQLAlchemy 1.4 declarative).

Portable SQL only, so the same models run on SQLite (the local demo) and PostgreSQL.
Every datetime is timezone-aware in Python and stored as UTC.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Optional, Sequence

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import declarative_base, relationship
from sqlalchemy.types import TypeDecorator

from bot.remedy_policy.types import ORDER_KINDS, ORDER_STATUSES

LANGUAGES = ("ja", "en")
ITEM_CATEGORIES = ("dish", "side", "topping", "drink", "goods", "gift_card", "alcohol")
CLAIM_STATUSES = ("open", "remedied", "handed_off")
SATISFACTION_ANSWERS = ("satisfied", "not_satisfied")
FOLLOW_UP_ANSWERS = ("arrived", "not_arrived")

Base = declarative_base()


def _one_of(column: str, values: Sequence[str], name: str) -> CheckConstraint:
    """A CHECK constraint both SQLite and PostgreSQL understand (no native ENUM types)."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({quoted})", name=name)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out.

    SQLite has no time zones: a plain DateTime would hand back naive values and silently
    mix local and UTC times. So values are converted to UTC before storing (naive ones are
    refused) and marked UTC when read back. PostgreSQL keeps `timestamptz` as it is.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the orders store only takes aware datetimes")
        utc = value.astimezone(timezone.utc)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Optional[datetime], dialect: Dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class JSONText(TypeDecorator):
    """JSON kept in a TEXT column: readable in any SQL shell, the same on every database."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Optional[str]:
        return None if value is None else json.dumps(value, ensure_ascii=False, default=str)

    def process_result_value(self, value: Optional[str], dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (_one_of("language", LANGUAGES, "ck_customers_language"),)

    id = Column(Integer, primary_key=True)
    # Guests who ordered on the web have no LINE account.
    line_user_id = Column(String(64), unique=True, nullable=True)
    display_name = Column(String(200), nullable=False)
    language = Column(String(2), nullable=False, default="ja")
    phone = Column(String(32), nullable=True)
    created_at = Column(UTCDateTime, nullable=False)

    orders = relationship("Order", back_populates="customer", order_by="Order.placed_at")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        _one_of("kind", ORDER_KINDS, "ck_orders_kind"),
        _one_of("status", ORDER_STATUSES, "ck_orders_status"),
        Index("ix_orders_customer_placed", "customer_id", "placed_at"),
    )

    id = Column(Integer, primary_key=True)
    number = Column(String(32), unique=True, nullable=False)  # what the customer sees
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False)
    kind = Column(String(20), nullable=False)
    status = Column(String(20), nullable=False)
    shop_name = Column(String(200), nullable=False)
    placed_at = Column(UTCDateTime, nullable=False)
    promised_at = Column(UTCDateTime, nullable=True)
    delivered_at = Column(UTCDateTime, nullable=True)
    delivery_fee = Column(Integer, nullable=False, default=0)  # yen

    customer = relationship("Customer", back_populates="orders")
    items = relationship("OrderItem", back_populates="order", order_by="OrderItem.id", lazy="selectin")


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        _one_of("category", ITEM_CATEGORIES, "ck_order_items_category"),
        CheckConstraint("quantity > 0", name="ck_order_items_quantity"),
    )

    id = Column(Integer, primary_key=True)
    order_id = Column(Integer, ForeignKey("orders.id"), nullable=False, index=True)
    sku = Column(String(64), nullable=False)
    name_ja = Column(String(200), nullable=False)
    name_en = Column(String(200), nullable=False)
    category = Column(String(20), nullable=False)
    unit_price = Column(Integer, nullable=False)  # yen, tax included
    quantity = Column(Integer, nullable=False, default=1)

    order = relationship("Order", back_populates="items")


class Claim(Base):
    """One reported problem (a "case"). Customer and order are unknown for some handoffs."""

    __tablename__ = "claims"
    __table_args__ = (_one_of("status", CLAIM_STATUSES, "ck_claims_status"),)

    id = Column(Integer, primary_key=True)
    case_number = Column(String(32), unique=True, nullable=False)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=True, index=True)
    order_id = Column(Integer, ForeignKey("orders.id"), nullable=True)
    problem = Column(String(40), nullable=False)
    status = Column(String(20), nullable=False, default="open")
    item_ids = Column(JSONText, nullable=False, default=list)
    created_at = Column(UTCDateTime, nullable=False)
    updated_at = Column(UTCDateTime, nullable=False)


class Remedy(Base):
    """A remedy applied to a claim. The UNIQUE idempotency key makes it happen once: the
    case number for the case's remedy (or a combination's first part), "<case>+<kind>" for
    a combination's further parts, so a claim has one row per part."""

    __tablename__ = "remedies"

    id = Column(Integer, primary_key=True)
    claim_id = Column(Integer, ForeignKey("claims.id"), nullable=False, index=True)
    kind = Column(String(40), nullable=False)
    amount = Column(Integer, nullable=False, default=0)  # yen
    eta = Column(UTCDateTime, nullable=True)
    idempotency_key = Column(String(64), unique=True, nullable=False)
    applied_at = Column(UTCDateTime, nullable=False)


class GoodwillGesture(Base):
    """A goodwill an agent gave for a case (bot/remedy_policy.yml `goodwill:`): the amount and the
    reason are the agent's, so both are kept with who approved it. At most one per case
    (UNIQUE idempotency key "<case>:goodwill"); it may come on top of a remedy."""

    __tablename__ = "goodwill_gestures"
    __table_args__ = (CheckConstraint("amount > 0", name="ck_goodwill_gestures_amount"),)

    id = Column(Integer, primary_key=True)
    claim_id = Column(Integer, ForeignKey("claims.id"), nullable=False, index=True)
    kind = Column(String(40), nullable=False)  # store_credit | coupon | refund_item ...
    amount = Column(Integer, nullable=False)  # yen
    reason = Column(Text, nullable=False)
    approvers = Column(JSONText, nullable=False, default=list)  # [{"slack_user_id", "name"}]
    idempotency_key = Column(String(64), unique=True, nullable=False)
    applied_at = Column(UTCDateTime, nullable=False)


class Handoff(Base):
    """A case handed to a person, with everything the agent needs (the context)."""

    __tablename__ = "handoffs"

    id = Column(Integer, primary_key=True)
    case_number = Column(String(32), nullable=False, index=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=True, index=True)
    reason = Column(String(60), nullable=False)
    context = Column(JSONText, nullable=False)
    created_at = Column(UTCDateTime, nullable=False)


class CaseOutcome(Base):
    """How a handed-off case ended: who resolved it, what an agent approved, and the
    customer's answer to the satisfaction question (one row per case)."""

    __tablename__ = "case_outcomes"
    __table_args__ = (_one_of("satisfaction", SATISFACTION_ANSWERS, "ck_case_outcomes_satisfaction"),)

    id = Column(Integer, primary_key=True)
    case_number = Column(String(32), unique=True, nullable=False)
    resolved_by = Column(String(120), nullable=True)
    resolved_at = Column(UTCDateTime, nullable=True)
    approved_remedy = Column(String(40), nullable=True)
    approved_by = Column(String(120), nullable=True)
    satisfaction = Column(String(20), nullable=True)
    answered_at = Column(UTCDateTime, nullable=True)


class CaseTranscript(Base):
    """What was said in a case, bot, agent and customer turns alike (bot/audit/transcript.py
    makes the turns), kept when the case reaches an end (a remedy applied, a handoff, an
    agent's resolution, the satisfaction answer) so the quality audit (bot/audit/) can read
    closed cases after Rasa's tracker store has moved on. One row per case, overwritten by
    each later snapshot, which holds every earlier turn too."""

    __tablename__ = "case_transcripts"

    case_id = Column(String(32), primary_key=True)  # the case number (claims.case_number)
    turns = Column(JSONText, nullable=False, default=list)
    updated_at = Column(UTCDateTime, nullable=False)


class AccountLinkNonce(Base):
    """A LINE account link nonce that was used (contracts/account_link.py): its SHA-256
    digest (never the nonce), UNIQUE, so a replayed nonce links nothing, whichever action
    server sees it; with the customer the shop verified and the LINE user it came from."""

    __tablename__ = "account_link_nonces"

    id = Column(Integer, primary_key=True)
    digest = Column(String(64), unique=True, nullable=False)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False)
    line_user_id = Column(String(64), nullable=False)
    used_at = Column(UTCDateTime, nullable=False)


class FollowUp(Base):
    """The question asked once a promised remedy should have arrived ("did the egg
    arrive?", bot/actions/follow_up.py), one row per case: when it was due (the remedy's
    eta), when it was first asked, and the customer's answer, each written once."""

    __tablename__ = "follow_ups"
    __table_args__ = (_one_of("answer", FOLLOW_UP_ANSWERS, "ck_follow_ups_answer"),)

    id = Column(Integer, primary_key=True)
    case_number = Column(String(32), unique=True, nullable=False)
    due_at = Column(UTCDateTime, nullable=False)
    asked_at = Column(UTCDateTime, nullable=False)
    answer = Column(String(20), nullable=True)
    answered_at = Column(UTCDateTime, nullable=True)


class RecurringAlert(Base):
    """An operations alert for a recurring problem (bot/remedy_policy.yml `recurring:`): the
    same item with the same problem in several orders of one shop (kind
    "same_item_at_shop"), or any problem in several orders of one shop ("same_shop").

    One row per burst: UNIQUE (kind, shop, sku, problem, window_start), the window starting
    at the burst's first counted claim, so two action servers reaching the threshold at
    once raise it once. Later claims of the same burst (within the window of the last one)
    update `count`, `case_ids` and `last_claim_at` and raise nothing new. `sku` and
    `problem` are "" where the kind has none (NULLs would never collide in a UNIQUE key)."""

    __tablename__ = "recurring_alerts"
    __table_args__ = (
        UniqueConstraint("kind", "shop", "sku", "problem", "window_start", name="uq_recurring_alerts_burst"),
    )

    id = Column(Integer, primary_key=True)
    kind = Column(String(40), nullable=False)
    shop = Column(String(200), nullable=False)
    sku = Column(String(64), nullable=False, default="")
    problem = Column(String(40), nullable=False, default="")
    item = Column(String(200), nullable=True)  # the item's name (Japanese), for people reading the table
    window_start = Column(UTCDateTime, nullable=False)
    count = Column(Integer, nullable=False)
    case_ids = Column(JSONText, nullable=False, default=list)
    raised_at = Column(UTCDateTime, nullable=False)
    last_claim_at = Column(UTCDateTime, nullable=False)

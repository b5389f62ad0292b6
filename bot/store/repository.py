"""The only way the actions read and write the orders database.

Each call opens its own short session, so one repository serves every thread of the
action server. Results are plain frozen values (bot.remedy_policy.types), never ORM objects, so
nothing outside this module can touch a session by accident.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.remedy_policy.types import CustomerHistory, ItemView, OrderView, RemedyOffer
from bot.store.models import (
    AccountLinkNonce,
    CaseOutcome,
    CaseTranscript,
    Claim,
    Customer,
    FollowUp,
    GoodwillGesture,
    Handoff,
    Order,
    OrderItem,
    RecurringAlert,
    Remedy,
)

TOKYO = ZoneInfo("Asia/Tokyo")
# Case numbers are read aloud and typed by people: no 0/O, 1/I/L.
CASE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CASE_SUFFIX_LENGTH = 4
CASE_NUMBER_ATTEMPTS = 20


class NotFoundError(LookupError):
    """An order or case number the store does not know."""


@dataclass(frozen=True)
class CustomerRecord:
    id: int
    display_name: str
    language: str
    line_user_id: Optional[str]  # None for guests who ordered on the web


@dataclass(frozen=True)
class AccountLinkResult:
    """What `link_by_nonce` did: "linked", "already_linked", "replayed", "taken" or
    "no_customer"; the customer when linked (now or before)."""

    status: str
    customer: Optional[CustomerRecord]


@dataclass(frozen=True)
class AppliedRemedy:
    """The remedy on record for a case; `created` is False when an earlier call applied it."""

    case_number: str
    kind: str
    amount: int
    eta: Optional[datetime]
    applied_at: datetime
    created: bool


@dataclass(frozen=True)
class GivenGoodwill:
    """The goodwill on record for a case; `created` is False when an earlier call gave it."""

    case_number: str
    kind: str
    amount: int
    reason: str
    approvers: Tuple[Tuple[str, str], ...]  # (Slack user id, name), in the order they approved
    applied_at: datetime
    created: bool


@dataclass(frozen=True)
class FollowUpRecord:
    """The follow-up question of a case: due at the remedy's eta, asked once, answered once
    ("arrived" / "not_arrived"; None while unanswered)."""

    case_number: str
    due_at: datetime
    asked_at: datetime
    answer: Optional[str]
    answered_at: Optional[datetime]


@dataclass(frozen=True)
class ProblemCase:
    """A claim as the recurring-problem counts read it (bot/actions/recurring.py): its
    order, the order's shop, and the claimed items (sku, Japanese name, English name)."""

    case_number: str
    customer_id: Optional[int]
    order_id: int
    order_number: str
    shop: str
    problem: str
    items: Tuple[Tuple[str, str, str], ...]
    created_at: datetime

    @property
    def skus(self) -> Tuple[str, ...]:
        return tuple(sku for sku, _, _ in self.items)


@dataclass(frozen=True)
class RecurringAlertRecord:
    """A recurring-problem alert on record; `created` is True only for the call that raised it."""

    kind: str
    shop: str
    sku: str
    problem: str
    item: Optional[str]
    window_start: datetime
    count: int  # different orders in the burst
    case_ids: Tuple[str, ...]  # one case per order, oldest first
    raised_at: datetime
    last_claim_at: datetime
    created: bool


@dataclass(frozen=True)
class ClaimRecord:
    """A case as the orders database knows it: what the remedy engine re-decides from."""

    case_number: str
    customer_id: Optional[int]
    order_number: Optional[str]
    problem: str
    item_ids: tuple
    status: str


def normalize_order_number(text: str) -> str:
    """ "#１００１ " -> "1001": customers type full-width digits, '#' and spaces."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in folded if ch != "#" and not ch.isspace())


def remedy_key(case_number: str, kind: str, position: int) -> str:
    """A remedy's idempotency key: the case number for the case's remedy (a combination's
    first part), so that a single remedy and a combination exclude each other; the case
    and the kind for a combination's further parts."""
    return case_number if position == 0 else f"{case_number}+{kind}"


def goodwill_key(case_number: str) -> str:
    """A goodwill's idempotency key: one per case, apart from the case's remedies."""
    return f"{case_number}:goodwill"


def new_case_number(now: datetime) -> str:
    """A short number a customer can quote, e.g. "C-20261125-7K3Q" (date in Tokyo)."""
    suffix = "".join(secrets.choice(CASE_ALPHABET) for _ in range(CASE_SUFFIX_LENGTH))
    return f"C-{now.astimezone(TOKYO):%Y%m%d}-{suffix}"


class OrdersRepository:
    """Customers, orders, claims, remedies and handoffs over one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(bind=engine, future=True, expire_on_commit=False)

    # Customers and orders

    def customer_by_line_id(self, line_user_id: str) -> Optional[CustomerRecord]:
        return self._customer(select(Customer).where(Customer.line_user_id == line_user_id))

    def customer_by_id(self, customer_id: int) -> Optional[CustomerRecord]:
        return self._customer(select(Customer).where(Customer.id == customer_id))

    def customers_with_phone(self, digits: str) -> List[CustomerRecord]:
        """Customers whose phone number is these digits (hyphens and spaces ignored)."""
        stored = func.replace(func.replace(Customer.phone, "-", ""), " ", "")
        with self._sessions() as session:
            return [_customer_record(c) for c in session.scalars(select(Customer).where(stored == digits))]

    def link_line_user(self, customer_id: int, line_user_id: str) -> bool:
        """Links a LINE account to a customer that has none yet (after a verified match);
        False when the customer already has one, or the LINE account is another
        customer's (never moved from one account to another: unlink first)."""
        try:
            with self._sessions.begin() as session:
                customer = session.get(Customer, customer_id)
                if customer is None or customer.line_user_id is not None:
                    return False
                customer.line_user_id = line_user_id
                return True
        except IntegrityError:  # the LINE id is another customer's (UNIQUE)
            return False

    def link_by_nonce(self, digest: str, customer_id: int, line_user_id: str, now: datetime) -> "AccountLinkResult":
        """LINE's account link, once per nonce: records the nonce's digest as used
        (UNIQUE: of two concurrent uses one wins) and links `line_user_id` to the customer
        the nonce names, in one transaction. Nothing is linked when the customer does not
        exist ("no_customer"), the nonce was used before ("replayed"), or either side is
        linked to someone else ("taken": never moved silently). The same pair linked
        already is "already_linked". A nonce naming a customer is used up whatever the
        outcome."""
        try:
            with self._sessions.begin() as session:
                customer = session.get(Customer, customer_id)
                if customer is None:  # nothing to record: such a nonce can never link
                    return AccountLinkResult("no_customer", None)
                session.add(
                    AccountLinkNonce(digest=digest, customer_id=customer_id, line_user_id=line_user_id, used_at=now)
                )
                session.flush()  # a replay fails here, before anything else changes
                if customer.line_user_id == line_user_id:
                    return AccountLinkResult("already_linked", _customer_record(customer))
                other = session.scalar(select(Customer).where(Customer.line_user_id == line_user_id))
                if customer.line_user_id is not None or other is not None:
                    return AccountLinkResult("taken", None)
                customer.line_user_id = line_user_id
                session.flush()
                return AccountLinkResult("linked", _customer_record(customer))
        except IntegrityError:
            with self._sessions() as session:
                used = session.scalar(select(AccountLinkNonce).where(AccountLinkNonce.digest == digest))
            # not recorded: the LINE id was linked to another customer at the same moment
            return AccountLinkResult("replayed" if used is not None else "taken", None)

    def unlink_line_user(self, line_user_id: str) -> Optional[CustomerRecord]:
        """Unlinks the LINE account from its customer; that customer (as it was), or None
        when the LINE account was linked to no one."""
        with self._sessions.begin() as session:
            customer = session.scalar(select(Customer).where(Customer.line_user_id == line_user_id))
            if customer is None:
                return None
            record = _customer_record(customer)
            customer.line_user_id = None
            return record

    def recent_orders(self, customer_id: int, now: datetime, days: int = 14, limit: int = 5) -> List[OrderView]:
        """The customer's orders placed in the last `days`, newest first."""
        query = (
            select(Order)
            .where(Order.customer_id == customer_id, Order.placed_at >= now - timedelta(days=days))
            .order_by(Order.placed_at.desc(), Order.id.desc())
            .limit(limit)
        )
        with self._sessions() as session:
            return [_order_view(order) for order in session.scalars(query)]

    def order_by_number(self, number: str) -> Optional[OrderView]:
        """Any customer's order: callers check ownership (guests have no account to check)."""
        with self._sessions() as session:
            order = _find_order(session, number)
            return None if order is None else _order_view(order)

    def customer_history(self, customer_id: int) -> CustomerHistory:
        """When this customer's earlier claims got a remedy (the policy limits repeats)."""
        query = (
            select(Remedy.applied_at)
            .join(Claim, Remedy.claim_id == Claim.id)
            # the case's own remedy only: a combination's further parts are the same claim
            .where(Claim.customer_id == customer_id, Remedy.idempotency_key == Claim.case_number)
            .order_by(Remedy.applied_at)
        )
        with self._sessions() as session:
            return CustomerHistory(claim_times=tuple(session.scalars(query)))

    # Claims and remedies

    def open_claim(
        self,
        customer_id: Optional[int],
        order_number: Optional[str],
        problem: str,
        item_ids: Iterable[int],
        now: datetime,
    ) -> str:
        """Opens a case and returns its new case number (customer and order may be unknown
        when a conversation goes to a person early)."""
        order_id = self._order_id(order_number) if order_number else None
        items = [int(i) for i in item_ids]
        for _ in range(CASE_NUMBER_ATTEMPTS):
            case_number = new_case_number(now)
            claim = Claim(
                case_number=case_number,
                customer_id=customer_id,
                order_id=order_id,
                problem=problem,
                status="open",
                item_ids=items,
                created_at=now,
                updated_at=now,
            )
            try:
                with self._sessions.begin() as session:
                    session.add(claim)
                return case_number
            except IntegrityError:
                if not self._case_exists(case_number):
                    raise  # not a case-number collision: a real constraint failed
        raise RuntimeError(f"no free case number after {CASE_NUMBER_ATTEMPTS} attempts")

    def claim(self, case_number: str) -> Optional[ClaimRecord]:
        """The case with this number, or None."""
        with self._sessions() as session:
            claim = session.scalar(select(Claim).where(Claim.case_number == case_number))
            if claim is None:
                return None
            number = None
            if claim.order_id is not None:
                number = session.scalar(select(Order.number).where(Order.id == claim.order_id))
            return ClaimRecord(
                case_number=claim.case_number,
                customer_id=claim.customer_id,
                order_number=number,
                problem=claim.problem,
                item_ids=tuple(int(i) for i in claim.item_ids or ()),
                status=claim.status,
            )

    def update_claim_items(self, case_number: str, item_ids: Iterable[int], now: Optional[datetime] = None) -> None:
        """Records which items the customer finally named (they may change their mind)."""
        with self._sessions.begin() as session:
            claim = _find_claim(session, case_number)
            claim.item_ids = [int(i) for i in item_ids]
            claim.updated_at = now or datetime.now(timezone.utc)

    def apply_remedy(self, case_number: str, offer: RemedyOffer, now: datetime) -> AppliedRemedy:
        """Applies a remedy to a case exactly once, whoever calls and however often.

        The case number is the remedy's UNIQUE idempotency key: of two concurrent calls
        (threads, or a retried webhook on another action server) the database lets one
        insert win; the other gets an IntegrityError and returns the winner's remedy.
        A later call returns the remedy on record even if it asks for another kind.
        """
        existing = self.remedy_for_case(case_number)
        if existing is not None:
            return existing
        try:
            with self._sessions.begin() as session:
                _insert_remedy(session, case_number, offer, now, case_number)
        except IntegrityError:
            winner = self.remedy_for_case(case_number)
            if winner is None:
                raise
            return winner
        return replace(self.remedy_for_case(case_number), created=True)

    def apply_remedies(self, case_number: str, offers: Sequence[RemedyOffer], now: datetime) -> List[AppliedRemedy]:
        """Applies remedies to one case together (a combination), exactly once, in one
        transaction: all of them or none.

        The first part takes the case number as its idempotency key, so a combination and
        any single remedy of the same case exclude each other, whichever comes first; the
        further parts have keys of their own ("<case>+<kind>"). When the case already has a
        remedy on record (an earlier call, a concurrent one that won, or another remedy),
        nothing new is applied and the remedies on record are returned (`created` False).
        """
        if not offers:
            raise ValueError("no remedy to apply")
        if self.remedy_for_case(case_number) is not None:
            return self.remedies_for_case(case_number)
        try:
            with self._sessions.begin() as session:
                for position, offer in enumerate(offers):
                    _insert_remedy(session, case_number, offer, now, remedy_key(case_number, offer.kind, position))
        except IntegrityError:
            on_record = self.remedies_for_case(case_number)
            if not on_record:
                raise
            return on_record
        return [replace(r, created=True) for r in self.remedies_for_case(case_number)]

    def remedy_for_case(self, case_number: str) -> Optional[AppliedRemedy]:
        """The case's remedy (for a combination, its first part), or None."""
        query = select(Remedy).where(Remedy.idempotency_key == case_number)
        with self._sessions() as session:
            remedy = session.scalar(query)
            return None if remedy is None else _applied(remedy, case_number)

    def remedies_for_case(self, case_number: str) -> List[AppliedRemedy]:
        """Every remedy on record for the case, in the order applied (one, or a combination's
        parts); empty when none."""
        query = (
            select(Remedy)
            .join(Claim, Remedy.claim_id == Claim.id)
            .where(Claim.case_number == case_number)
            .order_by(Remedy.id)
        )
        with self._sessions() as session:
            return [_applied(r, case_number) for r in session.scalars(query)]

    # Recurring problems (bot/remedy_policy.yml `recurring:`, bot/actions/recurring.py)

    def problem_cases(
        self,
        since: datetime,
        problems: Sequence[str],
        *,
        customer_id: Optional[int] = None,
        shop: Optional[str] = None,
    ) -> List[ProblemCase]:
        """Claims about an order, opened at `since` or later, with one of `problems`, of one
        customer and/or at one shop, oldest first. Claims without an order (a person asked
        for before one was known) have nothing to compare and are left out."""
        query = (
            select(Claim, Order.number, Order.shop_name)
            .join(Order, Claim.order_id == Order.id)
            .where(Claim.created_at >= since, Claim.problem.in_(list(problems)))
            .order_by(Claim.created_at, Claim.id)
        )
        if customer_id is not None:
            query = query.where(Claim.customer_id == customer_id)
        if shop is not None:
            query = query.where(Order.shop_name == shop)
        with self._sessions() as session:
            rows = session.execute(query).all()
            item_ids = {int(i) for claim, _, _ in rows for i in claim.item_ids or ()}
            names: Dict[int, Tuple[str, str, str]] = {}
            if item_ids:
                found = session.execute(
                    select(OrderItem.id, OrderItem.sku, OrderItem.name_ja, OrderItem.name_en).where(
                        OrderItem.id.in_(sorted(item_ids))
                    )
                )
                names = {i: (sku, ja, en) for i, sku, ja, en in found}
            return [
                ProblemCase(
                    case_number=claim.case_number,
                    customer_id=claim.customer_id,
                    order_id=claim.order_id,
                    order_number=number,
                    shop=shop_name,
                    problem=claim.problem,
                    items=tuple(names[int(i)] for i in claim.item_ids or () if int(i) in names),
                    created_at=claim.created_at,
                )
                for claim, number, shop_name in rows
            ]

    def note_recurring_alert(
        self,
        kind: str,
        shop: str,
        cases: Sequence[ProblemCase],
        window: timedelta,
        now: datetime,
        *,
        sku: str = "",
        problem: str = "",
        item: Optional[str] = None,
    ) -> RecurringAlertRecord:
        """Records a burst of `cases` (one per order, oldest first, already at the
        threshold) as one alert. A burst is still going when its last claim is within
        `window` of now: then its count and cases grow and nothing new is raised
        (`created` False). Otherwise a new alert starts at the first case; of two
        concurrent inserts of the same burst the UNIQUE key lets one win, and the other
        joins it."""
        if not cases:
            raise ValueError("an alert needs its cases")
        for attempt in range(2):
            joined = self._join_burst(kind, shop, sku, problem, cases, window, now)
            if joined is not None:
                return joined
            try:
                with self._sessions.begin() as session:
                    row = RecurringAlert(
                        kind=kind,
                        shop=shop,
                        sku=sku,
                        problem=problem,
                        item=item,
                        window_start=cases[0].created_at,
                        count=len(cases),
                        case_ids=[c.case_number for c in cases],
                        raised_at=now,
                        last_claim_at=max(c.created_at for c in cases),
                    )
                    session.add(row)
                    session.flush()
                    return _alert_record(row, created=True)
            except IntegrityError:
                if attempt:
                    raise
        raise RuntimeError("unreachable")  # pragma: no cover

    def _join_burst(
        self,
        kind: str,
        shop: str,
        sku: str,
        problem: str,
        cases: Sequence[ProblemCase],
        window: timedelta,
        now: datetime,
    ) -> Optional[RecurringAlertRecord]:
        """The burst still going for this key, grown by `cases` of orders it did not count yet."""
        query = (
            select(RecurringAlert)
            .where(
                RecurringAlert.kind == kind,
                RecurringAlert.shop == shop,
                RecurringAlert.sku == sku,
                RecurringAlert.problem == problem,
                RecurringAlert.last_claim_at >= now - window,
            )
            .order_by(RecurringAlert.last_claim_at.desc())
            .limit(1)
        )
        with self._sessions.begin() as session:
            row = session.scalar(query)
            if row is None:
                return None
            listed = [str(c) for c in row.case_ids or []]
            counted = set(
                session.scalars(select(Claim.order_id).where(Claim.case_number.in_(listed))) if listed else ()
            )
            added = [c for c in cases if c.order_id not in counted and c.case_number not in listed]
            if added:
                row.case_ids = listed + [c.case_number for c in added]
                row.count = len(row.case_ids)
            row.last_claim_at = max([row.last_claim_at] + [c.created_at for c in cases])
            session.flush()
            return _alert_record(row, created=False)

    def recurring_alerts_since(self, since: datetime) -> List[RecurringAlertRecord]:
        """The alerts raised at `since` or later, oldest first."""
        query = select(RecurringAlert).where(RecurringAlert.raised_at >= since).order_by(RecurringAlert.raised_at)
        with self._sessions() as session:
            return [_alert_record(r, created=False) for r in session.scalars(query)]

    # Goodwill

    def give_goodwill(
        self,
        case_number: str,
        kind: str,
        amount: int,
        reason: str,
        approvers: Sequence[Tuple[str, str]],
        now: datetime,
    ) -> GivenGoodwill:
        """Records an agent's goodwill for a case exactly once (as `apply_remedy`, by a
        UNIQUE key of its own, so it may come on top of the case's remedy). A later or
        concurrent call returns the goodwill on record, whatever it asks for."""
        existing = self.goodwill_for_case(case_number)
        if existing is not None:
            return existing
        key = goodwill_key(case_number)
        try:
            with self._sessions.begin() as session:
                claim = _find_claim(session, case_number)
                session.add(
                    GoodwillGesture(
                        claim_id=claim.id,
                        kind=kind,
                        amount=int(amount),
                        reason=reason,
                        approvers=[{"slack_user_id": i, "name": n} for i, n in approvers],
                        idempotency_key=key,
                        applied_at=now,
                    )
                )
                session.flush()
                claim.updated_at = now
        except IntegrityError:
            winner = self.goodwill_for_case(case_number)
            if winner is None:
                raise
            return winner
        return replace(self.goodwill_for_case(case_number), created=True)

    def goodwill_for_case(self, case_number: str) -> Optional[GivenGoodwill]:
        query = select(GoodwillGesture).where(GoodwillGesture.idempotency_key == goodwill_key(case_number))
        with self._sessions() as session:
            row = session.scalar(query)
            if row is None:
                return None
            return GivenGoodwill(
                case_number=case_number,
                kind=row.kind,
                amount=row.amount,
                reason=row.reason,
                approvers=tuple((str(a["slack_user_id"]), str(a["name"])) for a in row.approvers or ()),
                applied_at=row.applied_at,
                created=False,
            )

    # Handoffs

    def record_handoff(
        self, case_number: str, customer_id: Optional[int], reason: str, context: Dict[str, Any], now: datetime
    ) -> None:
        """Keeps what the agent was given, and marks the case as a person's."""
        with self._sessions.begin() as session:
            session.add(
                Handoff(
                    case_number=case_number,
                    customer_id=customer_id,
                    reason=reason,
                    context=context,
                    created_at=now,
                )
            )
            session.execute(
                update(Claim).where(Claim.case_number == case_number).values(status="handed_off", updated_at=now)
            )

    def handoffs_for_customer(self, customer_id: int) -> List[Dict[str, Any]]:
        """The customer's handoffs, oldest first, as plain dicts (what agents and tests read)."""
        query = select(Handoff).where(Handoff.customer_id == customer_id).order_by(Handoff.created_at, Handoff.id)
        with self._sessions() as session:
            return [_handoff_dict(h) for h in session.scalars(query)]

    # How a handed-off case ended

    def record_case_outcome(self, case_number: str, **fields: Any) -> Dict[str, Any]:
        """Sets fields of the case's outcome (resolved_by/at, approved_remedy/by,
        satisfaction/answered_at), creating the row on first use; returns the outcome."""
        allowed = {"resolved_by", "resolved_at", "approved_remedy", "approved_by", "satisfaction", "answered_at"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown outcome fields: {sorted(unknown)}")
        for attempt in range(2):
            try:
                with self._sessions.begin() as session:
                    row = session.scalar(select(CaseOutcome).where(CaseOutcome.case_number == case_number))
                    if row is None:
                        row = CaseOutcome(case_number=case_number)
                        session.add(row)
                    for name, value in fields.items():
                        setattr(row, name, value)
                break
            except IntegrityError:
                if attempt:  # a concurrent first write won; the retry updates its row
                    raise
        return self.case_outcome(case_number) or {}

    def case_outcome(self, case_number: str) -> Optional[Dict[str, Any]]:
        with self._sessions() as session:
            row = session.scalar(select(CaseOutcome).where(CaseOutcome.case_number == case_number))
            if row is None:
                return None
            return {c.name: getattr(row, c.name) for c in CaseOutcome.__table__.columns if c.name != "id"}

    # Follow-ups at the promised time (bot/actions/follow_up.py)

    def record_follow_up_asked(self, case_number: str, due_at: datetime, now: datetime) -> FollowUpRecord:
        """Notes that the case's follow-up question was asked; only the first call writes
        (UNIQUE case number: a repeated or concurrent ask keeps the first time)."""
        existing = self.follow_up(case_number)
        if existing is not None:
            return existing
        try:
            with self._sessions.begin() as session:
                session.add(FollowUp(case_number=case_number, due_at=due_at, asked_at=now))
        except IntegrityError:
            pass  # another call noted it first: its row is the record
        record = self.follow_up(case_number)
        if record is None:  # pragma: no cover - the insert or the winner's row exists
            raise RuntimeError(f"follow-up of {case_number!r} not recorded")
        return record

    def record_follow_up_answer(self, case_number: str, answer: str, now: datetime) -> bool:
        """The customer's answer, written once: True when this call recorded it, False when
        the case was answered before (or never asked)."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(FollowUp)
                .where(FollowUp.case_number == case_number, FollowUp.answer.is_(None))
                .values(answer=answer, answered_at=now)
            )
            return bool(result.rowcount)

    def follow_up(self, case_number: str) -> Optional[FollowUpRecord]:
        with self._sessions() as session:
            row = session.scalar(select(FollowUp).where(FollowUp.case_number == case_number))
            if row is None:
                return None
            return FollowUpRecord(
                case_number=row.case_number,
                due_at=row.due_at,
                asked_at=row.asked_at,
                answer=row.answer,
                answered_at=row.answered_at,
            )

    # What was said in a case (the quality audit reads it: bot/audit/)

    def save_case_transcript(self, case_id: str, turns: Sequence[Dict[str, Any]], now: datetime) -> None:
        """Keeps the case's turns, replacing an earlier snapshot (each later one holds every
        earlier turn too); of two concurrent first writes one inserts, the other updates."""
        for attempt in range(2):
            try:
                with self._sessions.begin() as session:
                    row = session.get(CaseTranscript, case_id)
                    if row is None:
                        session.add(CaseTranscript(case_id=case_id, turns=list(turns), updated_at=now))
                    else:
                        row.turns = list(turns)
                        row.updated_at = now
                return
            except IntegrityError:
                if attempt:
                    raise

    def case_transcript(self, case_id: str) -> Optional[List[Dict[str, Any]]]:
        """The case's last snapshot of turns, or None."""
        with self._sessions() as session:
            row = session.get(CaseTranscript, case_id)
            return None if row is None else list(row.turns or [])

    # Helpers

    def _customer(self, query: Any) -> Optional[CustomerRecord]:
        with self._sessions() as session:
            customer = session.scalar(query)
            return None if customer is None else _customer_record(customer)

    def _order_id(self, number: str) -> int:
        with self._sessions() as session:
            order = _find_order(session, number)
            if order is None:
                raise NotFoundError(f"no order {number!r}")
            return order.id

    def _case_exists(self, case_number: str) -> bool:
        with self._sessions() as session:
            return session.scalar(select(Claim.id).where(Claim.case_number == case_number)) is not None


def _find_order(session: Session, number: str) -> Optional[Order]:
    normalized = normalize_order_number(number)
    if not normalized:
        return None
    return session.scalar(select(Order).where(Order.number == normalized))


def _find_claim(session: Session, case_number: str) -> Claim:
    claim = session.scalar(select(Claim).where(Claim.case_number == case_number))
    if claim is None:
        raise NotFoundError(f"no case {case_number!r}")
    return claim


def _insert_remedy(session: Session, case_number: str, offer: RemedyOffer, now: datetime, key: str) -> None:
    """Inserts first, so a concurrent duplicate fails before anything else changes."""
    claim = _find_claim(session, case_number)
    session.add(
        Remedy(
            claim_id=claim.id,
            kind=offer.kind,
            amount=offer.amount,
            eta=offer.eta,
            idempotency_key=key,
            applied_at=now,
        )
    )
    session.flush()
    claim.status = "remedied"
    claim.updated_at = now
    if offer.kind == "cancel_order" and claim.order_id is not None:
        session.execute(update(Order).where(Order.id == claim.order_id).values(status="cancelled"))


def _customer_record(customer: Customer) -> CustomerRecord:
    return CustomerRecord(
        id=customer.id,
        display_name=customer.display_name,
        language=customer.language,
        line_user_id=customer.line_user_id,
    )


def _order_view(order: Order) -> OrderView:
    return OrderView(
        number=order.number,
        customer_id=order.customer_id,
        kind=order.kind,
        status=order.status,
        shop_name=order.shop_name,
        placed_at=order.placed_at,
        promised_at=order.promised_at,
        delivered_at=order.delivered_at,
        delivery_fee=order.delivery_fee,
        items=tuple(
            ItemView(
                item_id=i.id,
                sku=i.sku,
                name_ja=i.name_ja,
                name_en=i.name_en,
                category=i.category,
                unit_price=i.unit_price,
                quantity=i.quantity,
            )
            for i in order.items
        ),
    )


def _applied(remedy: Remedy, case_number: str) -> AppliedRemedy:
    return AppliedRemedy(
        case_number=case_number,
        kind=remedy.kind,
        amount=remedy.amount,
        eta=remedy.eta,
        applied_at=remedy.applied_at,
        created=False,
    )


def _alert_record(row: RecurringAlert, created: bool) -> RecurringAlertRecord:
    return RecurringAlertRecord(
        kind=row.kind,
        shop=row.shop,
        sku=row.sku,
        problem=row.problem,
        item=row.item,
        window_start=row.window_start,
        count=row.count,
        case_ids=tuple(str(c) for c in row.case_ids or ()),
        raised_at=row.raised_at,
        last_claim_at=row.last_claim_at,
        created=created,
    )


def _handoff_dict(handoff: Handoff) -> Dict[str, Any]:
    return {
        "case_number": handoff.case_number,
        "customer_id": handoff.customer_id,
        "reason": handoff.reason,
        "context": handoff.context,
        "created_at": handoff.created_at,
    }
